package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// tools are the three binaries, built once per test binary.
type tools struct {
	controlplane, mirror, updatectl string
}

func buildTools(t *testing.T) tools {
	t.Helper()
	return tools{
		controlplane: testenv.Binary(t, "./cmd/controlplane"),
		mirror:       testenv.Binary(t, "./cmd/mirror"),
		updatectl:    testenv.Binary(t, "./cmd/updatectl"),
	}
}

// baseEnv is the test's environment without OUTPOST_ variables, so a
// developer's shell cannot change what the daemons do.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTPOST_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// result is one finished command.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a command to completion (at most a minute) and returns what it
// printed and its exit status; only a failure to start it is fatal.
func run(t *testing.T, env []string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("run %s %s: timed out", filepath.Base(bin), strings.Join(args, " "))
	}
	return r
}

// mustRun runs a command that must succeed and returns its trimmed stdout.
func mustRun(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()
	r := run(t, env, bin, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", filepath.Base(bin), strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// proc is a daemon started by a test; t.Cleanup kills it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(t *testing.T, name, logPath string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, log: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the starting thread exits: keep it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = sysProcAttr()
		if err := cmd.Start(); err != nil {
			logf.Close()
			close(p.done)
			started <- err
			return
		}
		p.cmd = cmd
		started <- nil
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.kill)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the daemon to shut down (SIGTERM) and waits; it must exit 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s exited before it was stopped; log:\n%s", p.name, p.logTail())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatalf("%s did not stop within 20s of SIGTERM", p.name)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s exited %d on SIGTERM; log:\n%s", p.name, code, p.logTail())
	}
}

func (p *proc) kill() {
	if p.cmd != nil && !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers want, the daemon dies or 20s pass.
func waitHTTP(t *testing.T, p *proc, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited while starting; log:\n%s", p.name, p.logTail())
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %s did not answer %d within 20s (last: %s); log:\n%s", p.name, url, want, last, p.logTail())
}

// httpDo sends a JSON request with an optional bearer token, decodes a JSON
// answer into out (when non-nil and the status is 2xx) and returns the
// status and raw body.
func httpDo(t *testing.T, method, url, token string, body, out any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// mustDo is httpDo that requires the status want.
func mustDo(t *testing.T, method, url, token string, body, out any, want int) []byte {
	t.Helper()
	code, raw := httpDo(t, method, url, token, body, out)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, code, raw, want)
	}
	return raw
}

// get fetches url without a token and returns status and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	return httpDo(t, http.MethodGet, url, "", nil, nil)
}

// randomFile writes n random bytes to dir/name and returns the path and
// the hex sha256.
func randomFile(t *testing.T, dir, name string, n int) (string, string) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return path, hex.EncodeToString(sum[:])
}

// fileSHA256 hashes a file, streaming.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// --- control plane ---

// controlPlane is a real `controlplane serve` with its data dir.
type controlPlane struct {
	t     *testing.T
	tools tools
	dir   string
	addr  string
	url   string
	admin string   // the admin token `init` printed
	env   []string // blob backend settings, shared by serve and local commands
	proc  *proc
}

