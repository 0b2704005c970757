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
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf/tuftest"
	"github.com/outpost/outpost/internal/wire"
)

// vendorCP is a real control plane binary on loopback.
type vendorCP struct {
	url, admin string
}

func startControlPlane(t *testing.T) *vendorCP {
	t.Helper()
	bin := testenv.Binary(t, "./cmd/controlplane")
	dir := filepath.Join(t.TempDir(), "cp")
	out, err := exec.Command(bin, "init", "--data-dir", dir).Output()
	if err != nil {
		t.Fatalf("controlplane init: %v", err)
	}
	addr := testenv.FreePort(t)
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--listen", addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &vendorCP{url: "http://" + addr, admin: strings.TrimSpace(string(out))}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, err := http.Get(c.url + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return c
			}
		}
	}
	t.Fatalf("control plane did not become ready: %s", stderr.String())
	return nil
}

// call does one HTTP request with a bearer token and returns the status and body.
func call(t *testing.T, method, url, token string, body io.Reader, secret ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) > 0 && secret[0] != "" {
		req.Header.Set(wire.HeaderLeaseSecret, secret[0])
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// api does a JSON request and fails unless the status is want.
func (c *vendorCP) api(t *testing.T, method, path string, in any, want int) map[string]any {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	status, b := call(t, method, c.url+path, c.admin, body)
	if status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// mirrorEvents counts the tenant's audit events ingested from mirrors, by type.
func (c *vendorCP) mirrorEvents(t *testing.T, tenant string) map[string]int {
	t.Helper()
	got := map[string]int{}
	cursor := ""
	for {
		out := c.api(t, "GET", "/v1/audit-events?limit=1000&tenant_id="+tenant+"&cursor="+cursor, nil, 200)
		for _, it := range out["items"].([]any) {
			ev := it.(map[string]any)
			// Only events ingested from the mirror's chain, not the
			// control plane's own records of mirror requests.
			typ := ev["event_type"].(string)
			if ev["actor_type"] == catalog.ActorMirror && (strings.HasPrefix(typ, "mirror.lease.") || strings.HasPrefix(typ, "mirror.snapshot.")) {
				got[typ]++
			}
		}
		next, _ := out["next_cursor"].(string)
		if next == "" {
			return got
		}
		cursor = next
	}
}

// run runs a one-shot mirror command and returns stdout, stderr and the error.
func run(bin string, args ...string) (string, string, error) {
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mustRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, errs, err := run(bin, args...)
	if err != nil {
		t.Fatalf("mirror %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	return out
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatal("mirror never held a snapshot")
}

type leaseAnswer struct {
	status int
	body   []byte
	lease  mirror.LeaseResponse
}

// holderSecrets are the holder secrets of the leases putLease took, by
// entitlement and subject: a renewal or release sends it.
var holderSecrets sync.Map

func putLease(t *testing.T, base, subject, eid string) leaseAnswer {
	t.Helper()
	secret, _ := holderSecrets.Load(eid + "/" + subject)
	s, _ := secret.(string)
	status, b := call(t, "PUT", base+"/v1/leases/"+subject, "", strings.NewReader(fmt.Sprintf(`{"entitlement_id":%q,"subject_type":"machine"}`, eid)), s)
	a := leaseAnswer{status: status, body: b}
	if status == 200 {
		if err := json.Unmarshal(b, &a.lease); err != nil {
			t.Fatalf("lease answer %s: %v", b, err)
		}
		if a.lease.HolderSecret != "" {
			holderSecrets.Store(eid+"/"+subject, a.lease.HolderSecret)
		}
	}
	return a
}

func heldSecret(eid, subject string) string {
	s, _ := holderSecrets.Load(eid + "/" + subject)
	v, _ := s.(string)
	return v
}

// leasingMirror is a mirror initialised and registered with a control
// plane, with mirrorSeats of a maxSeats entitlement delegated to it and a
// snapshot built that says so.
type leasingMirror struct {
	tenant, root, ent, mirrorID, credential, dir, config string
}

func newLeasingMirror(t *testing.T, bin string, cp *vendorCP, maxSeats, mirrorSeats int) leasingMirror {
	t.Helper()
	var lm leasingMirror
	lm.tenant = cp.api(t, "POST", "/v1/tenants", map[string]any{"name": "acme"}, 201)["tenant_id"].(string)
	product := cp.api(t, "POST", "/v1/products", map[string]any{"name": "app", "distribution": "licensed"}, 201)["product_id"].(string)
	lm.ent = cp.api(t, "POST", "/v1/tenants/"+lm.tenant+"/entitlements", map[string]any{
		"product_id": product, "policy_json": map[string]any{"max_seats": maxSeats},
		"starts_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
	}, 201)["entitlement_id"].(string)

	// The tenant's first build makes its root.
	cp.api(t, "POST", "/v1/tenants/"+lm.tenant+"/snapshots", map[string]any{}, 201)
	status, root := call(t, "GET", cp.url+"/v1/tenants/"+lm.tenant+"/tuf/metadata/1.root.json", cp.admin, nil)
	if status != 200 {
		t.Fatalf("GET root = %d %s", status, root)
	}
	lm.root = filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(lm.root, root, 0o600)

	// The mirror makes its key first; registering it yields the id and credential.
	lm.dir = filepath.Join(t.TempDir(), "m1")
	initArgs := []string{"init", "--data-dir", lm.dir, "--tenant-id", lm.tenant, "--root-file", lm.root, "--vendor-url", cp.url}
	var initOut map[string]string
	json.Unmarshal([]byte(mustRun(t, bin, append(initArgs, "--output", "json")...)), &initOut)
	reg := cp.api(t, "POST", "/v1/tenants/"+lm.tenant+"/mirrors", map[string]any{"allowed_channels": []string{"stable"}, "public_key": initOut["public_key"]}, 201)
	lm.mirrorID, lm.credential = reg["mirror_id"].(string), reg["credential"].(string)
	mustRun(t, bin, append(initArgs, "--force", "--credential", lm.credential)...)
	lm.config = filepath.Join(lm.dir, "mirror.yaml")
	f, _ := os.OpenFile(lm.config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("sync_interval: 1s\nlog_level: warn\n")
	f.Close()

	cp.api(t, "PATCH", "/v1/entitlements/"+lm.ent, map[string]any{"policy_json": map[string]any{"max_seats": maxSeats, "mirror_seats": map[string]int{lm.mirrorID: mirrorSeats}}}, 200)
	cp.api(t, "POST", "/v1/tenants/"+lm.tenant+"/snapshots", map[string]any{}, 201)
	return lm
}

func TestMirror_LeasesAndAudit(t *testing.T) {
	bin := buildOnce(t)
	cp := startControlPlane(t)

	lm := newLeasingMirror(t, bin, cp, 3, 2)
	tenant, ent, mirrorID, credential, dir, config := lm.tenant, lm.ent, lm.mirrorID, lm.credential, lm.dir, lm.config

	d := startDaemon(t, bin, config)
	waitReady(t, d.base)

	var s2 mirror.LeaseResponse
	parent := t // a restarted daemon must outlive the subtest
	t.Run("seats up to mirror_seats survive kill -9", func(t *testing.T) {
		if a := putLease(t, d.base, "s1", ent); a.status != 200 {
			t.Fatalf("PUT s1 = %d %s, want 200", a.status, a.body)
		}
		a := putLease(t, d.base, "s2", ent)
		d.kill9() // right after the answer
		if a.status != 200 {
			t.Fatalf("PUT s2 = %d %s, want 200", a.status, a.body)
		}
		s2 = a.lease
		d = startDaemon(parent, bin, config)
		waitReady(t, d.base)
		if a := putLease(t, d.base, "s3", ent); a.status != http.StatusConflict {
			t.Errorf("PUT s3 with both seats taken = %d %s, want 409", a.status, a.body)
		}
		again := putLease(t, d.base, "s2", ent)
		if again.status != 200 || again.lease.LeaseID != s2.LeaseID {
			t.Errorf("renew s2 = %d lease %q, want 200 lease %q", again.status, again.lease.LeaseID, s2.LeaseID)
		}
		if again.lease.MirrorID != mirrorID {
			t.Errorf("mirror_id = %q, want %q", again.lease.MirrorID, mirrorID)
		}
	})

	t.Run("token verifies offline along the chain", func(t *testing.T) {
		// The mirror keys come from the tenant's metadata, verified
		// from its root through the mirror's /tuf/.
		v, err := license.NewTUFVerifier(nil, tenant, d.served(t))
		if err != nil {
			t.Fatal(err)
		}
		c, err := license.Verify(s2.Token, v, time.Now())
		if err != nil {
			t.Fatalf("verify mirror lease: %v", err)
		}
		if c.SubjectID != "s2" || c.MirrorID() != mirrorID || c.TenantID != tenant {
			t.Errorf("claims = %+v, want s2 from %s of %s", c, mirrorID, tenant)
		}
	})

	t.Run("release frees a seat", func(t *testing.T) {
		if status, b := call(t, "DELETE", d.base+"/v1/leases/s1?entitlement_id="+ent, "", nil, heldSecret(ent, "s1")); status != 204 {
			t.Fatalf("DELETE s1 = %d %s, want 204", status, b)
		}
		if a := putLease(t, d.base, "s3", ent); a.status != 200 {
			t.Errorf("PUT s3 after release = %d %s, want 200", a.status, a.body)
		}
	})

	t.Run("serve uploads the chain after a sync", func(t *testing.T) {
		want := map[string]int{"mirror.snapshot.synced": 1, "mirror.lease.issued": 3, "mirror.lease.renewed": 1, "mirror.lease.released": 1}
		var got map[string]int
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if got = cp.mirrorEvents(t, tenant); fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
		}
		t.Errorf("ingested mirror events = %v, want %v", got, want)
	})

	t.Run("lease signed by a key no snapshot lists is rejected", func(t *testing.T) {
		// A rogue mirror claiming the same mirror id with its own key,
		// fed from the real one.
		rogue := filepath.Join(t.TempDir(), "rogue")
		mustRun(t, bin, "init", "--data-dir", rogue, "--tenant-id", tenant, "--root-file", lm.root, "--mirror-id", mirrorID)
		rc := filepath.Join(rogue, "mirror.yaml")
		os.WriteFile(rc, append(must(os.ReadFile(rc)), fmt.Sprintf("source: upstream\nupstream_url: %q\nsync_interval: 1s\nlog_level: warn\n", d.base)...), 0o600)
		// init wrote source: none; the appended key must win, so drop it.
		os.WriteFile(rc, bytes.Replace(must(os.ReadFile(rc)), []byte("source: none\n"), nil, 1), 0o600)
		r := startDaemon(t, bin, rc)
		waitReady(t, r.base)
		a := putLease(t, r.base, "x1", ent)
		r.kill9()
		if a.status != 200 {
			t.Fatalf("rogue PUT = %d %s", a.status, a.body)
		}
		v, err := license.NewTUFVerifier(nil, tenant, d.served(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := license.Verify(a.lease.Token, v, time.Now()); !errors.Is(err, license.ErrUnknownMirrorKey) {
			t.Errorf("verify rogue lease: %v, want ErrUnknownMirrorKey", err)
		}
	})

	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
	export := filepath.Join(t.TempDir(), "audit.jsonl")

	t.Run("export, verify, upload twice", func(t *testing.T) {
		mustRun(t, bin, "audit", "verify", "--config", config)
		mustRun(t, bin, "audit", "export", "--config", config, "--out", export)
		if out := mustRun(t, bin, "audit", "verify", "--config", config, "--file", export); !strings.Contains(out, "audit export ok: 6 events") {
			t.Errorf("verify --file: %q, want 6 events", out)
		}
		before := cp.mirrorEvents(t, tenant)
		for i := range 2 {
			var res struct{ Received, Ingested int }
			json.Unmarshal([]byte(mustRun(t, bin, "audit", "upload", "--config", config, "--output", "json")), &res)
			// serve already uploaded all 6: an upload carries only the
			// events after the head the control plane accepted.
			if res.Received != 0 || res.Ingested != 0 {
				t.Errorf("upload %d = %+v, want nothing sent or ingested (serve already uploaded)", i+1, res)
			}
		}
		if after := cp.mirrorEvents(t, tenant); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("events after re-upload = %v, want unchanged %v", after, before)
		}
	})

	t.Run("tampered export is refused naming the first broken link", func(t *testing.T) {
		lines := strings.Split(string(must(os.ReadFile(export))), "\n")
		edited := strings.Replace(lines[1], `"subject_id":"s1"`, `"subject_id":"s9"`, 1)
		if edited == lines[1] {
			t.Fatalf("line 2 has no s1 subject: %s", lines[1])
		}
		lines[1] = edited
		tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
		os.WriteFile(tampered, []byte(strings.Join(lines, "\n")), 0o600)

		status, b := call(t, "POST", cp.url+"/v1/mirror/audit", credential, bytes.NewReader(must(os.ReadFile(tampered))))
		if status != 400 || !strings.Contains(string(b), "audit chain broken at event 2") {
			t.Errorf("control plane answered %d %s, want 400 naming event 2", status, b)
		}
		if _, errs, err := run(bin, "audit", "verify", "--config", config, "--file", tampered); err == nil || !strings.Contains(errs, "event 2") {
			t.Errorf("verify --file tampered: err %v, stderr %q; want event 2 named", err, errs)
		}
	})

	t.Run("verify names a tampered event in the data dir", func(t *testing.T) {
		db, err := bbolt.Open(filepath.Join(dir, "mirror.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("mirror_audit")) // the state's audit bucket, tampered with on purpose
			k := []byte{0, 0, 0, 0, 0, 0, 0, 3}
			var ev catalog.AuditEvent
			if err := json.Unmarshal(b.Get(k), &ev); err != nil {
				return err
			}
			ev.ActorID = "mir_mallory"
			raw, _ := json.Marshal(&ev)
			return b.Put(k, raw)
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, errs, err := run(bin, "audit", "verify", "--config", config); err == nil || !strings.Contains(errs, "event 3") {
			t.Errorf("audit verify: err %v, stderr %q; want event 3 named", err, errs)
		}
	})
}

func TestMirror_LeasesNeedMirrorID(t *testing.T) {
	bin := buildOnce(t)
	dir := t.TempDir()
	const tenant = "ten_0000000000000000000000000a"
	root := filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(root, tuftest.NewVendor(t, tenant, 1).RootData, 0o600)
	mustRun(t, bin, "init", "--data-dir", dir, "--tenant-id", tenant, "--root-file", root)
	d := startDaemon(t, bin, filepath.Join(dir, "mirror.yaml"))
	a := putLease(t, d.base, "s1", "ent_0000000000000000000000000a")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "mirror id unknown") {
		t.Errorf("PUT without a mirror id = %d %s, want 503 naming the missing mirror id", a.status, a.body)
	}
	if _, errs, err := run(bin, "init", "--data-dir", t.TempDir(), "--tenant-id", tenant, "--root-file", root, "--mirror-id", "mir_bogus"); err == nil || !strings.Contains(errs, "--mirror-id") {
		t.Errorf("init --mirror-id bogus: err %v, stderr %q", err, errs)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
