package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/testenv"
)

// TestE2E_TUFDefaultPath runs the README's main path with TUF, the
// default trust, on the real binaries: the vendor gets the tenant's root
// with `controlplane root show`; `mirror init --root-file` writes trust:
// tuf; the mirror syncs from the control plane (and its sync report
// reaches the vendor); `updatectl --tuf-root` downloads through it; an
// offline lease is taken on it (mirror keys and entitlements from the
// TUF documents); `bundle export` with no --format writes TUF, which an
// air-gapped trust: tuf mirror imports, and a mirror's last report picks
// the format for --mirror.
func TestE2E_TUFDefaultPath(t *testing.T) {
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()

	tenant := cp.cli("tenant", "create", "Acme")
	product := cp.cli("product", "create", "App", "--distribution", "licensed")
	var ent struct {
		EntitlementID string `json:"entitlement_id"`
	}
	cp.api("POST", "/v1/tenants/"+tenant+"/entitlements", cp.admin, map[string]any{
		"product_id": product, "policy_json": map[string]any{"max_seats": 5},
		"starts_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
	}, &ent, http.StatusCreated)
	file100, sum100 := randomFile(t, t.TempDir(), "app-1.0.0.tar.gz", 64<<10)
	cp.release(product, "1.0.0", file100)
	cp.cli("snapshot", "build", "--tenant", tenant)

	// The vendor hands the tenant's root.json over (the daemon serves:
	// through the API).
	rootFile := filepath.Join(t.TempDir(), "root.json")
	root := cp.cli("root", "show", tenant)
	if !strings.Contains(root, `"_type":"root"`) {
		t.Fatalf("root show printed %.200q", root)
	}
	if err := os.WriteFile(rootFile, []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}

	// The site: init with the root, register, init again with the
	// credential (the README's three steps).
	dir := t.TempDir()
	addr := testenv.FreePort(t)
	initArgs := []string{"init", "--data-dir", dir, "--listen", addr, "--tenant-id", tenant, "--root-file", rootFile, "--output", "json"}
	r := run(t, baseEnv(), tl.mirror, initArgs...)
	if r.code != 0 || strings.Contains(r.stderr, "deprecated") {
		t.Fatalf("mirror init --root-file: exit %d: %s", r.code, r.stderr)
	}
	var res map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res["trust"] != "tuf" {
		t.Fatalf("mirror init printed %q: %v", r.stdout, err)
	}
	mirrorID, cred := cp.registerMirror(tenant, "site", res["public_key"])
	mustRun(t, baseEnv(), tl.mirror, append(initArgs, "--vendor-url", cp.url, "--credential", cred, "--force")...)
	if err := os.Remove(rootFile); err != nil { // the config uses the data dir's copy
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mirror.yaml")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("sync_interval: 1s\nlog_level: warn\n")
	f.Close()
	cp.api("PATCH", "/v1/entitlements/"+ent.EntitlementID, cp.admin, map[string]any{"policy_json": map[string]any{"max_seats": 5, "mirror_seats": map[string]int{mirrorID: 1}}}, nil, http.StatusOK)
	cp.cli("snapshot", "build", "--tenant", tenant) // lists the mirror's key and seats

	m := &mirrorDaemon{t: t, tools: tl, name: "mirror site", dir: dir, config: cfg, addr: addr, url: "http://" + addr}
	m.serve()
	version := tufSnapshotVersion(t, cp, tenant)
	m.waitSequence(version)
	if log := m.proc.logTail(); strings.Contains(log, "deprecated") || strings.Contains(log, "status report failed") {
		t.Errorf("mirror log:\n%s", log)
	}

	t.Run("the vendor sees the TUF mirror's sync", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var mir struct {
				LastSnapshotID string `json:"last_snapshot_id"`
			}
			cp.api("GET", "/v1/mirrors/"+mirrorID, cp.admin, nil, &mir, http.StatusOK)
			if mir.LastSnapshotID == "tuf-"+jsonInt(version) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("last_snapshot_id %q, want tuf-%d", mir.LastSnapshotID, version)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("updatectl --tuf-root downloads through the mirror", func(t *testing.T) {
		out := t.TempDir()
		path := mustRun(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir()), tl.updatectl, "download", "--server", m.url, "--tenant", tenant,
			"--tuf-root", filepath.Join(dir, "root.json"), "--product", product, "--channel", "stable", "--platform", "linux", "--arch", "x64",
			"--version", "0.9.0", "--out", out)
		if got := fileSHA256(t, path); got != sum100 {
			t.Fatalf("downloaded %s with sha256 %s, want %s", path, got, sum100)
		}
	})

	t.Run("an offline lease on the TUF mirror", func(t *testing.T) {
		put := func(subject string) (int, string) {
			var l struct {
				Token string `json:"token"`
			}
			code, body := httpDo(t, "PUT", m.url+"/v1/leases/"+subject, "", map[string]any{"entitlement_id": ent.EntitlementID, "subject_type": "machine"}, &l)
			t.Logf("PUT %s: %d %.200s", subject, code, body)
			return code, l.Token
		}
		code, token := put("laptop-1")
		if code != http.StatusOK || token == "" {
			t.Fatalf("lease = %d, want 200 and a token", code)
		}
		if code, _ := put("laptop-2"); code == http.StatusOK {
			t.Fatal("a second seat beyond mirror_seats 1 was granted")
		}
		// The client verifies the mirror's lease along root → TUF
		// metadata → mirror key, with no vendor key pinned.
		verify := func(tok string) result {
			return run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir()), tl.updatectl, "lease", "verify", tok, "--server", m.url,
				"--tenant", tenant, "--tuf-root", filepath.Join(dir, "root.json"))
		}
		if r := verify(token); r.code != 0 || !strings.Contains(r.stdout, "issued by mirror:"+mirrorID) {
			t.Fatalf("lease verify --tuf-root: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		forged := token[:len(token)-4] + strings.Map(func(r rune) rune {
			if r == 'A' {
				return 'B'
			}
			return 'A'
		}, token[len(token)-4:])
		if r := verify(forged); r.code != 3 {
			t.Fatalf("a forged lease: exit %d, want 3: %s", r.code, r.stderr)
		}
	})

	t.Run("bundles default to TUF", func(t *testing.T) {
		air := t.TempDir()
		mustRun(t, baseEnv(), tl.mirror, "init", "--data-dir", air, "--tenant-id", tenant, "--root-file", filepath.Join(dir, "root.json"))
		out := filepath.Join(t.TempDir(), "full.tar")
		if got := cp.cli("bundle", "export", "--tenant", tenant, "--out", out); !strings.Contains(got, "TUF snapshot version") {
			t.Fatalf("bundle export printed %q, want a TUF bundle", got)
		}
		if r := run(t, baseEnv(), tl.mirror, "import", out, "--config", filepath.Join(air, "mirror.yaml")); r.code != 0 || !strings.Contains(r.stdout, "imported") {
			t.Fatalf("import on the air-gapped TUF mirror: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		// --mirror: the site mirror last reported tuf-<v>.
		out2 := filepath.Join(t.TempDir(), "site.tar")
		if got := cp.cli("bundle", "export", "--tenant", tenant, "--mirror", mirrorID, "--since", jsonInt(version), "--out", out2); !strings.Contains(got, "TUF snapshot version") {
			t.Fatalf("bundle export --mirror printed %q, want a TUF bundle", got)
		}
		// Schema 1 is no longer exported: asked for, it is refused,
		// naming the way to TUF.
		out3 := filepath.Join(t.TempDir(), "dsse.tar")
		env := append(append([]string{}, cp.env...), "OUTPOST_SERVER="+cp.url, "OUTPOST_TOKEN="+cp.admin)
		if r := run(t, env, tl.controlplane, "bundle", "export", "--tenant", tenant, "--format", "dsse", "--out", out3); r.code == 0 || !strings.Contains(r.stderr, "mirror init --root-file") {
			t.Fatalf("bundle export --format dsse: exit %d: %s", r.code, r.stderr)
		}
		if _, err := os.Stat(out3); !os.IsNotExist(err) {
			t.Errorf("a refused export left %s (%v)", out3, err)
		}
	})

	t.Run("a schema 1 mirror moves to TUF with mirror init --root-file", func(t *testing.T) {
		// A mirror as schema 1 left it: a trust: dsse config and a
		// mirror.db holding a schema 1 snapshot (written here with the
		// state package, as that mirror's sync did, from a schema 1
		// envelope and vendor key kept under testdata/schema1: the
		// schema 1 codec is gone).
		old := t.TempDir()
		mustRun(t, baseEnv(), tl.mirror, "init", "--data-dir", old, "--tenant-id", tenant, "--root-file", filepath.Join(dir, "root.json"))
		st, err := state.Open(filepath.Join(old, "mirror.db"), 1)
		if err != nil {
			t.Fatal(err)
		}
		env1, err := os.ReadFile(filepath.Join("testdata", "schema1", "snapshot.dsse.json"))
		if err != nil {
			t.Fatal(err)
		}
		vendorKey, err := os.ReadFile(filepath.Join("testdata", "schema1", "vendor_key.b64"))
		if err != nil {
			t.Fatal(err)
		}
		m1, err := state.DecodeManifest(env1)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(env1)
		if err := st.Commit(state.Commit{Envelope: env1, Manifest: m1, Hash: hex.EncodeToString(sum[:]), Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		cfg := filepath.Join(old, "mirror.yaml")
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		if err := os.WriteFile(cfg, []byte("data_dir: "+q(old)+"\ntenant_id: "+q(tenant)+"\ntrust: dsse\ntrusted_keys: ["+q(strings.TrimSpace(string(vendorKey)))+"]\nsource: none\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Its config is refused at start, naming the command.
		r := run(t, baseEnv(), tl.mirror, "status", "--config", cfg)
		if want := "mirror init --data-dir " + old + " --tenant-id " + tenant + " --root-file ROOT --force"; r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("status on the schema 1 config: exit %d: %s, want it to name %q", r.code, r.stderr, want)
		}
		args := []string{"init", "--data-dir", old, "--tenant-id", tenant, "--root-file", filepath.Join(dir, "root.json"), "--output", "json"}
		if r := run(t, baseEnv(), tl.mirror, args...); r.code == 0 || !strings.Contains(r.stderr, "--force") {
			t.Fatalf("init over a schema 1 state without --force: exit %d: %s", r.code, r.stderr)
		}
		r = run(t, baseEnv(), tl.mirror, append(args, "--force")...)
		var res map[string]string
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res["trust"] != "tuf" || res["schema1_state"] == "" {
			t.Fatalf("init --force: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(res["schema1_state"]); err != nil {
			t.Errorf("the schema 1 state is not where init said: %v", err)
		}
		// init wrote the mirror.yaml in the data dir: import there.
		out := filepath.Join(t.TempDir(), "full.tar")
		cp.cli("bundle", "export", "--tenant", tenant, "--out", out)
		if r := run(t, baseEnv(), tl.mirror, "import", out, "--config", filepath.Join(old, "mirror.yaml")); r.code != 0 {
			t.Fatalf("TUF import after the move: exit %d: %s", r.code, r.stderr)
		}
		if r := run(t, baseEnv(), tl.mirror, "status", "--config", filepath.Join(old, "mirror.yaml"), "--output", "json"); r.code != 0 || !strings.Contains(r.stdout, `"snapshot_id": "tuf-`) {
			t.Fatalf("status after the move: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	})
}

// tufSnapshotVersion is the snapshot version the tenant's current TUF
// timestamp names (what a synced trust: tuf mirror reports as its
// sequence).
func tufSnapshotVersion(t *testing.T, cp *controlPlane, tenant string) int64 {
	t.Helper()
	var ts struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	cp.api("GET", "/v1/tenants/"+tenant+"/tuf/metadata/timestamp.json", cp.admin, nil, &ts, http.StatusOK)
	v := ts.Signed.Meta["snapshot.json"].Version
	if v < 1 {
		t.Fatalf("timestamp names snapshot version %d", v)
	}
	return v
}
