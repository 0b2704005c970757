package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAPI_Auth(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("acme")
	tok := h.tenantToken(tenant)

	cases := []struct {
		name, method, path, token string
		want                      int
	}{
		{"no token", "GET", "/v1/tenants", "", 401},
		{"unknown token", "GET", "/v1/tenants", "opt_bogus", 401},
		{"malformed header token", "GET", "/v1/tenants", strings.Repeat("x", 300), 401},
		{"tenant token on admin route", "POST", "/v1/products", tok, 403},
		{"tenant token may read own tenant", "GET", "/v1/tenants/" + tenant, tok, 200},
		{"admin reads anything", "GET", "/v1/tenants/" + tenant, h.admin, 200},
		{"public healthz", "GET", "/healthz", "", 200},
		{"public readyz", "GET", "/readyz", "", 200},
		{"metrics", "GET", "/metrics", "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.path, c.token, nil)
			if got := r.status; got != c.want {
				t.Fatalf("got %d, want %d: %s", got, c.want, r.body)
			}
		})
	}
}

func TestAPI_TokensStoredHashed(t *testing.T) {
	h := newHarness(t)
	r := h.must(201, h.do("POST", "/v1/tokens", h.admin, map[string]any{"role": "admin"}))
	secret := r["token"].(string)
	if len(secret) < 40 {
		t.Fatalf("token %q is too short for 32 random bytes", secret)
	}
	h.db.Close()
	raw, err := os.ReadFile(filepath.Join(h.dir, "cp.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte(h.admin)) {
		t.Fatal("a token secret is stored in the database in clear")
	}
}

func TestAPI_TenantIsolation(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant("a"), h.tenant("b")
	tokA := h.tenantToken(a)
	prod := h.product("p", "open")
	h.release(prod, "stable", "1.0.0", []byte("x"))
	h.must(201, h.do("POST", "/v1/tenants/"+b+"/policies", h.admin, map[string]any{"product_id": prod, "channel": "stable", "action": "NOTIFY"}))
	ent := h.must(201, h.do("POST", "/v1/tenants/"+b+"/entitlements", h.admin, map[string]any{"product_id": prod, "policy_json": map[string]any{"max_seats": 2}}))["entitlement_id"].(string)
	snapB := h.snapshot(b)["snapshot_id"].(string)
	polB := h.must(200, h.do("GET", "/v1/tenants/"+b+"/policies", h.admin, nil))["items"].([]any)[0].(map[string]any)["policy_id"].(string)

	for _, path := range []string{
		"/v1/tenants/" + b,
		"/v1/tenants/" + b + "/snapshots",
		"/v1/tenants/" + b + "/policies",
		"/v1/tenants/" + b + "/entitlements",
		"/v1/tenants/" + b + "/mirrors",
		"/v1/tenants/" + b + "/blocked-versions",
		"/v1/snapshots/" + snapB,
		"/v1/policies/" + polB,
		"/v1/policies/" + polB + "/versions",
		"/v1/entitlements/" + ent,
		"/v1/entitlements/" + ent + "/seats",
	} {
		t.Run(path, func(t *testing.T) {
			r := h.do("GET", path, tokA, nil)
			if r.status != 404 {
				t.Fatalf("tenant A got %d for %s, want 404: %s", r.status, path, r.body)
			}
		})
	}
	t.Run("lease on B's entitlement", func(t *testing.T) {
		r := h.do("POST", "/v1/entitlements/"+ent+"/leases", tokA, map[string]any{"subject_type": "user", "subject_id": "u1"})
		if r.status != 404 {
			t.Fatalf("got %d, want 404: %s", r.status, r.body)
		}
	})
	t.Run("tenant list shows only own tenant", func(t *testing.T) {
		items := h.must(200, h.do("GET", "/v1/tenants", tokA, nil))["items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["tenant_id"] != a {
			t.Fatalf("got %v, want only %s", items, a)
		}
	})
	t.Run("audit filtered to own tenant", func(t *testing.T) {
		items := h.must(200, h.do("GET", "/v1/audit-events?tenant_id="+b, tokA, nil))["items"].([]any)
		if len(items) != 0 {
			t.Fatalf("tenant A sees %d of B's audit events", len(items))
		}
	})
}

func TestAPI_BadInput(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("acme")
	prod := h.product("p", "")
	rel, art := h.release(prod, "stable", "1.0.0", []byte("bytes"))
	big := `{"name":"` + strings.Repeat("a", 2<<20) + `"}`

	cases := []struct {
		name, method, path, body string
		status                   int
		code, mentions           string
	}{
		{"malformed json", "POST", "/v1/tenants", `{"name":`, 400, "invalid", "malformed"},
		{"unknown field", "POST", "/v1/tenants", `{"name":"x","colour":"red"}`, 400, "invalid", "colour"},
		{"wrong type", "POST", "/v1/tenants", `{"name":5}`, 400, "invalid", "name"},
		{"missing name", "POST", "/v1/tenants", `{}`, 400, "invalid", "name"},
		{"trailing data", "POST", "/v1/tenants", `{"name":"x"}{}`, 400, "invalid", "trailing"},
		{"empty body", "POST", "/v1/tenants", ``, 400, "invalid", "empty"},
		{"bad tenant status", "POST", "/v1/tenants", `{"name":"x","status":"zombie"}`, 400, "invalid", "status"},
		{"metadata not object", "POST", "/v1/tenants", `{"name":"x","metadata":[1]}`, 400, "invalid", "metadata"},
		{"oversized body", "POST", "/v1/tenants", big, 413, "too_large", "body"},
		{"bad distribution", "POST", "/v1/products", `{"name":"x","distribution":"free"}`, 400, "invalid", "distribution"},
		{"invalid semver", "POST", "/v1/products/" + prod + "/releases", `{"channel":"stable","version":"1.0"}`, 400, "invalid", "version"},
		{"v-prefixed semver", "POST", "/v1/products/" + prod + "/releases", `{"channel":"stable","version":"v1.0.0"}`, 400, "invalid", "version"},
		{"bad channel", "POST", "/v1/products/" + prod + "/releases", `{"channel":"Stable!","version":"1.0.1"}`, 400, "invalid", "channel"},
		{"unknown product", "POST", "/v1/products/prd_00000000000000000000000000/releases", `{"channel":"stable","version":"1.0.1"}`, 404, "not_found", "product"},
		{"malformed product id", "POST", "/v1/products/nope/releases", `{"channel":"stable","version":"1.0.1"}`, 404, "not_found", "product"},
		{"duplicate release", "POST", "/v1/products/" + prod + "/releases", `{"channel":"stable","version":"1.0.0"}`, 409, "conflict", ""},
		{"unknown platform", "POST", "/v1/releases/" + rel + "/artifacts", `{"artifact_id":"` + art + `","platform":"beos","arch":"x64","installer_type":"zip"}`, 400, "invalid", "platform"},
		{"unknown arch", "POST", "/v1/releases/" + rel + "/artifacts", `{"artifact_id":"` + art + `","platform":"linux","arch":"pdp11","installer_type":"zip"}`, 400, "invalid", "arch"},
		{"unknown installer", "POST", "/v1/releases/" + rel + "/artifacts", `{"artifact_id":"` + art + `","platform":"linux","arch":"x64","installer_type":"floppy"}`, 400, "invalid", "installer_type"},
		{"bad artifact id", "POST", "/v1/releases/" + rel + "/artifacts", `{"artifact_id":"x","platform":"linux","arch":"x64","installer_type":"zip"}`, 400, "invalid", "artifact_id"},
		{"missing artifact", "POST", "/v1/releases/" + rel + "/artifacts", `{"artifact_id":"art_00000000000000000000000000","platform":"linux","arch":"x64","installer_type":"zip"}`, 404, "not_found", "artifact"},
		{"unknown tenant", "GET", "/v1/tenants/ten_00000000000000000000000000", ``, 404, "not_found", "tenant"},
		{"unknown release", "GET", "/v1/releases/rel_00000000000000000000000000", ``, 404, "not_found", "release"},
		{"bad limit", "GET", "/v1/tenants?limit=0", ``, 400, "invalid", "limit"},
		{"bad cursor", "GET", "/v1/tenants?cursor=%21%21", ``, 400, "invalid", "cursor"},
		{"malformed query", "GET", "/v1/tenants?cursor=%%%", ``, 400, "invalid", "query"},
		{"bad token role", "POST", "/v1/tokens", `{"role":"root"}`, 400, "invalid", "role"},
		{"tenant token without tenant", "POST", "/v1/tokens", `{"role":"tenant"}`, 400, "invalid", "tenant_id"},
		{"bad rollout percentage", "POST", "/v1/products/" + prod + "/rollouts", `{"channel":"stable","release_id":"` + rel + `","percentage":101}`, 400, "invalid", "percentage"},
		{"bad policy action", "POST", "/v1/tenants/" + tenant + "/policies", `{"product_id":"` + prod + `","channel":"stable","action":"NUKE"}`, 400, "invalid", "action"},
		{"bad policy condition key", "POST", "/v1/tenants/" + tenant + "/policies", `{"product_id":"` + prod + `","channel":"stable","action":"NOTIFY","conditions":{"planets":["mars"]}}`, 400, "invalid", "planets"},
		{"bad entitlement policy", "POST", "/v1/tenants/" + tenant + "/entitlements", `{"product_id":"` + prod + `","policy_json":{"max_seats":"ten"}}`, 400, "invalid", "max_seats"},
		{"unknown route", "GET", "/v1/nothing", ``, 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.auditCount()
			r := h.do(c.method, c.path, h.admin, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if got := r.errCode(t); got != c.code {
				t.Fatalf("code %q, want %q", got, c.code)
			}
			if msg := r.errMessage(t); !strings.Contains(strings.ToLower(msg), c.mentions) {
				t.Fatalf("message %q does not mention %q", msg, c.mentions)
			}
			if after := h.auditCount(); after != before {
				t.Fatalf("a rejected request wrote %d audit events", after-before)
			}
		})
	}
}

func TestAPI_Idempotency(t *testing.T) {
	h := newHarness(t)
	hdr := map[string]string{"Idempotency-Key": "k1"}
	post := func(body string) resp {
		return h.raw("POST", "/v1/tenants", h.admin, "application/json", strings.NewReader(body), hdr)
	}
	first := post(`{"name":"acme"}`)
	second := post(`{"name":"acme"}`)
	if first.status != 201 || second.status != 201 {
		t.Fatalf("statuses %d, %d", first.status, second.status)
	}
	if !bytes.Equal(first.body, second.body) {
		t.Fatalf("retry answered differently:\n%s\n%s", first.body, second.body)
	}
	if second.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("retry not marked as replayed")
	}
	if r := post(`{"name":"other"}`); r.status != 409 {
		t.Fatalf("same key, different body: got %d, want 409", r.status)
	}
	t.Run("concurrent retries create one", func(t *testing.T) {
		var wg sync.WaitGroup
		ids := make([]string, 10)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.raw("POST", "/v1/tenants", h.admin, "application/json", strings.NewReader(`{"name":"race"}`), map[string]string{"Idempotency-Key": "k2"})
				if r.status == 201 {
					ids[i] = string(r.body)
				}
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] || id == "" {
				t.Fatalf("concurrent retries gave different answers: %q vs %q", id, ids[0])
			}
		}
		items := h.must(200, h.do("GET", "/v1/tenants", h.admin, nil))["items"].([]any)
		if got, want := len(items), 2; got != want {
			t.Fatalf("got %d tenants, want %d", got, want)
		}
	})
}