// newControlPlane initializes a data dir; with s3cfg non-nil its artifacts
// live in that bucket. Call serve to start it.
func newControlPlane(t *testing.T, tl tools, s3cfg *s3.Config) *controlPlane {
	t.Helper()
	cp := &controlPlane{t: t, tools: tl, dir: t.TempDir(), addr: testenv.FreePort(t)}
	cp.url = "http://" + cp.addr
	// Delta builds off: a delta finishing after a snapshot build rebuilds
	// the snapshot (docs/deltas.md), which would move the sequences these
	// scenarios assert. Deltas have their own tests (internal/httpapi
	// TestDeltas_EndToEnd, cmd/mirror's crash test).
	cp.env = baseEnv("OUTPOST_LOG_LEVEL=warn", "OUTPOST_DELTAS_PREVIOUS=0")
	if s3cfg != nil {
		cp.env = append(cp.env,
			"OUTPOST_BLOB_BACKEND=s3",
			"OUTPOST_BLOB_S3_ENDPOINT="+s3cfg.Endpoint,
			"OUTPOST_BLOB_S3_ACCESS_KEY="+s3cfg.AccessKey,
			"OUTPOST_BLOB_S3_SECRET_KEY="+s3cfg.SecretKey,
			"OUTPOST_BLOB_S3_BUCKET="+s3cfg.Bucket,
			"OUTPOST_BLOB_S3_REGION="+s3cfg.Region,
			"OUTPOST_BLOB_S3_CREATE_BUCKET=true",
		)
	}
	cp.admin = mustRun(t, cp.env, tl.controlplane, "init", "--data-dir", cp.dir)
	if cp.admin == "" || strings.ContainsAny(cp.admin, " \n") {
		t.Fatalf("controlplane init printed %q, want the admin token alone", cp.admin)
	}
	return cp
}

// serve starts the daemon (extra env such as OUTPOST_ARTIFACT_DELIVERY)
// and waits until it is ready.
func (cp *controlPlane) serve(extraEnv ...string) {
	cp.t.Helper()
	env := append(append([]string{}, cp.env...), extraEnv...)
	cp.proc = startProc(cp.t, "controlplane", filepath.Join(cp.dir, "serve.log"), env,
		cp.tools.controlplane, "serve", "--data-dir", cp.dir, "--listen", cp.addr)
	waitHTTP(cp.t, cp.proc, cp.url+"/readyz", http.StatusOK)
}

func (cp *controlPlane) stop() { cp.t.Helper(); cp.proc.stop(cp.t) }

// cli runs an admin command against the running daemon as the admin and
// returns its trimmed stdout.
func (cp *controlPlane) cli(args ...string) string {
	cp.t.Helper()
	env := append(append([]string{}, cp.env...), "OUTPOST_SERVER="+cp.url, "OUTPOST_TOKEN="+cp.admin)
	return mustRun(cp.t, env, cp.tools.controlplane, args...)
}

// api calls the HTTP API with token and requires status want.
func (cp *controlPlane) api(method, path, token string, body, out any, want int) []byte {
	cp.t.Helper()
	return mustDo(cp.t, method, cp.url+path, token, body, out, want)
}

// vendorKey is the base64 public key mirrors and clients pin.
func (cp *controlPlane) vendorKey() string {
	cp.t.Helper()
	var keys struct {
		Items []struct {
			PublicKey string `json:"public_key"`
			Status    string `json:"status"`
		} `json:"items"`
	}
	cp.api("GET", "/v1/keys", cp.admin, nil, &keys, http.StatusOK)
	if len(keys.Items) != 1 {
		cp.t.Fatalf("GET /v1/keys: %d keys, want the one init generated", len(keys.Items))
	}
	return keys.Items[0].PublicKey
}

// snapshot builds the tenant's next snapshot through the CLI and returns
// its id and the TUF snapshot version it published (what a mirror that
// holds it reports as its sequence).
func (cp *controlPlane) snapshot(tenant string) (string, int64) {
	cp.t.Helper()
	var s struct {
		SnapshotID string `json:"snapshot_id"`
		Sequence   int64  `json:"sequence"`
	}
	out := cp.cli("snapshot", "build", "--tenant", tenant, "--output", "json")
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.SnapshotID == "" {
		cp.t.Fatalf("snapshot build printed %q: %v", out, err)
	}
	// What a mirror reports holding is the TUF snapshot version.
	return s.SnapshotID, tufSnapshotVersion(cp.t, cp, tenant)
}

