package httpapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/wire"
)

// record decodes a stored build record (GET /v1/snapshots/{id}, GET
// /v1/mirror/snapshot): the view a build made, unsigned (the TUF
// repository is what sites verify), of tenantID.
func record(t *testing.T, body []byte, tenantID string) *snapshot.Manifest {
	t.Helper()
	var rec struct {
		PayloadType string          `json:"payloadType"`
		Payload     []byte          `json:"payload"`
		Signatures  json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatalf("build record: %v: %.200s", err, body)
	}
	if rec.PayloadType != controlplane.BuildRecordType || rec.Signatures != nil {
		t.Fatalf("build record of type %q with signatures %s, want %q unsigned", rec.PayloadType, rec.Signatures, controlplane.BuildRecordType)
	}
	var m snapshot.Manifest
	if err := json.Unmarshal(rec.Payload, &m); err != nil {
		t.Fatal(err)
	}
	if m.TenantID != tenantID {
		t.Fatalf("build record of tenant %s, want %s", m.TenantID, tenantID)
	}
	return &m
}

func (h *harness) mirror(tenantID string, channels ...string) (id, credential string, key ed25519.PrivateKey) {
	h.t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	m := h.must(201, h.do("POST", "/v1/tenants/"+tenantID+"/mirrors", h.admin, map[string]any{
		"name": "site", "allowed_channels": channels, "public_key": base64.StdEncoding.EncodeToString(pub)}))
	return m["mirror_id"].(string), m["credential"].(string), key
}

func TestAPI_Snapshots(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("acme")
	open := h.product("open", "open")
	licensed := h.product("licensed", "")
	hidden := h.product("hidden", "")
	relOpen, _ := h.release(open, "stable", "1.0.0", []byte("open"))
	h.release(licensed, "stable", "2.0.0", []byte("lic"))
	h.release(hidden, "stable", "3.0.0", []byte("hid"))
	h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/entitlements", h.admin, map[string]any{"product_id": licensed, "policy_json": map[string]any{"max_seats": 5}}))
	h.must(200, h.do("POST", "/v1/releases/"+relOpen+"/revoke", h.admin, nil))

	s1 := h.snapshot(tenant)
	if s1["sequence"].(float64) != 1 {
		t.Fatalf("first sequence %v", s1["sequence"])
	}
	r := h.do("GET", "/v1/snapshots/"+s1["snapshot_id"].(string), h.admin, nil)
	m := record(t, r.body, tenant)
	var names []string
	for _, p := range m.Products {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, ","), "open,licensed"; got != want && got != "licensed,open" {
		t.Fatalf("visible products %q, want open and licensed only", got)
	}
	for _, rel := range m.Releases {
		if rel.ReleaseID == relOpen && rel.Status != "REVOKED" {
			t.Fatalf("revoked release has status %s in the manifest", rel.Status)
		}
	}

	t.Run("sequence grows by one", func(t *testing.T) {
		s2 := h.snapshot(tenant)
		r2 := h.do("GET", "/v1/snapshots/"+s2["snapshot_id"].(string), h.admin, nil)
		if m2 := record(t, r2.body, tenant); m2.Sequence != 2 {
			t.Fatalf("got %d, want 2", m2.Sequence)
		}
	})
	t.Run("concurrent builds coalesce", func(t *testing.T) {
		// Requests during a running build share one follow-up build
		// (controlplane/herd.go): every request gets a snapshot newer
		// than the one before the burst, sequences are never assigned
		// twice, and there are between 1 and 8 new snapshots.
		before := h.must(200, h.do("GET", "/v1/tenants/"+tenant+"/snapshots", h.admin, nil))["items"].([]any)
		var wg sync.WaitGroup
		type answer struct {
			status int
			seq    float64
			id     string
		}
		answers := make(chan answer, 8)
		for range 8 {
			wg.Go(func() {
				r := h.do("POST", "/v1/tenants/"+tenant+"/snapshots", h.admin, nil)
				a := answer{status: r.status}
				if r.status == 201 {
					m := r.json(t)
					a.seq, a.id = m["sequence"].(float64), m["snapshot_id"].(string)
				}
				answers <- a
			})
		}
		wg.Wait()
		close(answers)
		ids := map[float64]string{}
		for a := range answers {
			if a.status != 201 {
				t.Fatalf("status %d, want 201", a.status)
			}
			if a.seq <= float64(len(before)) {
				t.Errorf("sequence %v is not newer than the %d before the burst", a.seq, len(before))
			}
			if id, ok := ids[a.seq]; ok && id != a.id {
				t.Fatalf("sequence %v assigned to two snapshots", a.seq)
			}
			ids[a.seq] = a.id
		}
		after := h.must(200, h.do("GET", "/v1/tenants/"+tenant+"/snapshots", h.admin, nil))["items"].([]any)
		if n := len(after) - len(before); n < 1 || n > 8 {
			t.Fatalf("%d new snapshots, want 1 to 8", n)
		}
	})
	t.Run("suspended tenant gets no snapshot", func(t *testing.T) {
		other := h.tenant("sus")
		h.must(200, h.do("PATCH", "/v1/tenants/"+other, h.admin, map[string]any{"status": "suspended"}))
		if r := h.do("POST", "/v1/tenants/"+other+"/snapshots", h.admin, nil); r.status != 409 {
			t.Fatalf("got %d, want 409", r.status)
		}
	})
}

