package testenv

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/s3"
)

// S3Region is the region the test server reports.
const S3Region = "us-east-1"

type s3Server struct {
	endpoint string
	access   string
	secret   string
	dir      string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
}

var s3srv struct {
	once    sync.Once
	mu      sync.Mutex
	srv     *s3Server
	err     error
	buckets atomic.Int64
}

// S3 returns the config of a fresh, empty bucket on the test binary's
// versitygw server (started on first use). CreateBucket is set, so
// s3.New creates it. Without versitygw the test fails, telling you to run
// `make tools`; set OUTPOST_SKIP_S3=1 to skip instead.
func S3(t testing.TB) s3.Config {
	t.Helper()
	if os.Getenv("OUTPOST_SKIP_S3") == "1" {
		t.Skip("OUTPOST_SKIP_S3=1: skipping a test that needs S3")
	}
	requireMain(t)
	s3srv.once.Do(func() {
		srv, err := startS3()
		s3srv.mu.Lock()
		s3srv.srv, s3srv.err = srv, err
		s3srv.mu.Unlock()
	})
	s3srv.mu.Lock()
	srv, err := s3srv.srv, s3srv.err
	s3srv.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
		t.Fatalf("testenv: versitygw exited early; log:\n%s", logTail(srv.dir))
	default:
	}
	return s3.Config{
		Endpoint:     srv.endpoint,
		AccessKey:    srv.access,
		SecretKey:    srv.secret,
		Bucket:       fmt.Sprintf("t%d-%s", s3srv.buckets.Add(1), randHex(6)),
		Region:       S3Region,
		CreateBucket: true,
	}
}

// VersitygwPath finds the versitygw binary: $OUTPOST_VERSITYGW, else
// <module root>/tools/bin/versitygw, else PATH.
func VersitygwPath() (string, error) {
	if p := os.Getenv("OUTPOST_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("testenv: OUTPOST_VERSITYGW=%s: %w (run `make tools` and unset it, or fix the path)", p, err)
		}
		return p, nil
	}
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, "tools", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("testenv: versitygw not found: run `make tools` (builds tools/bin/versitygw), " +
		"or set OUTPOST_VERSITYGW, or OUTPOST_SKIP_S3=1 to skip S3 tests")
}

func startS3() (*s3Server, error) {
	bin, err := VersitygwPath()
	if err != nil {
		return nil, err
	}
	var last error
	// A port can be taken between FreePort and versitygw binding it.
	for range 3 {
		srv, err := startS3Once(bin)
		if err == nil {
			return srv, nil
		}
		last = err
	}
	return nil, last
}

const s3DirPattern = "outpost-s3-*"

func startS3Once(bin string) (*s3Server, error) {
	sweepStale()
	dir, err := os.MkdirTemp("", s3DirPattern)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	addr, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: free port: %w", err)
	}
	srv := &s3Server{
		endpoint: addr,
		access:   "outpost" + randHex(4),
		secret:   randHex(20),
		dir:      dir,
		done:     make(chan struct{}),
	}
	args := []string{"--port", addr, "--access", srv.access, "--secret", srv.secret, "--quiet", "posix"}
	if !xattrOK(data) {
		// The posix backend keeps object metadata in user xattrs; where
		// the filesystem has none, a sidecar directory holds it.
		side := filepath.Join(dir, "meta")
		if err := os.Mkdir(side, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testenv: %w", err)
		}
		args = append(args, "--sidecar", side)
	}
	args = append(args, data)
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits,
		// so pin this goroutine to its thread for the child's lifetime.
		runtime.LockOSThread()
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = sysProcAttr()
		if err := cmd.Start(); err != nil {
			started <- err
			close(srv.done)
			return
		}
		srv.cmd = cmd
		started <- nil
		cmd.Wait()
		logf.Close()
		close(srv.done)
	}()
	if err := <-started; err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: start versitygw: %w", err)
	}
	if err := waitHTTP(addr, srv.done, 20*time.Second); err != nil {
		tail := logTail(dir)
		srv.stop()
		return nil, fmt.Errorf("testenv: versitygw on %s: %w; log:\n%s", addr, err, tail)
	}
	return srv, nil
}

// sweepStale removes the temp dirs of earlier test binaries that were
// killed before Main could clean up (their server died with them).
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), s3DirPattern))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue // not ours, or still being created
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(d)
	}
}

// waitHTTP waits until addr answers HTTP (any status: unauthenticated
// requests get 403).
func waitHTTP(addr string, done <-chan struct{}, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			return errors.New("exited before answering")
		default:
		}
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *s3Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	os.RemoveAll(s.dir)
}

func stopS3() {
	s3srv.mu.Lock()
	srv := s3srv.srv
	s3srv.mu.Unlock()
	if srv != nil {
		srv.stop()
	}
}

func logTail(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "versitygw.log"))
	s := string(b)
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return strings.TrimSpace(s)
}
