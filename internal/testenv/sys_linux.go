package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sysProcAttr kills the child when the test binary dies, even by panic or
// SIGKILL, so no server outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// xattrOK reports whether dir's filesystem takes user xattrs.
func xattrOK(dir string) bool {
	p := filepath.Join(dir, ".xattr-probe")
	f, err := os.Create(p)
	if err != nil {
		return false
	}
	f.Close()
	defer os.Remove(p)
	return unix.Setxattr(p, "user.outpost-probe", []byte("1"), 0) == nil
}

// processAlive reports whether pid runs; a zombie counts as dead.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// ProcessCPU is the process's user+system CPU time (every thread, the
// garbage collector's included): on a shared machine benchmarks report it
// per operation, since wall time measures the neighbours too.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
