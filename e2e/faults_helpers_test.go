package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/testenv"
)

// The fault suite (faults_*_test.go, soak_test.go) mounts faults on the
// real binaries from the outside. OUTPOST_SOAK=1 turns on the long
// variants (`make soak`); without it every fault class runs a short
// variant that fits in `make test`.

// soak reports whether the long variants are on.
func soak() bool { return os.Getenv("OUTPOST_SOAK") == "1" }

// pick returns short in `make test`, long in `make soak`.
func pick[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

// inCI reports whether the suite runs under CI, where a fault that cannot
// be mounted (tmpfs, a PostgreSQL cluster) is a failure, not a skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips outside CI and fails under CI=true.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatal(msg + " (CI=true: required)")
	}
	t.Skip(msg + " (set CI=true to make this a failure)")
}

// newControlPlaneEnv is newControlPlane with extra environment for init,
// serve and local commands (OUTPOST_STORE=postgres, …).
func newControlPlaneEnv(t *testing.T, tl tools, dir string, env ...string) *controlPlane {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cp := &controlPlane{t: t, tools: tl, dir: dir, addr: testenv.FreePort(t)}
	cp.url = "http://" + cp.addr
	// The load comes from one token: the lease rate limit (tested on its
	// own) is off so that every refusal these tests see is a fault's.
	cp.env = append(baseEnv("OUTPOST_LOG_LEVEL=warn", "OUTPOST_LEASE_RATE_LIMIT=0"), env...)
	cp.admin = mustRun(t, cp.env, tl.controlplane, "init", "--data-dir", cp.dir)
	if cp.admin == "" || strings.ContainsAny(cp.admin, " \n") {
		t.Fatalf("controlplane init printed %q, want the admin token alone", cp.admin)
	}
	return cp
}

// twin is a second control plane process on cp's data dir and database
// (postgres only: bbolt admits one process), on a port of its own.
func (cp *controlPlane) twin() *controlPlane {
	cp.t.Helper()
	tw := *cp
	tw.addr = testenv.FreePort(cp.t)
	tw.url = "http://" + tw.addr
	tw.proc = nil
	return &tw
}

// serveLog starts the daemon logging to name (twins must not share a log).
func (cp *controlPlane) serveLog(name string) {
	cp.t.Helper()
	cp.proc = startProc(cp.t, "controlplane "+name, filepath.Join(cp.dir, name+".log"), cp.env,
		cp.tools.controlplane, "serve", "--data-dir", cp.dir, "--listen", cp.addr)
	waitHTTP(cp.t, cp.proc, cp.url+"/readyz", http.StatusOK)
}

// kill9 kills the running daemon with SIGKILL and waits for it.
func (cp *controlPlane) kill9() {
	cp.proc.kill()
}