// rootFile writes the tenant's root.json (`controlplane root show`; after
// a first build when the tenant has none yet) to a file and returns its
// path: what the vendor hands a site.
func (cp *controlPlane) rootFile(tenant string) string {
	cp.t.Helper()
	env := append(append([]string{}, cp.env...), "OUTPOST_SERVER="+cp.url, "OUTPOST_TOKEN="+cp.admin)
	r := run(cp.t, env, cp.tools.controlplane, "root", "show", tenant)
	if r.code != 0 {
		cp.snapshot(tenant)
		r = run(cp.t, env, cp.tools.controlplane, "root", "show", tenant)
	}
	if r.code != 0 || !strings.Contains(r.stdout, `"_type":"root"`) {
		cp.t.Fatalf("root show %s: exit %d: %.200s %s", tenant, r.code, r.stdout, r.stderr)
	}
	p := filepath.Join(cp.t.TempDir(), tenant+"-root.json")
	if err := os.WriteFile(p, []byte(r.stdout), 0o600); err != nil {
		cp.t.Fatal(err)
	}
	return p
}

// release publishes a release with one linux/x64 file: created first, then
// the file uploaded and attached, as a vendor's pipeline would.
func (cp *controlPlane) release(product, version, file string) (releaseID, artifactID string) {
	cp.t.Helper()
	releaseID = cp.cli("release", "create", "--product", product, "--channel", "stable", "--version", version)
	artifactID = cp.cli("artifact", "upload", file)
	cp.cli("release", "attach", releaseID, artifactID, "--platform", "linux", "--arch", "x64", "--installer-type", "tar.gz")
	return releaseID, artifactID
}

// tenantToken creates a tenant token through the API.
func (cp *controlPlane) tenantToken(tenant string) string {
	cp.t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	cp.api("POST", "/v1/tokens", cp.admin, map[string]any{"role": "tenant", "tenant_id": tenant, "name": "e2e"}, &tok, http.StatusCreated)
	return tok.Token
}

// registerMirror registers a mirror's public key and returns its id and
// credential.
func (cp *controlPlane) registerMirror(tenant, name, publicKey string) (string, string) {
	cp.t.Helper()
	var m struct {
		MirrorID   string `json:"mirror_id"`
		Credential string `json:"credential"`
	}
	cp.api("POST", "/v1/tenants/"+tenant+"/mirrors", cp.admin, map[string]any{
		"name": name, "allowed_channels": []string{"stable"}, "public_key": publicKey,
	}, &m, http.StatusCreated)
	return m.MirrorID, m.Credential
}

// exportBundle writes the tenant's TUF repository as a bundle (since > 0:
// for a mirror holding snapshot version `since`, only what it lacks) and
// returns its path.
func (cp *controlPlane) exportBundle(tenant string, since int64) string {
	cp.t.Helper()
	out := filepath.Join(cp.t.TempDir(), fmt.Sprintf("%s-since%d.tar", tenant, since))
	args := []string{"bundle", "export", "--tenant", tenant, "--out", out}
	if since > 0 {
		args = append(args, "--since", fmt.Sprint(since))
	}
	cp.cli(args...)
	return out
}

// --- mirror ---

// mirrorConfig is what a test varies in a mirror's config.
type mirrorConfig struct {
	tenant string
	// root is the tenant's root.json (cp.rootFile).
	root       string
	source     string // controlplane, s3, upstream, none
	vendorURL  string
	credential string
	upstream   string
	s3         *s3.Config
	s3Prefix   string
	// adminHashes are admin_token_hashes: the status page's upload.
	adminHashes []string
}

// mirrorDaemon is one mirror: its data dir, config and, while serving,
// its process.
type mirrorDaemon struct {
	t         *testing.T
	tools     tools
	name      string
	dir       string
	config    string
	addr      string
	url       string
	publicKey string // the mirror's own key, for registration
	tenant    string
	proc      *proc
}