func TestAPI_MirrorAPI(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant("a"), h.tenant("b")
	prod := h.product("p", "open")
	_, stableArt := h.release(prod, "stable", "1.0.0", []byte("stable bytes"))
	_, betaArt := h.release(prod, "beta", "1.1.0-beta.1", []byte("beta bytes"))
	mirA, credA, _ := h.mirror(a, "stable")
	_, credB, _ := h.mirror(b, "stable", "beta")

	if r := h.do("GET", "/v1/mirror/snapshot", credA, nil); r.status != 404 {
		t.Fatalf("no snapshot yet: got %d, want 404", r.status)
	}
	h.snapshot(a)
	h.snapshot(b)

	self := h.must(200, h.do("GET", "/v1/mirror/self", credA, nil))
	if self["mirror_id"] != mirA || self["tenant_id"] != a || fmt.Sprint(self["allowed_channels"]) != "[stable]" {
		t.Fatalf("self = %v", self)
	}
	env := h.do("GET", "/v1/mirror/snapshot", credA, nil)
	if env.status != 200 {
		t.Fatalf("got %d", env.status)
	}
	record(t, env.body, a)
	if r := h.do("GET", "/v1/mirror/snapshot?after=1", credA, nil); r.status != 304 {
		t.Fatalf("after=1: got %d, want 304", r.status)
	}

	t.Run("artifact in allowed channel", func(t *testing.T) {
		r := h.do("GET", "/v1/mirror/artifacts/"+stableArt, credA, nil)
		if r.status != 200 || string(r.body) != "stable bytes" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		rr := h.raw("GET", "/v1/mirror/artifacts/"+stableArt, credA, "", nil, map[string]string{"Range": "bytes=7-"})
		if rr.status != 206 || string(rr.body) != "bytes" {
			t.Fatalf("range: got %d %q", rr.status, rr.body)
		}
	})
	t.Run("artifact of another channel", func(t *testing.T) {
		if r := h.do("GET", "/v1/mirror/artifacts/"+betaArt, credA, nil); r.status != 404 {
			t.Fatalf("got %d, want 404", r.status)
		}
	})
	t.Run("mirror of tenant B gets nothing of A", func(t *testing.T) {
		envB := h.do("GET", "/v1/mirror/snapshot", credB, nil)
		record(t, envB.body, b)
	})
	t.Run("mirror credential is not an admin token", func(t *testing.T) {
		if r := h.do("GET", "/v1/tenants", credA, nil); r.status != 403 {
			t.Fatalf("got %d, want 403", r.status)
		}
	})
	t.Run("status report", func(t *testing.T) {
		snapID := h.must(200, h.do("GET", "/v1/tenants/"+a+"/snapshots", h.admin, nil))["items"].([]any)[0].(map[string]any)["snapshot_id"]
		h.must(200, h.do("POST", "/v1/mirror/status", credA, map[string]any{"status": "active", "last_snapshot_id": snapID}))
		list := h.must(200, h.do("GET", "/v1/tenants/"+a+"/mirrors", h.admin, nil))["items"].([]any)
		m := list[0].(map[string]any)
		if m["last_snapshot_id"] != snapID || m["last_sync_at"] == nil {
			t.Fatalf("got %v", m)
		}
		if strings.Contains(string(h.do("GET", "/v1/tenants/"+a+"/mirrors", h.admin, nil).body), credA) {
			t.Fatal("mirror listing shows the credential")
		}
	})
	t.Run("deactivated mirror is refused", func(t *testing.T) {
		h.must(200, h.do("DELETE", "/v1/mirrors/"+mirA, h.admin, nil))
		if r := h.do("GET", "/v1/mirror/snapshot", credA, nil); r.status != 401 {
			t.Fatalf("got %d, want 401", r.status)
		}
	})
}

func TestAPI_MirrorArtifactRedirect(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("a")
	prod := h.product("p", "open")
	rel := h.must(201, h.do("POST", "/v1/products/"+prod+"/releases", h.admin, map[string]any{"channel": "stable", "version": "1.0.0"}))["release_id"].(string)
	data := []byte("external bytes")
	ext := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	srv := newLocalServer(t, ext)
	a := h.must(201, h.do("POST", "/v1/artifacts", h.admin, map[string]any{"external_url": srv + "/pkg", "sha256": sha(data), "size_bytes": len(data)}))
	id := a["artifact_id"].(string)
	h.must(200, h.do("POST", "/v1/artifacts/"+id+"/verify", h.admin, nil))
	h.must(201, h.do("POST", "/v1/releases/"+rel+"/artifacts", h.admin, map[string]any{"artifact_id": id, "platform": "linux", "arch": "x64", "installer_type": "zip"}))
	_, cred, _ := h.mirror(tenant, "stable")
	h.snapshot(tenant)
	r := h.do("GET", "/v1/mirror/artifacts/"+id, cred, nil)
	if r.status != 302 || r.header.Get("Location") != srv+"/pkg" {
		t.Fatalf("got %d Location %q", r.status, r.header.Get("Location"))
	}
}

