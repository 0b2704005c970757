package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/client"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real updatectl once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "updatectl-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "updatectl")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	// updatectl keeps its event client id in the state dir: never the
	// real home's.
	state, err := os.MkdirTemp("", "updatectl-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	os.RemoveAll(state)
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// fixture is a tenant's TUF repository with one release and a mirror
// serving it, honest unless told otherwise; key is the vendor's lease
// signing key.
type fixture struct {
	pub      ed25519.PublicKey
	key      ed25519.PrivateKey
	tenantID string
	entID    string
	prdID    string
	m        *snapshot.Manifest
	tv       *tuftest.Vendor
	rootFile string // the tenant's root.json (--tuf-root)
	payload  []byte
	decision client.Decision
	body     []byte
	repo     http.Handler // the metadata served at /tuf/
	status   int          // non-zero: answer check with this status
	srv      *httptest.Server
	mu       sync.Mutex // guards decision, body, repo, status against the handlers
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{pub: pub, key: key, tenantID: catalog.NewID(catalog.PrefixTenant), payload: make([]byte, 200<<10)}
	rand.Read(f.payload)
	f.body = f.payload
	sum := sha256.Sum256(f.payload)
	now := time.Now().UTC().Truncate(time.Second)
	f.prdID = catalog.NewID(catalog.PrefixProduct)
	f.entID = catalog.NewID(catalog.PrefixEntitlement)
	art := catalog.NewID(catalog.PrefixArtifact)
	rel := catalog.NewID(catalog.PrefixRelease)
	f.m = &snapshot.Manifest{
		Schema: snapshot.Schema, SnapshotID: catalog.NewID(catalog.PrefixSnapshot), TenantID: f.tenantID, Sequence: 1,
		CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour),
		Tenant:   snapshot.Tenant{TenantID: f.tenantID, Name: "Acme", Status: "active", Metadata: json.RawMessage(`{}`)},
		Products: []snapshot.Product{{ProductID: f.prdID, Name: "App", Distribution: "licensed", Metadata: json.RawMessage(`{}`)}},
		Releases: []snapshot.Release{{ReleaseID: rel, ProductID: f.prdID, Channel: "stable", Version: "2.0.0", PublishedAt: now.Add(-time.Hour),
			Status: "ACTIVE", Metadata: json.RawMessage(`{}`), Artifacts: []snapshot.ReleaseArtifact{{
				ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ArtifactID: art, Platform: "linux", Arch: "x64", InstallerType: "zip"}}}},
		Artifacts:       []snapshot.Artifact{{ArtifactID: art, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(f.payload)), SourceType: "MANAGED"}},
		Policies:        []snapshot.Policy{},
		BlockedVersions: []snapshot.BlockedVersion{},
		Rollouts:        []snapshot.Rollout{},
		Entitlements:    []snapshot.Entitlement{{EntitlementID: f.entID, ProductID: f.prdID, Policy: json.RawMessage(`{"max_seats":3}`), StartsAt: now.Add(-time.Hour)}},
		SeatAssignments: []snapshot.SeatAssignment{},
		MirrorKeys:      []snapshot.MirrorKey{},
	}
	f.tv = tuftest.NewVendor(t, f.tenantID, 0)
	f.publish(t)
	f.repo = tufhttp.New(f.tv.Repo, tufhttp.Options{Prefix: "/tuf/"})
	f.rootFile = filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(f.rootFile, f.tv.RootData, 0o600); err != nil {
		t.Fatal(err)
	}
	ra := f.m.Releases[0].Artifacts[0].ReleaseArtifactID
	f.decision = client.Decision{
		UpdateAvailable: true, Action: client.ActionDownload,
		Release: &client.Release{ReleaseID: rel, ProductID: f.prdID, Channel: "stable", Version: "2.0.0", PublishedAt: now.Add(-time.Hour)},
		Artifact: &client.Artifact{ArtifactID: art, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(f.payload)), URL: "/v1/artifacts/" + art, InstallerType: "zip",
			Target: tuf.ArtifactTarget(f.prdID, ra)},
		Snapshot: &client.SnapshotRef{SnapshotID: f.m.SnapshotID, Sequence: 1},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/updates/check", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case f.status == 404:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"not_found","message":"product not found"}}`))
		case f.status != 0:
			w.WriteHeader(f.status)
			w.Write([]byte(`{"error":{"code":"internal","message":"internal error"}}`))
		case r.URL.Query().Get("version") == "1.9.0":
			w.Write([]byte(`{"update_available":false,"action":"NONE","reason":"newer release not rolled out to this client"}`))
		case r.URL.Query().Get("version") == "2.0.0":
			w.Write([]byte(`{"update_available":false,"action":"NONE","reason":"no newer release"}`))
		default:
			json.NewEncoder(w).Encode(f.decision)
		}
	})
	// Metadata and documents from the repository, the artifact target
	// from body.
	mux.HandleFunc("GET /tuf/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, repo := f.body, f.repo
		f.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/tuf/targets/") && !strings.HasSuffix(r.URL.Path, ".json") {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
			return
		}
		repo.ServeHTTP(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// publish signs f.m as the repository's next version.
func (f *fixture) publish(t *testing.T) {
	t.Helper()
	f.tv.Now = time.Now().UTC().Truncate(time.Second)
	f.tv.Build(f.m)
}

// trust is the flags that verify downloads: the tenant's root.
func (f *fixture) trust() []string { return []string{"--tuf-root", f.rootFile, "--tenant", f.tenantID} }

// run runs the real binary and returns its exit code, stdout and stderr.
func run_(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run: %v", err)
	}
	return code, out.String(), errb.String()
}

