package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2E_TUFBundleRootRotations is issue 12's done-when item on the
// real binaries: a trust: tuf mirror fed only by bundles, two root
// rotations (with the timestamp and snapshot keys replaced) while it is
// offline, one incremental bundle catches it up, and updatectl
// --tuf-root (initialised with the tenant's first root, its trusted
// state kept across runs) follows through the mirror. No configuration
// is edited after the first setup.
func TestE2E_TUFBundleRootRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	files := t.TempDir()

	tenant := cp.cli("tenant", "create", "Acme Corp")
	product := cp.cli("product", "create", "Outpost Demo", "--distribution", "open")
	file100, sum100 := randomFile(t, files, "demo-1.0.0.tar.gz", 200<<10)
	cp.release(product, "1.0.0", file100)
	cp.snapshot(tenant)

	// The operator gets the tenant's root.json once, out of band.
	root1 := cp.api("GET", "/v1/tenants/"+tenant+"/tuf/metadata/1.root.json", cp.admin, nil, nil, http.StatusOK)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, root1, 0o600); err != nil {
		t.Fatal(err)
	}

	m := newMirror(t, tl, "air-gapped", mirrorConfig{tenant: tenant, root: rootFile, source: "none"})
	cfg, err := os.ReadFile(m.config)
	if err != nil {
		t.Fatal(err)
	}
	// Registered, so its bundles can carry the vendor's acknowledgement
	// of its return file.
	mirrorID, _ := cp.registerMirror(tenant, "air-gapped", m.publicKey)
	if err := os.WriteFile(m.config, append(cfg, []byte("mirror_id: "+mirrorID+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}

	export := func(name string, since int64, extra ...string) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), name)
		args := append([]string{"bundle", "export", "--tenant", tenant, "--format", "tuf", "--out", out, "--output", "json"}, extra...)
		if since > 0 {
			args = append(args, "--since", jsonInt(since))
		}
		t.Logf("bundle export: %s", cp.cli(args...))
		return out
	}

	// A schema 1 bundle (its first entry the envelope) is refused plainly.
	if r := m.cmd("import", schema1Bundle(t)); r.code == 0 || !strings.Contains(r.stderr, "schema 1") || !strings.Contains(r.stderr, "controlplane bundle export") {
		t.Fatalf("a schema 1 bundle: exit %d: %s", r.code, r.stderr)
	}

	full := export("full.tar", 0)
	if r := m.cmd("import", "--dry-run", full); r.code != 0 || !strings.Contains(r.stdout, "would import") {
		t.Fatalf("dry run: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if seq := m.heldSequence(); seq != 0 {
		t.Fatalf("the dry run committed sequence %d", seq)
	}
	m.importBundle(full)
	seq1 := m.heldSequence()
	if seq1 == 0 {
		t.Fatal("nothing held after the full bundle")
	}
	m.serve()

	client := t.TempDir() // updatectl's state: kept across runs
	download := func(installed string) string {
		t.Helper()
		dir := t.TempDir()
		out := mustRun(t, baseEnv(), tl.updatectl, "download", "--server", m.url, "--tenant", tenant, "--tuf-root", rootFile,
			"--state-dir", client, "--no-report", "--product", product, "--channel", "stable", "--platform", "linux", "--arch", "x64",
			"--version", installed, "--out", filepath.Join(dir, "installer"))
		if out == "" {
			t.Fatal("updatectl download printed no path")
		}
		return filepath.Join(dir, "installer")
	}
	if got := fileSHA256(t, download("0.9.0")); got != sum100 {
		t.Fatalf("downloaded sha256 %s, want 1.0.0's %s", got, sum100)
	}

	// The mirror goes offline; the vendor rotates the root twice
	// (replacing the timestamp, then the snapshot key) and publishes.
	m.stop()
	// Its return file (the audit chain of its imports) goes to the vendor.
	report := filepath.Join(t.TempDir(), "return.jsonl")
	if r := m.cmd("report", "export", "--out", report); r.code != 0 {
		t.Fatalf("mirror report export: exit %d: %s", r.code, r.stderr)
	}
	imported := cp.cli("report", "import", report)
	sm := auditImported.FindStringSubmatch(imported)
	if sm == nil || sm[1] == "0" {
		t.Fatalf("report import printed %q, want the audit part ingested", imported)
	}
	cp.stop()
	mustRun(t, cp.env, tl.controlplane, "root", "rotate", "--replace", "timestamp", "--data-dir", cp.dir)
	mustRun(t, cp.env, tl.controlplane, "root", "rotate", "--replace", "snapshot", "--data-dir", cp.dir)
	cp.serve()
	file110, sum110 := randomFile(t, files, "demo-1.1.0.tar.gz", 200<<10)
	cp.release(product, "1.1.0", file110)
	cp.snapshot(tenant)
	cp.api("GET", "/v1/tenants/"+tenant+"/tuf/metadata/3.root.json", cp.admin, nil, nil, http.StatusOK)

	inc := export("since.tar", seq1, "--mirror", mirrorID)
	again := cp.exportBundle(tenant, 0)
	for _, p := range []string{full, inc, again} {
		if fi, err := os.Stat(p); err == nil {
			t.Logf("%s: %d bytes", filepath.Base(p), fi.Size())
		}
	}

	// One bundle: the old full one is refused as a rollback once the
	// new one is in; the new one catches the mirror up.
	// The acknowledgement inside is signed by the new timestamp key,
	// which the mirror trusts only through the rotated roots the same
	// bundle carries.
	if r := m.cmd("import", inc); r.code != 0 || !strings.Contains(r.stdout, "the vendor acknowledges audit events through "+sm[2]) {
		t.Fatalf("import of the incremental bundle: exit %d, stdout %q, stderr %q; want the acknowledgement of audit event %s", r.code, r.stdout, r.stderr, sm[2])
	}
	if seq := m.heldSequence(); seq <= seq1 {
		t.Fatalf("held %d after the incremental bundle, want above %d", seq, seq1)
	}
	if r := m.cmd("import", full); r.code == 0 || !strings.Contains(r.stderr, "rollback") {
		t.Fatalf("the older bundle: exit %d: %s", r.code, r.stderr)
	}
	m.serve()
	if code, _ := get(t, m.url+"/tuf/metadata/3.root.json"); code != http.StatusOK {
		t.Errorf("the mirror does not serve root v3: %d", code)
	}
	// The client, still configured with root v1, walks v2 and v3 from
	// the mirror and takes 1.1.0.
	if got := fileSHA256(t, download("1.0.0")); got != sum110 {
		t.Fatalf("downloaded sha256 %s, want 1.1.0's %s", got, sum110)
	}
	trusted, err := os.ReadFile(filepath.Join(client, "tuf", tenant, "metadata", "root.json"))
	if err != nil || !strings.Contains(string(trusted), `"version":3`) {
		t.Errorf("the client's trusted root is not v3 (%v)", err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// schema1Bundle writes a bundle as schema 1 made them (the DSSE envelope
// first) and returns its path.
func schema1Bundle(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	env := []byte(`{"payloadType":"application/vnd.outpost.snapshot+json","payload":"e30=","signatures":[]}`)
	if err := tw.WriteHeader(&tar.Header{Name: "snapshot.dsse.json", Mode: 0o644, Size: int64(len(env)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(env)
	tw.Close()
	p := filepath.Join(t.TempDir(), "schema1.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
