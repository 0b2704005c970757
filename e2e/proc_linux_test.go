package e2e

import "syscall"

// sysProcAttr makes a daemon die with the test binary even when the test
// binary is killed before its cleanups run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