func TestUpdatectl_ExitCodes(t *testing.T) {
	f := newFixture(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	trust := f.trust()
	honest := f.repo
	forged := tuftest.NewVendor(t, f.tenantID, 100)
	forged.Build(f.m)
	query := []string{"--product", f.prdID, "--platform", "linux", "--arch", "x64", "--version", "1.0.0"}
	dir := t.TempDir()

	cases := []struct {
		name       string
		setup      func()
		env        []string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		wantFile   string // path that must hold the payload (or "" )
		noFile     string // path that must not exist
	}{
		{name: "check update available", args: append([]string{"check", "--server", f.srv.URL}, query...), wantCode: 10, wantStdout: "update available"},
		{name: "check json", args: append([]string{"check", "--server", f.srv.URL, "-o", "json"}, query...), wantCode: 10, wantStdout: `"update_available": true`},
		{name: "check up to date", args: []string{"check", "--server", f.srv.URL, "--product", f.prdID, "--version", "2.0.0"}, wantCode: 0, wantStdout: "up to date: no newer release"},
		{name: "check from environment", env: []string{"OUTPOST_SERVER=" + f.srv.URL, "OUTPOST_PRODUCT=" + f.prdID, "OUTPOST_VERSION=1.0.0", "OUTPOST_PLATFORM=linux", "OUTPOST_ARCH=x64"}, args: []string{"check"}, wantCode: 10},
		{name: "usage: missing version", args: []string{"check", "--server", f.srv.URL, "--product", "p"}, wantCode: 1, wantStderr: "version is required"},
		{name: "usage: unknown flag", args: []string{"check", "--bogus"}, wantCode: 1, wantStderr: "unknown flag"},
		{name: "usage: download without a root", args: append([]string{"download", "--server", f.srv.URL}, query...), wantCode: 1, wantStderr: "--tuf-root is required"},
		{name: "network error", args: append([]string{"check", "--server", closedURL}, query...), wantCode: 5, wantStderr: "network error"},
		{name: "not found", setup: func() { f.status = 404 }, args: append([]string{"check", "--server", f.srv.URL}, query...), wantCode: 4, wantStderr: "product not found"},
		{name: "server error", setup: func() { f.status = 500 }, args: append([]string{"check", "--server", f.srv.URL}, query...), wantCode: 2, wantStderr: "internal"},
		{name: "download verified", args: append(append([]string{"download", "--server", f.srv.URL, "--out", filepath.Join(dir, "ok.zip")}, trust...), query...),
			wantCode: 0, wantStdout: filepath.Join(dir, "ok.zip"), wantFile: filepath.Join(dir, "ok.zip")},
		{name: "download into directory", args: append(append([]string{"download", "--server", f.srv.URL, "--out", dir}, trust...), query...),
			wantCode: 0, wantFile: filepath.Join(dir, "App-2.0.0-linux-x64.zip"), noFile: filepath.Join(dir, "."+f.prdID+"-2.0.0-linux-x64.zip.download")},
		{name: "check left out of a rollout says so", args: []string{"check", "--server", f.srv.URL, "--product", f.prdID, "--version", "1.9.0", "--client-id", "c7"},
			wantCode: 0, wantStdout: "no update yet: a newer release is rolling out to a share of clients that does not include this one (--client-id c7)"},
		{name: "check without a client id, left out of a rollout", args: []string{"check", "--server", f.srv.URL, "--product", f.prdID, "--version", "1.9.0"},
			wantCode: 0, wantStdout: "a client without --client-id is in none"},
		{name: "download up to date", args: append([]string{"download", "--server", f.srv.URL, "--product", f.prdID, "--version", "2.0.0", "--out", filepath.Join(dir, "none")}, trust...),
			wantCode: 0, wantStderr: "up to date", noFile: filepath.Join(dir, "none")},
		{name: "download into a missing directory names it", args: append(append([]string{"download", "--server", f.srv.URL, "--out", filepath.Join(dir, "nope") + "/"}, trust...), query...),
			wantCode: 1, wantStderr: "directory " + filepath.Join(dir, "nope") + "/ does not exist; create it first", noFile: filepath.Join(dir, "nope")},
		{name: "download to a file in a missing directory names it", args: append(append([]string{"download", "--server", f.srv.URL, "--out", filepath.Join(dir, "nope", "x.zip")}, trust...), query...),
			wantCode: 1, wantStderr: "directory " + filepath.Join(dir, "nope") + " does not exist; create it first", noFile: filepath.Join(dir, "nope")},
		{name: "missing root file is named", args: append([]string{"download", "--server", f.srv.URL, "--out", dir, "--tuf-root", filepath.Join(dir, "root.json"), "--tenant", f.tenantID}, query...),
			wantCode: 1, wantStderr: "--tuf-root: open " + filepath.Join(dir, "root.json")},
		{name: "lying mirror: bytes altered", setup: func() {
			b := bytes.Clone(f.payload)
			b[0] ^= 0xff
			f.body = b
		}, args: append(append([]string{"download", "--server", f.srv.URL, "--out", filepath.Join(dir, "bad1.zip")}, trust...), query...),
			wantCode: 3, wantStderr: "verification failed", noFile: filepath.Join(dir, "bad1.zip")},
		{name: "lying mirror: metadata signed by other keys", setup: func() { f.repo = tufhttp.New(forged.Repo, tufhttp.Options{Prefix: "/tuf/"}) },
			args:     append(append([]string{"download", "--server", f.srv.URL, "--out", filepath.Join(dir, "bad2.zip")}, trust...), query...),
			wantCode: 3, wantStderr: "verification failed", noFile: filepath.Join(dir, "bad2.zip")},
		{name: "lying mirror: wrong tenant pinned", args: append([]string{"download", "--server", f.srv.URL, "--out", filepath.Join(dir, "bad3.zip"),
			"--tuf-root", f.rootFile, "--tenant", catalog.NewID(catalog.PrefixTenant)}, query...),
			wantCode: 3, noFile: filepath.Join(dir, "bad3.zip")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			f.status, f.body, f.repo = 0, f.payload, honest
			if tc.setup != nil {
				tc.setup()
			}
			f.mu.Unlock()
			code, stdout, stderr := run_(t, tc.env, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit code got %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("stdout got %q, want it to contain %q", stdout, tc.wantStdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr got %q, want it to contain %q", stderr, tc.wantStderr)
			}
			if code != 0 && code != 10 && strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", stderr)
			}
			if tc.wantFile != "" {
				got, err := os.ReadFile(tc.wantFile)
				if err != nil || !bytes.Equal(got, f.payload) {
					t.Errorf("%s: %v, %d bytes; want the payload", tc.wantFile, err, len(got))
				}
			}
			if tc.noFile != "" {
				for _, p := range []string{tc.noFile, tc.noFile + ".part"} {
					if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s exists (err %v)", p, err)
					}
				}
			}
		})
	}
}

