package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/testenv"
)

// walker runs README blocks as written: in one directory, with the three
// binaries on PATH under their own names and the vendor's
// OUTPOST_SERVER/OUTPOST_TOKEN set as the README's Publishing section
// says.
type walker struct {
	t   *testing.T
	dir string
	env []string
}

func newWalker(t *testing.T, tl tools, cp *controlPlane) *walker {
	return newWalkerEnv(t, tl, "OUTPOST_SERVER="+cp.url, "OUTPOST_TOKEN="+cp.admin)
}

// newWalkerEnv is a walker with no control plane yet: the blocks start
// one, or the test does between them; env is the reader's shell.
func newWalkerEnv(t *testing.T, tl tools, env ...string) *walker {
	path := testenv.PathWith(t, map[string]string{"controlplane": tl.controlplane, "mirror": tl.mirror, "updatectl": tl.updatectl})
	return &walker{t: t, dir: t.TempDir(), env: append(baseEnv("PATH="+path, "OUTPOST_LOG_LEVEL=warn"), env...)}
}

// run runs one block with sh -e and returns its output.
func (w *walker) run(block string) string {
	w.t.Helper()
	cmd := exec.Command("sh", "-e", "-c", block)
	cmd.Dir, cmd.Env = w.dir, w.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("README block failed: %v\n--- block\n%s--- output\n%s", err, block, out)
	}
	return string(out)
}