func TestAPI_UpdateCheckAndLeases(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("a")
	tok := h.tenantToken(tenant)
	prod := h.product("p", "")
	h.release(prod, "stable", "1.0.0", []byte("one"))
	_, art2 := h.release(prod, "stable", "1.1.0", []byte("two"))
	ent := h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/entitlements", h.admin, map[string]any{
		"product_id": prod, "policy_json": map[string]any{"max_seats": 2, "features": []string{"pro"}}}))["entitlement_id"].(string)
	h.snapshot(tenant)

	q := "/v1/updates/check?product=" + prod + "&channel=stable&platform=linux&arch=x64&version=1.0.0&client_id=c1"
	d := h.must(200, h.do("GET", q, tok, nil))
	if d["update_available"] != true || d["artifact"].(map[string]any)["artifact_id"] != art2 {
		t.Fatalf("got %v", d)
	}
	url := d["artifact"].(map[string]any)["url"].(string)
	if r := h.do("GET", url, tok, nil); r.status != 200 || string(r.body) != "two" {
		t.Fatalf("download %s: got %d %q", url, r.status, r.body)
	}
	if r := h.do("GET", q, h.admin, nil); r.status != 403 {
		t.Fatalf("admin token update check: got %d, want 403", r.status)
	}
	other := h.tenantToken(h.tenant("b"))
	if r := h.do("GET", url, other, nil); r.status != 404 {
		t.Fatalf("other tenant downloading: got %d, want 404", r.status)
	}

	t.Run("leases", func(t *testing.T) {
		l1 := h.must(201, h.do("POST", "/v1/entitlements/"+ent+"/leases", tok, map[string]any{"subject_type": "user", "subject_id": "alice"}))
		pub := h.key.Public().(ed25519.PublicKey)
		v, err := license.NewVerifier(map[string]ed25519.PublicKey{snapshot.KeyID(pub): pub}, tenant)
		if err != nil {
			t.Fatal(err)
		}
		c, err := license.Verify(l1["token"].(string), v, time.Now())
		if err != nil {
			t.Fatalf("lease token does not verify: %v", err)
		}
		if c.LeaseID != l1["lease_id"] || c.SubjectID != "alice" || len(c.Features) != 1 {
			t.Fatalf("claims %+v", c)
		}
		secret, _ := l1["holder_secret"].(string)
		if secret == "" {
			t.Fatal("acquire returned no holder_secret")
		}
		alice := func() io.Reader { return strings.NewReader(`{"subject_type":"user","subject_id":"alice"}`) }
		if r := h.do("POST", "/v1/entitlements/"+ent+"/leases", tok, map[string]any{"subject_type": "user", "subject_id": "alice"}); r.status != 403 {
			t.Fatalf("renewal without the holder secret: got %d %s, want 403", r.status, r.body)
		}
		if r := h.do("DELETE", "/v1/leases/"+l1["lease_id"].(string), tok, nil); r.status != 403 {
			t.Fatalf("release without the holder secret: got %d %s, want 403", r.status, r.body)
		}
		again := h.must(201, h.raw("POST", "/v1/entitlements/"+ent+"/leases", tok, "application/json", alice(), map[string]string{wire.HeaderLeaseSecret: secret}))
		if _, ok := again["holder_secret"]; ok {
			t.Fatal("a renewal returned the holder secret again")
		}
		if again["lease_id"] != l1["lease_id"] {
			t.Fatal("renewal took a second lease")
		}
		c2, err := license.Verify(again["token"].(string), v, time.Now())
		if err != nil || c2.LeaseID != l1["lease_id"] {
			t.Fatalf("renewed token: %v %+v", err, c2)
		}
		h.must(201, h.do("POST", "/v1/entitlements/"+ent+"/leases", tok, map[string]any{"subject_type": "user", "subject_id": "bob"}))
		r := h.do("POST", "/v1/entitlements/"+ent+"/leases", tok, map[string]any{"subject_type": "user", "subject_id": "carol"})
		if r.status != 409 || !strings.Contains(r.errMessage(t), "seats") {
			t.Fatalf("third seat: got %d %s", r.status, r.body)
		}
		h.must(200, h.raw("DELETE", "/v1/leases/"+l1["lease_id"].(string), tok, "", nil, map[string]string{wire.HeaderLeaseSecret: secret}))
		h.must(201, h.do("POST", "/v1/entitlements/"+ent+"/leases", tok, map[string]any{"subject_type": "user", "subject_id": "carol"}))
	})
}