func TestUpdatectl_LeaseVerify(t *testing.T) {
	f := newFixture(t)
	_, evil, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().Unix()
	claims := license.Claims{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: f.entID, TenantID: f.tenantID, ProductID: f.prdID,
		SubjectType: "machine", SubjectID: "host-1", Features: []string{}, IssuedAt: now - 10, ExpiresAt: now + 3600, Issuer: license.IssuerVendor}
	good, err := license.Issue(claims, f.key)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := license.Issue(claims, evil)
	expiredC := claims
	expiredC.IssuedAt, expiredC.ExpiresAt = now-7200, now-3600
	expired, _ := license.Issue(expiredC, f.key)
	keyFile := filepath.Join(t.TempDir(), "keys.txt")
	os.WriteFile(keyFile, []byte(client.KeyID(f.pub)+"="+base64.StdEncoding.EncodeToString(f.pub)+"\n"), 0o644)
	trust := []string{"--trusted-key", keyFile, "--tenant", f.tenantID}
	cases := []struct {
		name     string
		token    string
		wantCode int
		want     string
	}{
		{"valid", good, 0, "valid lease"},
		{"forged", forged, 3, "not a trusted vendor key"},
		{"expired", expired, 3, "expired"},
		{"altered", good[:len(good)-3] + "AAA", 3, "rejected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run_(t, nil, append([]string{"lease", "verify", tc.token}, trust...)...)
			if code != tc.wantCode || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("got exit %d, %q %q; want %d containing %q", code, stdout, stderr, tc.wantCode, tc.want)
			}
		})
	}
}

