package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	outpostd "github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/store/bolt/bolttest"
	"github.com/outpost/outpost/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type cp struct {
	t       *testing.T
	bin     string
	dataDir string
	addr    string
	env     []string
	proc    *exec.Cmd
	stderr  *bytes.Buffer
}

func newCP(t *testing.T) *cp {
	t.Helper()
	return &cp{t: t, bin: testenv.Binary(t, "./cmd/controlplane"), dataDir: filepath.Join(t.TempDir(), "cp"), addr: testenv.FreePort(t)}
}

// run runs a one-shot command and returns stdout, stderr and the error.
func (c *cp) run(args ...string) (string, string, error) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "--data-dir", c.dataDir)...)
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (c *cp) mustRun(args ...string) string {
	c.t.Helper()
	out, errs, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("controlplane %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	return strings.TrimSpace(out)
}

func (c *cp) url() string { return "http://" + c.addr }

func (c *cp) start() {
	c.t.Helper()
	c.proc = exec.Command(c.bin, "serve", "--data-dir", c.dataDir, "--listen", c.addr)
	c.proc.Env = append(os.Environ(), c.env...)
	c.stderr = &bytes.Buffer{}
	c.proc.Stderr = c.stderr
	if err := c.proc.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if c.proc.ProcessState == nil {
			c.proc.Process.Kill()
			c.proc.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get(c.url() + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("control plane did not become ready: %s", c.stderr)
}

func TestControlplane_InitAndTokens(t *testing.T) {
	c := newCP(t)
	token := c.mustRun("init")
	if !strings.HasPrefix(token, "opt_") || strings.Contains(token, "\n") {
		t.Fatalf("init printed %q, want the admin token alone", token)
	}
	if _, errs, err := c.run("init"); err == nil || !strings.Contains(errs, "already initialized") {
		t.Fatalf("second init: err %v, stderr %q", err, errs)
	}
	info, err := os.Stat(filepath.Join(c.dataDir, "data-encryption.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("data-encryption key: %v, mode %v", err, info.Mode())
	}
	keys := c.mustRun("keys", "list", "--output", "json")
	var kl struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(keys), &kl); err != nil || len(kl.Items) != 1 {
		t.Fatalf("keys list: %v %s", err, keys)
	}
	if text := c.mustRun("keys", "list"); !strings.HasPrefix(text, "KEY ") || !strings.Contains(strings.SplitN(text, "\n", 2)[0], "PUBLIC KEY") {
		t.Fatalf("keys list has no header row:\n%s", text)
	}
	admin2 := c.mustRun("token", "create", "--role", "admin")
	if !strings.HasPrefix(admin2, "opt_") || admin2 == token {
		t.Fatalf("token create printed %q", admin2)
	}
	if _, errs, err := c.run("token", "create", "--role", "tenant"); err == nil || !strings.Contains(errs, "tenant_id") {
		t.Fatalf("tenant token without tenant: %v %q", err, errs)
	}
}

func TestControlplane_Config(t *testing.T) {
	c := newCP(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:1\nlisen_typo: x\n"), 0o600)
	if _, errs, err := c.run("init", "--config", bad); err == nil || !strings.Contains(errs, "lisen_typo") {
		t.Fatalf("unknown key: err %v, stderr %q", err, errs)
	}
	t.Run("the shipped example config is valid", func(t *testing.T) {
		example := filepath.Join(testenv.RepoRoot(t), "configs", "controlplane.yaml")
		if out, err := exec.Command(c.bin, "init", "--config", example, "--data-dir", filepath.Join(dir, "example")).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	})
	t.Run("precedence flag over env over file", func(t *testing.T) {
		good := filepath.Join(dir, "good.yaml")
		fileDir := filepath.Join(dir, "from-file")
		envDir := filepath.Join(dir, "from-env")
		os.WriteFile(good, []byte("data_dir: "+fileDir+"\n"), 0o600)
		cmd := exec.Command(c.bin, "init", "--config", good)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if _, err := os.Stat(filepath.Join(fileDir, "controlplane.db")); err != nil {
			t.Fatal("file's data_dir not used")
		}
		cmd = exec.Command(c.bin, "init", "--config", good)
		cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+envDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if _, err := os.Stat(filepath.Join(envDir, "controlplane.db")); err != nil {
			t.Fatal("env OUTPOST_DATA_DIR did not override the file")
		}
		flagDir := filepath.Join(dir, "from-flag")
		cmd = exec.Command(c.bin, "init", "--config", good, "--data-dir", flagDir)
		cmd.Env = append(os.Environ(), "OUTPOST_DATA_DIR="+envDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		if _, err := os.Stat(filepath.Join(flagDir, "controlplane.db")); err != nil {
			t.Fatal("--data-dir did not override env")
		}
	})
}

func TestControlplane_ServeLockAndShutdown(t *testing.T) {
	c := newCP(t)
	token := c.mustRun("init")
	c.start()

	start := time.Now()
	_, errs, err := c.run("token", "create", "--role", "admin")
	if err == nil || !strings.Contains(errs, "in use") {
		t.Fatalf("token create while serving: err %v, stderr %q", err, errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("token create took %s to fail; it must fail at once", d)
	}

	// A slow request in flight when SIGTERM arrives still finishes.
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", c.url()+"/v1/artifacts", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	pw.Write([]byte("first half "))
	time.Sleep(300 * time.Millisecond)
	c.proc.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	pw.Write([]byte("second half"))
	pw.Close()
	if got := <-done; got != 201 {
		t.Fatalf("in-flight upload finished with %d, want 201", got)
	}
	if err := c.proc.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM: %s", err, c.stderr)
	}
	// The store was closed cleanly: the data dir opens again.
	c.mustRun("token", "create", "--role", "admin")
	c.mustRun("audit", "verify")
}

// TestControlplane_SecondSignalExitsAtOnce: `controlplane serve` follows
// the one signal convention of both daemons (internal/daemon): the first
// SIGTERM starts a graceful stop that a slow upload holds for up to
// shutdown_timeout; a second exits at once with daemon.ExitInterrupted.
func TestControlplane_SecondSignalExitsAtOnce(t *testing.T) {
	c := newCP(t)
	token := c.mustRun("init")
	c.env = append(c.env, "OUTPOST_SHUTDOWN_TIMEOUT=1m")
	c.start()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		req, _ := http.NewRequest("POST", c.url()+"/v1/artifacts", pr)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/octet-stream")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	pw.Write([]byte("an upload that does not end"))
	time.Sleep(300 * time.Millisecond) // the upload is in its handler
	done := make(chan error, 1)
	go func() { done <- c.proc.Wait() }()
	c.proc.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		t.Fatalf("serve exited (%v) on the first signal with an upload in flight; want a graceful wait", err)
	case <-time.After(300 * time.Millisecond): // shutting down, held by the upload
	}
	c.proc.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != outpostd.ExitInterrupted {
			t.Fatalf("exit after a second SIGTERM: %v, want code %d; stderr %s", err, outpostd.ExitInterrupted, c.stderr)
		}
		if !strings.Contains(c.stderr.String(), "second signal") {
			t.Errorf("stderr %q does not say why it exited", c.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20s of a second SIGTERM")
	}
}

func TestControlplane_AuditVerifyFindsTamper(t *testing.T) {
	c := newCP(t)
	c.mustRun("init")
	for i := range 3 {
		c.mustRun("token", "create", "--role", "admin", "--name", fmt.Sprint("t", i))
	}
	out := c.mustRun("audit", "verify")
	if !strings.Contains(out, "ok") {
		t.Fatalf("audit verify: %q", out)
	}
	err := bolttest.TamperAuditEvent(filepath.Join(c.dataDir, "controlplane.db"), 3, func(ev *catalog.AuditEvent) {
		ev.ActorID = "mallory"
	})
	if err != nil {
		t.Fatal(err)
	}
	_, errs, err := c.run("audit", "verify")
	if err == nil || !strings.Contains(errs, "event 3") {
		t.Fatalf("audit verify after tamper: err %v, stderr %q", err, errs)
	}
}

func TestControlplane_AdminCLI(t *testing.T) {
	c := newCP(t)
	token := c.mustRun("init")
	c.start()
	c.env = []string{"OUTPOST_SERVER=" + c.url(), "OUTPOST_TOKEN=" + token}
	tenant := c.mustRun("tenant", "create", "acme")
	if !catalog.ValidID(catalog.PrefixTenant, tenant) {
		t.Fatalf("tenant create printed %q", tenant)
	}
	product := c.mustRun("product", "create", "app", "--distribution", "open")
	file := filepath.Join(t.TempDir(), "app.tar.gz")
	os.WriteFile(file, bytes.Repeat([]byte("x"), 100_000), 0o644)
	rel := c.mustRun("release", "create", "--product", product, "--channel", "stable", "--version", "1.0.0", "--file", file)
	list := c.mustRun("release", "list", "--product", product)
	if !strings.Contains(list, rel) || !strings.Contains(list, "ACTIVE") {
		t.Fatalf("release list: %s", list)
	}
	if _, errs, err := c.run("release", "create", "--product", product, "--channel", "stable", "--version", "1.0.0"); err == nil || !strings.Contains(errs, "conflict") && !strings.Contains(errs, "exists") {
		t.Fatalf("duplicate release: %v %q", err, errs)
	}
	t.Run("a typo in --file burns no version", func(t *testing.T) {
		_, errs, err := c.run("release", "create", "--product", product, "--version", "1.0.1", "--file", filepath.Join(t.TempDir(), "missing.msi"))
		if err == nil || !strings.Contains(errs, "missing.msi") || !strings.Contains(errs, "nothing was created") {
			t.Fatalf("release create with a missing file: %v %q", err, errs)
		}
		if got := c.mustRun("release", "create", "--product", product, "--version", "1.0.1", "--file", file); !catalog.ValidID(catalog.PrefixRelease, got) {
			t.Fatalf("the retry printed %q", got)
		}
	})
	snap := c.mustRun("snapshot", "build", "--tenant", tenant, "--output", "json")
	var s map[string]any
	json.Unmarshal([]byte(snap), &s)
	if s["sequence"] != float64(1) {
		t.Fatalf("snapshot build: %s", snap)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar")
	// TUF is the default format (no --mirror to follow).
	if got := c.mustRun("bundle", "export", "--tenant", tenant, "--out", out); !strings.Contains(got, "TUF") {
		t.Fatalf("bundle export printed %q, want a TUF bundle by default", got)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() < 100_000 {
		t.Fatalf("bundle: %v", err)
	}
	t.Run("mirrors, rollouts, entitlements, tokens, api", func(t *testing.T) {
		mc := c.mustRun("mirror", "create", "--tenant", tenant, "--channels", "stable,beta", "--name", "site")
		if !strings.HasPrefix(mc, "mirror:     mir_") || !strings.Contains(mc, "\ncredential: omc_") {
			t.Fatalf("mirror create printed %q, want the mirror id and the credential", mc)
		}
		if list := c.mustRun("mirror", "list", "--tenant", tenant); !strings.Contains(list, "beta,stable") || !strings.Contains(list, "never") {
			t.Fatalf("mirror list: %s", list)
		}
		rel2 := c.mustRun("release", "create", "--product", product, "--channel", "stable", "--version", "1.1.0", "--file", file)
		ro := c.mustRun("rollout", "create", "--product", product, "--release", rel2, "--percentage", "25")
		if got := c.mustRun("rollout", "set", ro, "--percentage", "50"); !strings.Contains(got, "50%") {
			t.Fatalf("rollout set: %s", got)
		}
		if _, errs, err := c.run("rollout", "set", ro, "--status", "exploded"); err == nil || !strings.Contains(errs, "status") {
			t.Fatalf("bad rollout status: %v %q", err, errs)
		}
		ent := c.mustRun("entitlement", "create", "--tenant", tenant, "--product", product, "--policy", `{"max_seats":5}`)
		if !catalog.ValidID(catalog.PrefixEntitlement, ent) {
			t.Fatalf("entitlement create printed %q", ent)
		}
		tok := c.mustRun("token", "create", "--role", "tenant", "--tenant", tenant)
		if !strings.HasPrefix(tok, "opt_") {
			t.Fatalf("remote token create printed %q", tok)
		}
		var created struct {
			TokenID   string `json:"token_id"`
			ExpiresAt string `json:"expires_at"`
		}
		json.Unmarshal([]byte(c.mustRun("token", "create", "--role", "tenant_ro", "--tenant", tenant, "--ttl", "1h", "--name", "ci", "--output", "json")), &created)
		if created.TokenID == "" || created.ExpiresAt == "" {
			t.Fatalf("token create --ttl --output json: %+v", created)
		}
		if list := c.mustRun("token", "list"); !strings.Contains(list, created.TokenID) || !strings.Contains(list, "tenant_ro") {
			t.Fatalf("token list does not show %s:\n%s", created.TokenID, list)
		}
		if got := c.mustRun("token", "revoke", created.TokenID); !strings.Contains(got, "revoked") {
			t.Fatalf("token revoke: %q", got)
		}
		if _, errs, err := c.run("token", "create", "--role", "admin", "--ttl", "-5m"); err == nil {
			t.Fatalf("negative --ttl accepted: %q", errs)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(c.mustRun("api", "GET", "/v1/entitlements/"+ent)), &got); err != nil || got["entitlement_id"] != ent {
			t.Fatalf("api GET: %v %v", got, err)
		}
		mid := ""
		var ml struct{ Items []map[string]any }
		json.Unmarshal([]byte(c.mustRun("mirror", "list", "--tenant", tenant, "--output", "json")), &ml)
		if len(ml.Items) == 1 {
			mid = ml.Items[0]["mirror_id"].(string)
		}
		if got := c.mustRun("mirror", "deactivate", mid); !strings.Contains(got, "inactive") {
			t.Fatalf("mirror deactivate: %s", got)
		}
	})
	c.mustRun("release", "revoke", rel)
	if tl := c.mustRun("tenant", "list"); !strings.Contains(tl, "acme") {
		t.Fatalf("tenant list: %s", tl)
	}
	t.Run("policies and tenant changes", func(t *testing.T) {
		pol := c.mustRun("policy", "create", "--tenant", tenant, "--product", product, "--action", "NOTIFY")
		if list := c.mustRun("policy", "list", "--tenant", tenant); !strings.Contains(list, pol) || !strings.Contains(list, "NOTIFY") {
			t.Fatalf("policy list: %s", list)
		}
		if got := c.mustRun("tenant", "set", tenant, "--name", "Acme Corp"); !strings.Contains(got, "Acme Corp") {
			t.Fatalf("tenant set: %s", got)
		}
	})
	// Errors are one line on stderr, exit 1; a wrong command line exits 2.
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"failed command", []string{"release", "revoke", rel}, 1},
		{"unknown flag", []string{"release", "revoke", rel, "--no-such-flag"}, 2},
		{"missing flag", []string{"tenant", "set", tenant}, 2},
	}
	t.Run("a refused token names --token", func(t *testing.T) {
		_, errs, err := c.run("tenant", "list", "--token", "opt_wrong")
		if err == nil || !strings.Contains(errs, "refused the token: pass an admin token with --token or OUTPOST_TOKEN") {
			t.Fatalf("wrong token: %v %q", err, errs)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, err := c.run(tc.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Fatalf("err %v, stderr %q; want exit %d and one line", err, errs, tc.code)
			}
		})
	}
}

// TestControlplane_UnreachableServer: a control plane that cannot be
// reached is named with the flag or variable its URL came from and what
// to do, not only as a dial error.
func TestControlplane_UnreachableServer(t *testing.T) {
	c := newCP(t)
	down := "http://" + testenv.FreePort(t) // nothing listens there
	cases := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"--server", []string{"tenant", "list", "--server", down, "--token", "opt_x"}, nil,
			[]string{"cannot reach the control plane at " + down + " (--server)", "connection refused", "point --server (or OUTPOST_SERVER)"}},
		{"OUTPOST_SERVER", []string{"tenant", "list"}, []string{"OUTPOST_SERVER=" + down, "OUTPOST_TOKEN=opt_x"},
			[]string{"cannot reach the control plane at " + down + " (OUTPOST_SERVER)", "controlplane serve"}},
		{"api", []string{"api", "GET", "/v1/tenants", "--server", down, "--token", "opt_x"}, nil,
			[]string{"cannot reach the control plane at " + down + " (--server)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.env = tc.env
			_, errs, err := c.run(tc.args...)
			if err == nil {
				t.Fatal("succeeded against a closed port")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q, want it to contain %q", errs, w)
				}
			}
		})
	}
}