// servedManifest is what the mirror serves as a TUF client reads it:
// verified from the tenant's root (the copy init made in the data dir)
// through /tuf/, nil when the mirror holds nothing yet.
func servedManifest(ctx context.Context, m *mirrorDaemon) (*snapshot.Manifest, error) {
	root, err := os.ReadFile(filepath.Join(m.dir, "root.json"))
	if err != nil {
		return nil, err
	}
	f := tufFetcher{base: m.url + "/tuf/"}
	code, _, err := call(ctx, &http.Client{Timeout: 10 * time.Second}, "GET", f.base+"metadata/timestamp.json", "", nil, nil)
	if err != nil {
		return nil, err
	}
	if code == http.StatusNotFound || code == http.StatusServiceUnavailable {
		return nil, nil
	}
	store := tuf.NewMemStore()
	if err := tuf.Init(ctx, store, m.tenant, root); err != nil {
		return nil, err
	}
	c := tuf.NewClient(m.tenant, f, store, tuf.ClientOptions{})
	if _, err := c.Update(ctx); err != nil {
		return nil, fmt.Errorf("%s: TUF update: %w", m.name, err)
	}
	return c.Repository().Manifest()
}

// tufFetcher is a tuf.Fetcher over a mirror's /tuf/.
type tufFetcher struct{ base string }

func (f tufFetcher) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: status %d", path, resp.StatusCode)
	}
	return resp.Body, nil
}