func TestExitCode_Classifies(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"verification", fmt.Errorf("x: %w", client.ErrVerification), exitVerification},
		{"not found", &client.Error{Status: 404, Code: client.CodeNotFound}, exitNotFound},
		{"forbidden", &client.Error{Status: 403, Code: client.CodeForbidden}, exitServer},
		{"protocol", client.ErrProtocol, exitServer},
		{"network", client.ErrNetwork, exitNetwork},
		{"config", client.ErrConfig, exitUsage},
		{"usage", usageError{errors.New("bad")}, exitUsage},
		{"local", errors.New("disk full"), exitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.err); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRenderBar_Shapes(t *testing.T) {
	cases := []struct {
		done, total int64
		want        string
	}{
		{0, 100, "f [..........]   0%  0 B / 100 B"},
		{50, 100, "f [#####.....]  50%  50 B / 100 B"},
		{3 << 20, 3 << 20, "f [##########] 100%  3.0 MiB / 3.0 MiB"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := renderBar("f", tc.done, tc.total, 10); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUpdatectl_Completion: updatectl has shell completion like the other
// binaries (`updatectl completion bash|zsh|fish|powershell`).
func TestUpdatectl_Completion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errs := run_(t, nil, "completion", shell)
			if code != 0 || !strings.Contains(out, "updatectl") {
				t.Errorf("exit %d, %d bytes, stderr %q", code, len(out), errs)
			}
		})
	}
}