// TestReadme_AirGapLeases walks the README's air-gapped licences section:
// a bundle-only mirror with delegated seats serves a lease, and its lease
// audit and install report go back to the vendor by file.
func TestReadme_AirGapLeases(t *testing.T) {
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	blocks := testenv.DocBlocks(t, "README.md", "walk airgap")
	if len(blocks) != 2 {
		t.Fatalf("README has %d air-gap walk blocks, want 2", len(blocks))
	}
	w := newWalker(t, tl, cp)
	randomFile(t, w.dir, "acme-2.0.0.tar.gz", 64<<10)
	w.run(blocks[0])

	// What the README says happens between the blocks: serve, a lease.
	var ents struct {
		Items []struct {
			EntitlementID string `json:"entitlement_id"`
		}
	}
	var tenants struct {
		Items []struct {
			TenantID string `json:"tenant_id"`
		}
	}
	json.Unmarshal([]byte(cp.cli("tenant", "list", "-o", "json")), &tenants)
	if len(tenants.Items) != 1 {
		t.Fatalf("tenants after the block: %+v", tenants.Items)
	}
	json.Unmarshal([]byte(cp.cli("entitlement", "list", "--tenant", tenants.Items[0].TenantID, "-o", "json")), &ents)
	if len(ents.Items) != 1 {
		t.Fatalf("entitlements after the block: %+v", ents.Items)
	}
	addr := testenv.FreePort(t)
	data := filepath.Join(w.dir, "acme-mirror")
	m := startProc(t, "mirror", filepath.Join(w.dir, "mirror.log"), baseEnv("OUTPOST_LOG_LEVEL=warn"), tl.mirror, "serve", "--data-dir", data, "--listen", addr)
	waitHTTP(t, m, "http://"+addr+"/readyz", http.StatusOK)
	state := filepath.Join(w.dir, "updatectl-state.json")
	for _, subject := range []string{"host-1", "host-2"} {
		mustRun(t, baseEnv(), tl.updatectl, "--server", "http://"+addr, "--state-file", state,
			"lease", "acquire", "--entitlement", ents.Items[0].EntitlementID, "--subject-id", subject)
	}
	m.stop(t)

	// The reader's shell still holds $TENANT and $MIRROR_ID from the
	// first block.
	cfg, err := os.ReadFile(filepath.Join(data, "mirror.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mirrorID := regexp.MustCompile(`mirror_id: *"?(mir_[0-9a-z]+)`).FindSubmatch(cfg)
	if mirrorID == nil {
		t.Fatalf("no mirror_id in mirror.yaml:\n%s", cfg)
	}
	w.env = append(w.env, "TENANT="+tenants.Items[0].TenantID, "MIRROR_ID="+string(mirrorID[1]))
	out := w.run(blocks[1])
	sm := auditImported.FindStringSubmatch(out)
	if sm == nil || (sm[1] != "2" && sm[1] != "3") {
		t.Errorf("report import printed:\n%s\nwant the two leases (and the import) ingested", out)
	} else if want := "the vendor acknowledges audit events through " + sm[2]; !strings.Contains(out, want) {
		t.Errorf("mirror import of the bundle for the mirror printed:\n%s\nwant %q", out, want)
	}
	t.Run("the next return file holds only what is new", func(t *testing.T) {
		next := filepath.Join(w.dir, "acme-return-2.jsonl")
		got := mustRun(t, baseEnv(), tl.mirror, "report", "export", "--data-dir", data, "--out", next)
		if sm != nil && !strings.Contains(got, "0 audit events (after "+sm[2]+")") {
			t.Errorf("report export after the acknowledgement printed %q, want no audit event after %s", got, sm[2])
		}
	})
	var issued struct {
		Items []json.RawMessage
	}
	json.Unmarshal([]byte(cp.cli("api", "GET", "/v1/audit-events?event_type=mirror.lease.issued")), &issued)
	if len(issued.Items) != 2 {
		t.Errorf("vendor audit log has %d mirror.lease.issued events, want 2", len(issued.Items))
	}
	t.Run("importing again changes nothing", func(t *testing.T) {
		if got := cp.cli("report", "import", filepath.Join(w.dir, "acme-return.jsonl")); !strings.Contains(got, "imported 0 new audit event(s)") {
			t.Errorf("second import: %q", got)
		}
		if got := cp.cli("mirror-audit", "import", filepath.Join(w.dir, "acme-return.jsonl")); !strings.Contains(got, "imported 0 new") {
			t.Errorf("mirror-audit import of the return file: %q", got)
		}
	})
	t.Run("a file that is no export is refused", func(t *testing.T) {
		bad := filepath.Join(w.dir, "bad.jsonl")
		os.WriteFile(bad, []byte("{\"hello\":1}\n"), 0o644)
		env := append(append([]string{}, cp.env...), "OUTPOST_SERVER="+cp.url, "OUTPOST_TOKEN="+cp.admin)
		r := run(t, env, tl.controlplane, "mirror-audit", "import", bad)
		if r.code == 0 || !strings.Contains(r.stderr, "mirror audit export") {
			t.Errorf("bad file: exit %d, %q", r.code, r.stderr)
		}
	})
}

// TestReadme_Walk runs the README's publishing, mirror, bundle and key
// rotation blocks as one script, as written, on a fresh directory and a
// loopback control plane, then checks what they left: a mirror that synced snapshot 1,
// imported snapshot 2 from a bundle and followed a key rotation.
func TestReadme_Walk(t *testing.T) {
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	w := newWalker(t, tl, cp)
	w.env = append(w.env, "OUTPOST_DATA_DIR="+cp.dir) // the keys commands' data dir
	randomFile(t, w.dir, "acme-2.0.0.msi", 128<<10)
	out := w.run(strings.Join(testenv.DocBlocks(t, "README.md", "walk main"), "\n"))
	for _, want := range []string{"committed snapshot", "sequence 1", "would import snapshot", "imported snapshot"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the walk printed:\n%s\nwant %q", out, want)
		}
	}
	// A trust: tuf mirror: version 2 came from the bundle; the vendor key
	// rotation changes no TUF metadata (that key signs leases and schema
	// 1), and the syncs after it succeeded (the walk stops on an error).
	// The mirror holds the repository's current version.
	var ts struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	json.Unmarshal([]byte(cp.cli("api", "GET", "/v1/tenants/"+walkTenant(t, cp)+"/tuf/metadata/timestamp.json")), &ts)
	v := ts.Signed.Meta["snapshot.json"].Version
	got := run(t, baseEnv(), tl.mirror, "status", "--data-dir", filepath.Join(w.dir, "acme-site"))
	if v < 2 || !strings.Contains(got.stdout, fmt.Sprintf("tuf-%d sequence %d", v, v)) {
		t.Errorf("after the bundle and the key rotation the mirror holds:\n%s\nwant TUF version %d", got.stdout, v)
	}
	var keys struct {
		Items []struct {
			KeyID  string `json:"key_id"`
			Status string `json:"status"`
		}
	}
	json.Unmarshal([]byte(cp.cli("api", "GET", "/v1/keys")), &keys)
	statuses := map[string]int{}
	for _, k := range keys.Items {
		statuses[k.Status]++
	}
	if len(keys.Items) != 2 || statuses["active"] != 1 {
		t.Errorf("keys after the rotation: %+v, want one active and the retired one", keys.Items)
	}
	var rollouts struct {
		Items []struct {
			Channel    string  `json:"channel"`
			Percentage float64 `json:"percentage"`
		}
	}
	var products struct {
		Items []struct {
			ProductID string `json:"product_id"`
		}
	}
	json.Unmarshal([]byte(cp.cli("product", "list", "-o", "json")), &products)
	if len(products.Items) != 1 {
		t.Fatalf("products: %+v", products.Items)
	}
	json.Unmarshal([]byte(cp.cli("rollout", "list", "--product", products.Items[0].ProductID, "-o", "json")), &rollouts)
	if len(rollouts.Items) != 1 || rollouts.Items[0].Channel != "stable" || rollouts.Items[0].Percentage != 10 {
		t.Errorf("rollouts after the walk: %+v", rollouts.Items)
	}
}

// walkTenant is the one tenant a walk created.
func walkTenant(t *testing.T, cp *controlPlane) string {
	t.Helper()
	var tenants struct {
		Items []struct {
			TenantID string `json:"tenant_id"`
		}
	}
	json.Unmarshal([]byte(cp.cli("tenant", "list", "-o", "json")), &tenants)
	if len(tenants.Items) != 1 {
		t.Fatalf("tenants after the walk: %+v", tenants.Items)
	}
	return tenants.Items[0].TenantID
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestQuickstart_MakeRun runs scripts/quickstart.sh (what `make run`
// runs) on loopback ports and a temporary directory, then the commands
// its "Try it" section prints, as printed, then stops it as Ctrl-C does.
func TestQuickstart_MakeRun(t *testing.T) {
	tl := buildTools(t)
	bins := t.TempDir()
	for name, bin := range map[string]string{"controlplane": tl.controlplane, "mirror": tl.mirror, "updatectl": tl.updatectl} {
		if err := os.Symlink(bin, filepath.Join(bins, name)); err != nil {
			t.Fatal(err)
		}
	}
	demo := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command("bash", filepath.Join(testenv.RepoRoot(t), "scripts", "quickstart.sh"))
	cmd.Env = baseEnv("QUICKSTART_BIN="+bins, "QUICKSTART_DIR="+demo, "CP_ADDR="+testenv.FreePort(t), "MIRROR_ADDR="+testenv.FreePort(t))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			<-done
		}
	})
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("quickstart exited early (%v):\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("quickstart not ready after 2 minutes:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	text := out.String()
	try := text[strings.Index(text, "Try it"):strings.Index(text, "Press Ctrl-C")]
	try = try[strings.Index(try, "\n")+1:]
	sh := exec.Command("bash", "-c", try)
	sh.Dir, sh.Env = demo, baseEnv()
	got, _ := sh.CombinedOutput() // updatectl check exits 10 when an update is offered
	// laptop-42 is inside the 50% rollout of 1.1.0 or not (the rollout id
	// is new each run): either answer, stated as such, is right.
	checks := []struct{ name, a, b string }{
		{"check", "update available: ", "no update yet: a newer release is rolling out"},
		{"download, named after the product", filepath.Join(demo, "Demo_App-1.1.0-linux-x64.tar.gz"), filepath.Join(demo, "Demo_App-1.0.0-linux-x64.tar.gz")},
		{"the control plane's answer", `"update_available":true`, `"reason":"newer release not rolled out to this client"`},
		{"the mirror's status", `"snapshot":{"snapshot_id"`, `"snapshot":{"snapshot_id"`},
		{"release list", "RELEASE", "RELEASE"},
	}
	for _, c := range checks {
		if !strings.Contains(string(got), c.a) && !strings.Contains(string(got), c.b) {
			t.Errorf("%s: the Try it commands printed:\n%s\nwant %q or %q", c.name, got, c.a, c.b)
		}
	}
	if strings.Contains(string(got), "command not found") || strings.Contains(string(got), "Error") {
		t.Errorf("a Try it command failed:\n%s", got)
	}
	checkQuickstartBrowser(t, text, demo)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Errorf("quickstart exited with %v on SIGTERM:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "stopped.") {
		t.Errorf("quickstart did not stop cleanly:\n%s", out.String())
	}
}

// TestReadme_BackupRestore walks the README's backup and restore: the
// catalog backed up through the API while the daemon serves, the keys,
// the data-encryption key and the blobs copied after it; the original
// data dir is then deleted, and the restored one exports a bundle that a
// mirror imports.
func TestReadme_BackupRestore(t *testing.T) {
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	blocks := testenv.DocBlocks(t, "README.md", "walk backup")
	if len(blocks) != 2 {
		t.Fatalf("README has %d backup walk blocks, want 2", len(blocks))
	}
	tenant := cp.cli("tenant", "create", "Acme Corp")
	product := cp.cli("product", "create", "Acme App", "--distribution", "open")
	w := newWalker(t, tl, cp)
	w.env = append(w.env, "OUTPOST_DATA_DIR="+cp.dir)
	file, want := randomFile(t, w.dir, "acme-2.0.0.tar.gz", 200<<10)
	_, art := cp.release(product, "2.0.0", file)
	cp.cli("snapshot", "build", "--tenant", tenant)

	if out := w.run(blocks[0]); !strings.Contains(out, "wrote the catalog to backup/catalog.db") {
		t.Errorf("the backup block printed:\n%s\nwant what backup wrote", out)
	}
	// Nothing of the original is left: the restore has only the backup.
	cp.stop()
	if err := os.RemoveAll(cp.dir); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "TENANT="+tenant)
	if out := w.run(blocks[1]); !strings.Contains(out, "wrote restored.tar") || !strings.Contains(out, "1 artifacts") {
		t.Errorf("the restore block printed:\n%s\nwant a bundle with the artifact", out)
	}

	t.Run("the restored bundle feeds a mirror that serves the artifact", func(t *testing.T) {
		restored := &controlPlane{t: t, tools: tl, dir: filepath.Join(w.dir, "restored"), addr: testenv.FreePort(t), env: baseEnv("OUTPOST_LOG_LEVEL=warn")}
		restored.url = "http://" + restored.addr
		root := filepath.Join(w.dir, "acme-root.json")
		if err := os.WriteFile(root, []byte(mustRun(t, restored.env, tl.controlplane, "root", "show", tenant, "--data-dir", restored.dir)), 0o600); err != nil {
			t.Fatal(err)
		}
		site := filepath.Join(w.dir, "acme-site")
		mustRun(t, baseEnv(), tl.mirror, "init", "--data-dir", site, "--tenant-id", tenant, "--root-file", root)
		mustRun(t, baseEnv(), tl.mirror, "import", filepath.Join(w.dir, "restored.tar"), "--data-dir", site)
		addr := testenv.FreePort(t)
		m := startProc(t, "mirror", filepath.Join(w.dir, "mirror.log"), baseEnv("OUTPOST_LOG_LEVEL=warn"), tl.mirror, "serve", "--data-dir", site, "--listen", addr)
		waitHTTP(t, m, "http://"+addr+"/readyz", http.StatusOK)
		code, body := get(t, "http://"+addr+"/v1/artifacts/"+art)
		if got := sum(body); code != http.StatusOK || got != want {
			t.Errorf("GET /v1/artifacts/%s from the restored bundle = %d, sha256 %s; want 200, %s", art, code, got, want)
		}
	})
}

// TestReadme_S3 walks the README's S3 section against versitygw: a
// control plane whose artifacts live in a bucket, and a mirror fed from
// the site's bucket filled from a full bundle, which then serves the
// artifact.
func TestReadme_S3(t *testing.T) {
	tl := buildTools(t)
	vendor, site := testenv.S3(t), testenv.S3(t) // site: a fresh name; the block creates it
	blocks := testenv.DocBlocks(t, "README.md", "walk s3")
	if len(blocks) != 2 {
		t.Fatalf("README has %d S3 walk blocks, want 2", len(blocks))
	}
	w := newWalkerEnv(t, tl, "S3_ENDPOINT="+vendor.Endpoint, "S3_ACCESS_KEY="+vendor.AccessKey,
		"S3_SECRET_KEY="+vendor.SecretKey, "VENDOR_BUCKET="+vendor.Bucket, "SITE_BUCKET="+site.Bucket)
	file, want := randomFile(t, w.dir, "acme-2.0.0.tar.gz", 300<<10)
	token := strings.TrimSpace(w.run(blocks[0]))

	// What the README says runs between the blocks: serve, in the
	// environment the first block exported.
	cp := &controlPlane{t: t, tools: tl, dir: filepath.Join(w.dir, "cp-s3"), addr: testenv.FreePort(t), admin: token,
		env: baseEnv("OUTPOST_LOG_LEVEL=warn", "OUTPOST_BLOB_BACKEND=s3", "OUTPOST_BLOB_S3_ENDPOINT="+vendor.Endpoint,
			"OUTPOST_BLOB_S3_BUCKET="+vendor.Bucket, "OUTPOST_BLOB_S3_ACCESS_KEY="+vendor.AccessKey,
			"OUTPOST_BLOB_S3_SECRET_KEY="+vendor.SecretKey, "OUTPOST_BLOB_S3_CREATE_BUCKET=true")}
	cp.url = "http://" + cp.addr
	cp.serve()
	w.env = append(w.env, "OUTPOST_SERVER="+cp.url, "OUTPOST_TOKEN="+token)
	if out := w.run(blocks[1]); !strings.Contains(out, "committed snapshot") {
		t.Fatalf("the S3 block printed:\n%s\nwant the mirror's sync from the bucket committed", out)
	}

	t.Run("the vendor's artifact bytes are in its bucket", func(t *testing.T) {
		store, err := s3.New(context.Background(), vendor)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		store.List(context.Background(), "", func(i blob.Info) error {
			found = found || i.Size == 300<<10
			return nil
		})
		if !found {
			t.Errorf("no object of the artifact's size in bucket %s", vendor.Bucket)
		}
		if _, err := os.Stat(filepath.Join(cp.dir, "blobs")); !os.IsNotExist(err) {
			t.Errorf("the control plane has a blobs directory (%v): want the bytes in the bucket only", err)
		}
	})
	t.Run("the mirror fed from the bucket serves the artifact", func(t *testing.T) {
		targets, _ := filepath.Glob(filepath.Join(w.dir, "acme-repo", "targets", "prd_*", "*.rla_*"))
		if len(targets) != 1 {
			t.Fatalf("artifact targets in the bundle: %v, want 1", targets)
		}
		rel, _ := filepath.Rel(filepath.Join(w.dir, "acme-repo"), targets[0])
		addr := testenv.FreePort(t)
		m := startProc(t, "mirror", filepath.Join(w.dir, "mirror.log"), baseEnv("OUTPOST_LOG_LEVEL=warn"), tl.mirror,
			"serve", "--data-dir", filepath.Join(w.dir, "acme-s3"), "--listen", addr)
		waitHTTP(t, m, "http://"+addr+"/readyz", http.StatusOK)
		code, body := get(t, "http://"+addr+"/tuf/"+filepath.ToSlash(rel))
		if got := sum(body); code != http.StatusOK || got != want {
			t.Errorf("GET /tuf/%s = %d, sha256 %s; want 200, %s (%s)", rel, code, got, want, file)
		}
	})
}

// TestReadme_TwoInstances walks the README's two control plane instances
// on one PostgreSQL database (a fresh schema): init, init --join, both
// serving, a release published on one and signed on the other, which a
// mirror verifies from the tenant's root.
func TestReadme_TwoInstances(t *testing.T) {
	tl := buildTools(t)
	pg := pgSchemaURL(t)
	blocks := testenv.DocBlocks(t, "README.md", "walk instances")
	if len(blocks) != 2 {
		t.Fatalf("README has %d instance walk blocks, want 2", len(blocks))
	}
	w := newWalkerEnv(t, tl, "OUTPOST_POSTGRES_URL="+pg)
	randomFile(t, w.dir, "acme-2.0.0.tar.gz", 200<<10)
	// The reader's shell keeps $ADMIN_TOKEN: the test reads it this way.
	out := w.run(blocks[0] + "echo \"walk: ADMIN_TOKEN=$ADMIN_TOKEN\"\n")
	m := regexp.MustCompile(`walk: ADMIN_TOKEN=(opt_\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the init block printed:\n%s\nwant an admin token from the first init", out)
	}
	if strings.Count(out, "opt_") != 1 {
		t.Errorf("the init block printed:\n%s\nwant one admin token (init --join prints none)", out)
	}
	exported := []string{"OUTPOST_STORE=postgres", "OUTPOST_KEY_ENCRYPTION_KEY_FILE=" + filepath.Join(w.dir, "kek"),
		"OUTPOST_BLOB_DIR=" + filepath.Join(w.dir, "blobs")}
	instance := func(name string) *controlPlane {
		cp := &controlPlane{t: t, tools: tl, dir: filepath.Join(w.dir, "cp-"+name), addr: testenv.FreePort(t), admin: m[1],
			env: append(baseEnv("OUTPOST_LOG_LEVEL=warn", "OUTPOST_POSTGRES_URL="+pg), exported...)}
		cp.url = "http://" + cp.addr
		cp.serveLog(name)
		return cp
	}
	a, b := instance("a"), instance("b")
	w.env = append(append(w.env, exported...), "ADMIN_TOKEN="+m[1], "CP_A="+a.url, "CP_B="+b.url)
	if out := w.run(blocks[1]); !strings.Contains(out, "committed snapshot") {
		t.Fatalf("the instances block printed:\n%s\nwant the mirror's sync from instance B committed", out)
	}

	t.Run("both instances publish the same keys", func(t *testing.T) {
		ka, kb := a.cli("api", "GET", "/v1/keys"), b.cli("api", "GET", "/v1/keys")
		if ka != kb || !strings.Contains(ka, "key_id") {
			t.Errorf("GET /v1/keys: A %s, B %s; want the same keys", ka, kb)
		}
		tenant := walkTenant(t, a)
		if ra, rb := a.cli("root", "show", tenant), b.cli("root", "show", tenant); ra != rb {
			t.Errorf("the tenant's root.json: A %s, B %s; want the same root", ra, rb)
		}
	})
	t.Run("both instances serve the release", func(t *testing.T) {
		tenant := walkTenant(t, b)
		for _, cp := range []*controlPlane{a, b} {
			if got := cp.cli("api", "GET", "/v1/tenants/"+tenant+"/tuf/metadata/timestamp.json"); !strings.Contains(got, "snapshot.json") {
				t.Errorf("%s: the tenant's timestamp: %s", cp.url, got)
			}
			if got := cp.cli("product", "list", "-o", "json"); !strings.Contains(got, "Acme App") {
				t.Errorf("%s: products %s", cp.url, got)
			}
		}
	})
}
