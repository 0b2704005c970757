// Package testenv provides the real parts tests run against: one versitygw
// S3 server per test binary, binaries built from this module, free ports.
//
// A package using it must call Main from TestMain so the server is stopped
// and temp files removed when the tests end:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

var mainCalled atomic.Bool

// Main runs the tests, then stops the S3 server and removes built
// binaries. Call it from TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	stopS3()
	cleanBinaries()
	os.Exit(code)
}

func requireMain(t testing.TB) {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("testenv: add `func TestMain(m *testing.M) { testenv.Main(m) }` to this package so servers and temp files are cleaned up")
	}
}

// FreePort returns "127.0.0.1:N" for a port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	addr, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return addr
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// RepoRoot returns the module root: the nearest directory above the working
// directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

var bins struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
	errs  map[string]error
}

// Binary builds the main package pkg (a path relative to the module root,
// such as "./cmd/mirror") once per test binary and returns the executable.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	return BinaryTags(t, pkg, "")
}

// BinaryTags is Binary built with the given build tags (go build -tags,
// comma-separated; "" is none): for instance "testclock", which lets
// the test skew the binary's clock (internal/clock).
func BinaryTags(t testing.TB, pkg, tags string) string {
	t.Helper()
	requireMain(t)
	bins.mu.Lock()
	defer bins.mu.Unlock()
	key := pkg
	if tags != "" {
		key += " -tags " + tags
	}
	if p, ok := bins.built[key]; ok {
		return p
	}
	if err, ok := bins.errs[key]; ok {
		t.Fatal(err)
	}
	p, err := build(pkg, tags)
	if err != nil {
		if bins.errs == nil {
			bins.errs = map[string]error{}
		}
		bins.errs[key] = err
		t.Fatal(err)
	}
	if bins.built == nil {
		bins.built = map[string]string{}
	}
	bins.built[key] = p
	return p
}

func build(pkg, tags string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if bins.dir == "" {
		d, err := os.MkdirTemp("", "outpost-bin-*")
		if err != nil {
			return "", fmt.Errorf("testenv: %w", err)
		}
		bins.dir = d
	}
	name := filepath.Base(strings.TrimSuffix(pkg, "/"))
	if name == "." || name == "/" {
		name = "main"
	}
	out := filepath.Join(bins.dir, fmt.Sprintf("%s-%d", name, len(bins.built)))
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("testenv: build %s: go not on PATH: %w", pkg, err)
	}
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(goBin, append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

func cleanBinaries() {
	bins.mu.Lock()
	defer bins.mu.Unlock()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