func TestAPI_Pagination(t *testing.T) {
	h := newHarness(t)
	for i := range 25 {
		h.tenant(fmt.Sprintf("t%02d", i))
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := "/v1/tenants?limit=10"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := h.must(200, h.do("GET", path, h.admin, nil))
		for _, it := range r["items"].([]any) {
			id := it.(map[string]any)["tenant_id"].(string)
			if seen[id] {
				t.Fatalf("tenant %s listed twice", id)
			}
			seen[id] = true
		}
		pages++
		cursor, _ = r["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if got, want := len(seen), 25; got != want {
		t.Fatalf("got %d tenants, want %d", got, want)
	}
	if pages != 3 {
		t.Fatalf("got %d pages, want 3", pages)
	}
}

func TestAPI_ArtifactUpload(t *testing.T) {
	h := newHarness(t)
	data := bytes.Repeat([]byte("outpost"), 100_000)
	t.Run("raw with declared sha256", func(t *testing.T) {
		r := h.raw("POST", "/v1/artifacts?sha256="+sha(data)+"&size_bytes="+fmt.Sprint(len(data)), h.admin, "application/octet-stream", bytes.NewReader(data), nil)
		a := h.must(201, r)
		if a["sha256"] != sha(data) || a["size_bytes"].(float64) != float64(len(data)) || a["status"] != "VERIFIED" {
			t.Fatalf("got %v", a)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("sha256", sha(data))
		fw, _ := mw.CreateFormFile("file", "app.tar.gz")
		fw.Write(data)
		mw.Close()
		a := h.must(201, h.raw("POST", "/v1/artifacts", h.admin, mw.FormDataContentType(), &buf, nil))
		if a["sha256"] != sha(data) {
			t.Fatalf("got %v", a["sha256"])
		}
	})
	t.Run("mismatch leaves nothing", func(t *testing.T) {
		before := h.auditCount()
		blobsBefore := countFiles(t, filepath.Join(h.dir, "blobs"))
		wrong := sha([]byte("other"))
		r := h.raw("POST", "/v1/artifacts?sha256="+wrong, h.admin, "application/octet-stream", bytes.NewReader(data), nil)
		if r.status != 400 || r.errCode(t) != "invalid" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		r = h.raw("POST", "/v1/artifacts?size_bytes=5", h.admin, "application/octet-stream", bytes.NewReader(data), nil)
		if r.status != 400 {
			t.Fatalf("size mismatch: got %d %s", r.status, r.body)
		}
		if h.auditCount() != before {
			t.Fatal("a rejected upload wrote an audit event")
		}
		if got := countFiles(t, filepath.Join(h.dir, "blobs")); got != blobsBefore {
			t.Fatalf("a rejected upload left %d files behind", got-blobsBefore)
		}
	})
	t.Run("over the size limit", func(t *testing.T) {
		h2 := newHarness(t, func(o *controlplane.Options) { o.Config.MaxArtifactBytes = 1000 })
		r := h2.raw("POST", "/v1/artifacts", h2.admin, "application/octet-stream", bytes.NewReader(data), nil)
		if r.status != 413 {
			t.Fatalf("got %d, want 413: %s", r.status, r.body)
		}
	})
	t.Run("external verify", func(t *testing.T) {
		good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
		defer good.Close()
		a := h.must(201, h.do("POST", "/v1/artifacts", h.admin, map[string]any{"external_url": good.URL + "/f", "sha256": sha(data), "size_bytes": len(data)}))
		if a["status"] != "PENDING" {
			t.Fatalf("status %v before verification", a["status"])
		}
		v := h.must(200, h.do("POST", "/v1/artifacts/"+a["artifact_id"].(string)+"/verify", h.admin, nil))
		if v["status"] != "VERIFIED" || v["verified_at"] == nil {
			t.Fatalf("got %v", v)
		}
		bad := h.must(201, h.do("POST", "/v1/artifacts", h.admin, map[string]any{"external_url": good.URL + "/f", "sha256": sha([]byte("no")), "size_bytes": len(data)}))
		v = h.must(200, h.do("POST", "/v1/artifacts/"+bad["artifact_id"].(string)+"/verify", h.admin, nil))
		if v["status"] != "FAILED" {
			t.Fatalf("got %v", v)
		}
		rel := h.must(201, h.do("POST", "/v1/products/"+h.product("p", "")+"/releases", h.admin, map[string]any{"channel": "stable", "version": "1.0.0"}))["release_id"].(string)
		r := h.do("POST", "/v1/releases/"+rel+"/artifacts", h.admin, map[string]any{"artifact_id": bad["artifact_id"], "platform": "linux", "arch": "x64", "installer_type": "zip"})
		if r.status != 409 {
			t.Fatalf("attaching a FAILED artifact: got %d, want 409", r.status)
		}
	})
	t.Run("private addresses refused by default", func(t *testing.T) {
		h2 := newHarness(t, func(o *controlplane.Options) { o.Config.AllowPrivateURLs = false })
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
		defer srv.Close()
		a := h2.must(201, h2.do("POST", "/v1/artifacts", h2.admin, map[string]any{"external_url": srv.URL + "/f", "sha256": sha(data), "size_bytes": len(data)}))
		v := h2.must(200, h2.do("POST", "/v1/artifacts/"+a["artifact_id"].(string)+"/verify", h2.admin, nil))
		if v["status"] != "FAILED" || !strings.Contains(v["reason"].(string), "not a public address") {
			t.Fatalf("verify of a loopback URL = %v, want FAILED naming the address", v)
		}
	})
	t.Run("external url must be http", func(t *testing.T) {
		r := h.do("POST", "/v1/artifacts", h.admin, map[string]any{"external_url": "file:///etc/passwd", "sha256": sha(data), "size_bytes": 1})
		if r.status != 400 || !strings.Contains(r.errMessage(t), "external_url") {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestAPI_ReleaseLifecycle(t *testing.T) {
	h := newHarness(t)
	prod := h.product("p", "")
	rel, art := h.release(prod, "stable", "1.2.3", []byte("data"))
	got := h.must(200, h.do("GET", "/v1/releases/"+rel, h.admin, nil))
	if got["status"] != "ACTIVE" || len(got["artifacts"].([]any)) != 1 {
		t.Fatalf("got %v", got)
	}
	t.Run("no update path", func(t *testing.T) {
		for _, m := range []string{"PUT", "PATCH", "DELETE"} {
			if r := h.do(m, "/v1/releases/"+rel, h.admin, `{"version":"9.9.9"}`); r.status != 404 && r.status != 405 {
				t.Fatalf("%s release: got %d", m, r.status)
			}
		}
	})
	t.Run("same platform twice", func(t *testing.T) {
		r := h.do("POST", "/v1/releases/"+rel+"/artifacts", h.admin, map[string]any{"artifact_id": art, "platform": "linux", "arch": "x64", "installer_type": "tar.gz"})
		if r.status != 409 {
			t.Fatalf("got %d", r.status)
		}
	})
	rv := h.must(200, h.do("POST", "/v1/releases/"+rel+"/revoke", h.admin, nil))
	if rv["status"] != "REVOKED" || rv["revoked_at"] == nil {
		t.Fatalf("got %v", rv)
	}
	if r := h.do("POST", "/v1/releases/"+rel+"/revoke", h.admin, nil); r.status != 409 {
		t.Fatalf("second revoke: got %d, want 409", r.status)
	}
	if r := h.do("POST", "/v1/releases/"+rel+"/artifacts", h.admin, map[string]any{"artifact_id": art, "platform": "windows", "arch": "x64", "installer_type": "msi"}); r.status != 409 {
		t.Fatalf("attach to revoked: got %d, want 409", r.status)
	}
	events := h.must(200, h.do("GET", "/v1/audit-events?event_type=release.revoked", h.admin, nil))["items"].([]any)
	if len(events) != 1 {
		t.Fatalf("got %d release.revoked events, want 1", len(events))
	}
}

func TestAPI_Backup(t *testing.T) {
	h := newHarness(t)
	h.tenant("before-backup")
	r := h.do("GET", "/v1/admin/backup", h.admin, nil)
	if r.status != 200 || len(r.body) == 0 {
		t.Fatalf("got %d, %d bytes", r.status, len(r.body))
	}
	h.tenant("after-backup")
	path := filepath.Join(t.TempDir(), "copy.db")
	os.WriteFile(path, r.body, 0o600)
	db, err := bolt.Open(path, bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatalf("backup does not open: %v", err)
	}
	defer db.Close()
	items, _, err := db.Tenants(context.Background(), store.Page{Limit: 10})
	if err != nil || len(items) != 1 || items[0].Name != "before-backup" {
		t.Fatalf("backup holds %v, %v; want exactly the tenant made before it", items, err)
	}
	if tok := h.tenantToken(h.tenant("x")); h.do("GET", "/v1/admin/backup", tok, nil).status != 403 {
		t.Fatal("a tenant token may download the catalog")
	}
}