// newMirror runs `mirror init` (which creates the mirror's key) and writes
// the test's config.
func newMirror(t *testing.T, tl tools, name string, c mirrorConfig) *mirrorDaemon {
	t.Helper()
	m := &mirrorDaemon{t: t, tools: tl, name: "mirror " + name, dir: t.TempDir(), addr: testenv.FreePort(t), tenant: c.tenant}
	m.url = "http://" + m.addr
	out := mustRun(t, baseEnv(), tl.mirror, "init", "--data-dir", m.dir, "--tenant-id", c.tenant,
		"--root-file", c.root, "--output", "json")
	var res struct {
		Config    string `json:"config"`
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.PublicKey == "" {
		t.Fatalf("mirror init printed %q: %v", out, err)
	}
	m.config, m.publicKey = res.Config, res.PublicKey
	m.configure(c)
	return m
}

// configure rewrites the mirror's config file.
func (m *mirrorDaemon) configure(c mirrorConfig) {
	m.t.Helper()
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\nlisten: %s\nlog_level: warn\n", q(m.dir), q(m.addr))
	// The root init copied into the data dir: read once, to initialise
	// mirror.db.
	fmt.Fprintf(&b, "tenant_id: %s\nroot_file: %s\n", q(c.tenant), q(filepath.Join(m.dir, "root.json")))
	fmt.Fprintf(&b, "source: %s\nsync_interval: 1s\nretry_max_elapsed: 10s\n", c.source)
	if c.vendorURL != "" {
		fmt.Fprintf(&b, "vendor_url: %s\ncredential: %s\n", q(c.vendorURL), q(c.credential))
	}
	if c.upstream != "" {
		fmt.Fprintf(&b, "upstream_url: %s\n", q(c.upstream))
	}
	if c.s3 != nil {
		fmt.Fprintf(&b, "s3:\n  endpoint: %s\n  access_key: %s\n  secret_key: %s\n  bucket: %s\n  region: %s\n  prefix: %s\n",
			q(c.s3.Endpoint), q(c.s3.AccessKey), q(c.s3.SecretKey), q(c.s3.Bucket), q(c.s3.Region), q(c.s3Prefix))
	}
	if len(c.adminHashes) > 0 {
		hs, _ := json.Marshal(c.adminHashes)
		fmt.Fprintf(&b, "admin_token_hashes: %s\n", hs)
	}
	if err := os.WriteFile(m.config, []byte(b.String()), 0o600); err != nil {
		m.t.Fatal(err)
	}
}

// serve starts `mirror serve` (sync loop + HTTP) and waits for /healthz.
func (m *mirrorDaemon) serve(extraEnv ...string) {
	m.t.Helper()
	m.proc = startProc(m.t, m.name, filepath.Join(m.dir, "serve.log"), baseEnv(extraEnv...), m.tools.mirror, "serve", "--config", m.config)
	waitHTTP(m.t, m.proc, m.url+"/healthz", http.StatusOK)
}

func (m *mirrorDaemon) stop() { m.t.Helper(); m.proc.stop(m.t) }

// cmd runs a one-shot mirror command on the data dir (the daemon must not
// be running: bbolt allows one process).
func (m *mirrorDaemon) cmd(args ...string) result {
	m.t.Helper()
	return run(m.t, baseEnv(), m.tools.mirror, append(args, "--config", m.config)...)
}

// importBundle carries a bundle across the air gap: stop the daemon if it
// runs, `mirror import`, start it again.
func (m *mirrorDaemon) importBundle(path string) {
	m.t.Helper()
	running := m.proc != nil && !m.proc.exited()
	if running {
		m.stop()
	}
	if r := m.cmd("import", path); r.code != 0 {
		m.t.Fatalf("%s: import %s: exit %d: %s", m.name, filepath.Base(path), r.code, r.stderr)
	}
	if running {
		m.serve()
	}
}

// status is the running mirror's GET /v1/status.
func (m *mirrorDaemon) status() mirror.Status {
	m.t.Helper()
	var st mirror.Status
	mustDo(m.t, "GET", m.url+"/v1/status", "", nil, &st, http.StatusOK)
	return st
}

// waitSequence waits until the running mirror serves snapshot seq.
func (m *mirrorDaemon) waitSequence(seq int64) {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var st mirror.Status
	for time.Now().Before(deadline) {
		if m.proc.exited() {
			m.t.Fatalf("%s exited; log:\n%s", m.name, m.proc.logTail())
		}
		st = m.status()
		if st.Snapshot != nil && st.Snapshot.Sequence == seq && st.Cache.Missing == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.Marshal(st)
	m.t.Fatalf("%s did not reach sequence %d in 30s; status %s; log:\n%s", m.name, seq, b, m.proc.logTail())
}

// localStatus is `mirror status` on the data dir (daemon stopped).
func (m *mirrorDaemon) localStatus() mirror.Status {
	m.t.Helper()
	r := m.cmd("status", "--output", "json")
	if r.code != 0 {
		m.t.Fatalf("%s: status: exit %d: %s", m.name, r.code, r.stderr)
	}
	var st mirror.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		m.t.Fatalf("%s: status printed %q: %v", m.name, r.stdout, err)
	}
	return st
}

// heldSequence is the held snapshot's sequence, 0 when none.
func (m *mirrorDaemon) heldSequence() int64 {
	m.t.Helper()
	if st := m.localStatus(); st.Snapshot != nil {
		return st.Snapshot.Sequence
	}
	return 0
}

// --- updatectl ---

// updateQuery is one client's question.
type updateQuery struct {
	product, version, clientID string
}

// check runs `updatectl check --output json` and returns the decision
// document and the exit status (0 up to date, 10 update available).
func (tl tools) check(t *testing.T, server string, q updateQuery) (string, int) {
	t.Helper()
	args := []string{"check", "--server", server, "--output", "json", "--product", q.product, "--channel", "stable",
		"--platform", "linux", "--arch", "x64", "--version", q.version}
	if q.clientID != "" {
		args = append(args, "--client-id", q.clientID)
	}
	r := run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir()), tl.updatectl, args...)
	if r.code != 0 && r.code != 10 {
		t.Fatalf("updatectl check against %s: exit %d: %s", server, r.code, r.stderr)
	}
	return r.stdout, r.code
}

// download runs `updatectl download` into dir, verifying against the
// tenant's root (a root.json path) and returns the downloaded file's path.
func (tl tools) download(t *testing.T, server, tenant, root, dir string, q updateQuery) string {
	t.Helper()
	path := mustRun(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir()), tl.updatectl, "download", "--server", server, "--tenant", tenant, "--tuf-root", root,
		"--product", q.product, "--channel", "stable", "--platform", "linux", "--arch", "x64",
		"--version", q.version, "--out", dir)
	if path == "" {
		t.Fatalf("updatectl download against %s printed no path", server)
	}
	return path
}
