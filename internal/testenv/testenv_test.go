package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/s3"
)

func TestMain(m *testing.M) { Main(m) }

func TestS3_FreshBuckets(t *testing.T) {
	a, b := S3(t), S3(t)
	if a.Endpoint != b.Endpoint {
		t.Fatalf("two servers started: %s and %s, want one per test binary", a.Endpoint, b.Endpoint)
	}
	if a.Bucket == b.Bucket {
		t.Fatalf("bucket %s returned twice, want a fresh one per call", a.Bucket)
	}
	for _, cfg := range []s3.Config{a, b} {
		if _, err := s3.New(context.Background(), cfg); err != nil {
			t.Fatalf("s3.New(%s): %v", cfg.Bucket, err)
		}
	}
}

// TestS3_HelperProcess is run as a child by TestS3_ChildDiesWithParent.
func TestS3_HelperProcess(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") != "1" {
		t.Skip("helper process only")
	}
	S3(t)
	fmt.Printf("pid=%d dir=%s\n", s3srv.srv.cmd.Process.Pid, s3srv.srv.dir)
	time.Sleep(time.Minute)
}

func TestS3_ChildDiesWithParent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestS3_HelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "TESTENV_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid, dir := 0, ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "pid=%d dir=%s", &pid, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper did not report the versitygw pid")
	}
	if !processAlive(pid) {
		t.Fatalf("versitygw %d not running while its parent is", pid)
	}
	// SIGKILL: no deferred cleanup runs, only Pdeathsig can stop the child.
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("versitygw %d outlived its killed parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The next server start sweeps the dead run's temp dir.
	sweepStale()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		os.RemoveAll(dir)
		t.Fatalf("temp dir %s of a dead run survived the sweep: stat err %v", dir, err)
	}
}

func TestFreePort_Listenable(t *testing.T) {
	addr := FreePort(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreePort = %q, want 127.0.0.1:N", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreePort's %s: %v", addr, err)
	}
	l.Close()
}

func TestRepoRoot_HasGoMod(t *testing.T) {
	root := RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "module github.com/outpost/outpost") {
		t.Fatalf("%s/go.mod is not this module's", root)
	}
}

func TestBinary_BuildsOnce(t *testing.T) {
	const pkg = "./internal/testenv/testdata/hello"
	p := Binary(t, pkg)
	if again := Binary(t, pkg); again != p {
		t.Fatalf("second Binary = %s, want the cached %s", again, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), "hello from testenv"; got != want {
		t.Fatalf("output = %q, want %q", got, want)
	}
}

func TestVersitygwPath_Env(t *testing.T) {
	t.Setenv("OUTPOST_VERSITYGW", filepath.Join(t.TempDir(), "missing"))
	if _, err := VersitygwPath(); err == nil {
		t.Fatal("VersitygwPath with a missing $OUTPOST_VERSITYGW = nil error, want one")
	}
}
