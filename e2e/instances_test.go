package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/testenv"
)

// TestE2E_TwoInstancesOneDatabase runs two control plane instances, each
// with a data dir of its own, on one PostgreSQL database (and one
// artifact store) behind one mirror, as README's "Several control plane
// instances" says: init on the initialised database refuses and names
// --join; the joined instance signs with the vendor's keys (shared
// through the database, sealed with the key-encryption key), so what is
// published on one and built on the other verifies at the mirror; a key
// generated on one reaches the other while both serve.
func TestE2E_TwoInstancesOneDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	shared := t.TempDir()
	kek := filepath.Join(shared, "kek")
	if err := os.WriteFile(kek, []byte(randHex(32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL=" + pgSchemaURL(t),
		"OUTPOST_KEY_ENCRYPTION_KEY_FILE=" + kek, "OUTPOST_KEY_SYNC_INTERVAL=1s",
		// Both instances serve the same artifact bytes (S3 in production).
		"OUTPOST_BLOB_DIR=" + filepath.Join(shared, "blobs")}
	cpA := newControlPlaneEnv(t, tl, "", env...)

	cpB := &controlPlane{t: t, tools: tl, dir: t.TempDir(), addr: testenv.FreePort(t), env: cpA.env, admin: cpA.admin}
	cpB.url = "http://" + cpB.addr
	t.Run("init on the initialised database refuses and says how to join", func(t *testing.T) {
		r := run(t, cpB.env, tl.controlplane, "init", "--data-dir", cpB.dir)
		if r.code == 0 || !strings.Contains(r.stderr, "already initialized") || !strings.Contains(r.stderr, "init --join") {
			t.Fatalf("init: exit %d, stdout %q, stderr %q; want a refusal naming --join", r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "opt_") {
			t.Errorf("the refused init printed a token: %q", r.stdout)
		}
	})
	if out := mustRun(t, cpB.env, tl.controlplane, "init", "--join", "--data-dir", cpB.dir); !strings.Contains(out, "joined") {
		t.Fatalf("init --join printed %q", out)
	}
	cpA.serveLog("a")
	cpB.serveLog("b")
	key := cpA.vendorKey()
	if got := cpB.vendorKey(); got != key {
		t.Fatalf("B publishes key %s, A %s: want the same vendor key", got, key)
	}

	files := t.TempDir()
	tenant := cpA.cli("tenant", "create", "Initech")
	product := cpA.cli("product", "create", "Widget", "--distribution", "open")
	file1, sum1 := randomFile(t, files, "widget-1.0.0.tar.gz", 300<<10)
	_, art1 := cpA.release(product, "1.0.0", file1) // published on A
	_, seq1 := cpB.snapshot(tenant)                 // built on B

	// The tenant's root (either instance serves the same: the TUF keys
	// are shared through the database).
	root := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(root, []byte(mustRun(t, cpB.env, tl.controlplane, "root", "show", tenant, "--data-dir", cpB.dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMirror(t, tl, "site", mirrorConfig{tenant: tenant, root: root, source: "none"})
	_, cred := cpA.registerMirror(tenant, "site", m.publicKey)
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cpB.url, credential: cred})
	m.serve()
	m.waitSequence(seq1)
	servesArtifact(t, m, art1, sum1)

	// A second mirror syncs from A: the TUF online keys (timestamp,
	// snapshot, targets) are shared too, so what either instance signs
	// verifies against one root.
	mt := newMirror(t, tl, "tuf", mirrorConfig{tenant: tenant, root: root, source: "none"})
	_, credT := cpB.registerMirror(tenant, "tuf", mt.publicKey)
	mt.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cpA.url, credential: credT})
	mt.serve()
	waitServes(t, mt, art1, sum1)

	file2, sum2 := randomFile(t, files, "widget-2.0.0.tar.gz", 200<<10)
	_, art2 := cpB.release(product, "2.0.0", file2) // published on B
	_, seq2 := cpA.snapshot(tenant)                 // built on A
	m.waitSequence(seq2)
	waitServes(t, mt, art2, sum2)
	t.Run("the mirror verifies and serves what either instance built", func(t *testing.T) {
		servesArtifact(t, m, art1, sum1)
		servesArtifact(t, m, art2, sum2)
		if out, code := tl.check(t, m.url, updateQuery{product: product, version: "1.0.0"}); code != 10 || !strings.Contains(out, "2.0.0") {
			t.Errorf("check 1.0.0 at the mirror: exit %d, %s; want 2.0.0 offered", code, out)
		}
	})

	t.Run("a key generated on A signs on B while both serve", func(t *testing.T) {
		newID := mustRun(t, cpA.env, tl.controlplane, "keys", "generate", "--data-dir", cpA.dir)
		deadline := time.Now().Add(30 * time.Second)
		for {
			var keys struct {
				Items []struct {
					KeyID string `json:"key_id"`
				} `json:"items"`
			}
			cpB.api("GET", "/v1/keys", cpB.admin, nil, &keys, http.StatusOK)
			found := false
			for _, k := range keys.Items {
				found = found || k.KeyID == newID
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B does not list key %s after 30s (key_sync_interval 1s): %+v", newID, keys.Items)
			}
			time.Sleep(100 * time.Millisecond)
		}
		id3, seq3 := cpB.snapshot(tenant)
		if keys := leaseKeyIDs(t, cpB, tenant); !slices.Contains(keys, newID) {
			t.Errorf("snapshot %s built on B names lease keys %v, not the new key %s", id3, keys, newID)
		}
		m.waitSequence(seq3) // the mirror needs no key: its root did not change
	})
}

// waitServes waits until the running mirror serves artifact id with
// sha256 want (a TUF-trusting mirror numbers its snapshots by TUF
// version, not by the schema 1 sequence).
func waitServes(t *testing.T, m *mirrorDaemon, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(t, m.url+"/v1/artifacts/"+id)
		if code == http.StatusOK && sum(body) == want {
			return
		}
		if m.proc.exited() || time.Now().After(deadline) {
			t.Fatalf("%s does not serve %s after 30s (last answer %d); log:\n%s", m.name, id, code, m.proc.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaseKeyIDs are the vendor lease keys the tenant's current TUF metadata
// names (docs/lease_keys.json), read through the control plane's API.
func leaseKeyIDs(t *testing.T, cp *controlPlane, tenant string) []string {
	t.Helper()
	base := "/v1/tenants/" + tenant + "/tuf/"
	var meta struct {
		Signed struct {
			Meta    map[string]struct{ Version int64 } `json:"meta"`
			Targets map[string]struct {
				Hashes map[string]string `json:"hashes"`
			} `json:"targets"`
		} `json:"signed"`
	}
	cp.api("GET", base+"metadata/timestamp.json", cp.admin, nil, &meta, http.StatusOK)
	sv := meta.Signed.Meta["snapshot.json"].Version
	cp.api("GET", base+"metadata/"+strconv.FormatInt(sv, 10)+".snapshot.json", cp.admin, nil, &meta, http.StatusOK)
	tv := meta.Signed.Meta["targets.json"].Version
	cp.api("GET", base+"metadata/"+strconv.FormatInt(tv, 10)+".targets.json", cp.admin, nil, &meta, http.StatusOK)
	doc, ok := meta.Signed.Targets["docs/lease_keys.json"]
	if !ok {
		t.Fatalf("the tenant's targets list no docs/lease_keys.json")
	}
	var keys []struct {
		KeyID string `json:"key_id"`
	}
	cp.api("GET", base+"targets/docs/"+doc.Hashes["sha256"]+".lease_keys.json", cp.admin, nil, &keys, http.StatusOK)
	var out []string
	for _, k := range keys {
		out = append(out, k.KeyID)
	}
	return out
}