// auditVerify runs `controlplane audit verify` on the data dir (for
// bbolt the daemon must be stopped) and fails the test unless the chain
// is whole; it returns the number of events verified.
func (cp *controlPlane) auditVerify() int {
	cp.t.Helper()
	out := mustRun(cp.t, cp.env, cp.tools.controlplane, "audit", "verify", "--data-dir", cp.dir, "--output", "json")
	var v struct {
		OK       bool `json:"ok"`
		Verified int  `json:"verified"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.OK {
		cp.t.Fatalf("audit verify printed %q (%v), want ok", out, err)
	}
	return v.Verified
}

// call is one HTTP request that may fail (the daemon may be dying): it
// returns the status (0 on a transport error) and the body.
func call(ctx context.Context, c *http.Client, method, u, token string, body io.Reader, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, raw, nil
}

// callJSON is call with a JSON body, decoding a 2xx answer into out.
func callJSON(ctx context.Context, c *http.Client, method, u, token string, in, out any, hdr map[string]string) (int, error) {
	var rd io.Reader
	h := map[string]string{}
	for k, v := range hdr {
		h[k] = v
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
		h["Content-Type"] = "application/json"
	}
	code, raw, err := call(ctx, c, method, u, token, rd, h)
	if err != nil {
		return 0, err
	}
	if code/100 == 2 && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return code, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	if code/100 != 2 {
		return code, fmt.Errorf("%s %s: %d %s", method, u, code, bytes.TrimSpace(raw))
	}
	return code, nil
}

// randHex is n random bytes in hex.
func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// --- PostgreSQL ---

// pgSchemaURL is the shared test server's URL (OUTPOST_TEST_POSTGRES_URL)
// with a fresh schema as search_path, dropped at cleanup. For tests that
// do not restart the server.
func pgSchemaURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
			t.Skip("OUTPOST_SKIP_POSTGRES=1")
		}
		t.Fatal("OUTPOST_TEST_POSTGRES_URL is not set: export OUTPOST_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\", or set OUTPOST_SKIP_POSTGRES=1")
	}
	return withSchema(t, base)
}

func withSchema(t *testing.T, base string) string {
	t.Helper()
	schema := "outpost_rel_" + randHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return // an own cluster may already be stopped
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// pgCluster is a PostgreSQL cluster of the test's own (scripts/postgres.sh
// with its own directory and port), so restarting it disturbs no other
// test. Stopped at cleanup.
type pgCluster struct {
	t      *testing.T
	script string
	env    []string
	url    string
}

func ownPostgres(t *testing.T) *pgCluster {
	t.Helper()
	if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
		t.Skip("OUTPOST_SKIP_POSTGRES=1")
	}
	script, err := filepath.Abs("../scripts/postgres.sh")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(testenv.FreePort(t), ":")
	// Not t.TempDir: the cluster runs as the postgres user when the tests
	// run as root, and must reach its directory.
	dir := filepath.Join(os.TempDir(), "outpost-rel-pg-"+randHex(4))
	pg := &pgCluster{t: t, script: script, env: append(os.Environ(), "OUTPOST_PG_DIR="+dir, "OUTPOST_PG_PORT="+port)}
	t.Cleanup(func() {
		pg.run("stop")
		os.RemoveAll(dir)
	})
	out, err := pg.run()
	if err != nil {
		skipOrFail(t, "cannot start a PostgreSQL cluster of the test's own: %v: %s", err, out)
	}
	pg.url = strings.TrimSpace(out)
	return pg
}

func (pg *pgCluster) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pg.script, args...)
	cmd.Env = pg.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

// restart stops the cluster (fast shutdown: open transactions are rolled
// back, connections cut), keeps it down for down, and starts it again.
func (pg *pgCluster) restart(down time.Duration) {
	pg.t.Helper()
	if out, err := pg.run("stop"); err != nil {
		pg.t.Fatalf("postgres stop: %v: %s", err, out)
	}
	time.Sleep(down)
	if out, err := pg.run(); err != nil {
		pg.t.Fatalf("postgres start: %v: %s", err, out)
	}
}

// --- process figures (/proc) ---

// procStat is one sample of a process: resident memory, open file
// descriptors and CPU time used so far.
type procStat struct {
	rssBytes  int64 // resident set
	anonBytes int64 // of which anonymous (heap, stacks): what a leak grows
	fds       int
	cpu       time.Duration
}

func sampleProc(pid int) (procStat, error) {
	var s procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) in ")".
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, rss 24.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	s.cpu = time.Duration(ut+st) * time.Second / clkTck
	s.rssBytes = rss * int64(os.Getpagesize())
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(ents)
	// RssFile (page cache of mapped files, such as a bbolt file) grows
	// with the data; RssAnon is the process's own memory.
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				s.anonBytes = kb << 10
			}
		}
	}
	return s, nil
}

// latencies collects request durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// quantile returns the q-quantile (0..1) of what was added.
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)-1))
	return s[i]
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// figure logs a result line the docs quote: FIGURE <name>: <value>.
func figure(t *testing.T, name, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE %s: %s", name, fmt.Sprintf(format, args...))
}

// jsonBody is v as a JSON request body.
func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func jsonDecode(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// leaseAnswer is the part of a lease answer the fault tests keep.
type leaseAnswer struct {
	LeaseID      string `json:"lease_id"`
	HolderSecret string `json:"holder_secret"`
}
