package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReview_IdempotentSecretsNotStoredInClear mounts a leak: a POST that
// answers with a secret (API token, mirror credential, lease token) and
// carries an Idempotency-Key had its whole answer kept in the bbolt file in
// clear, so the secret sat beside its hash. A replay must still give the
// same secret.
func TestReview_IdempotentSecretsNotStoredInClear(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("acme")
	tok := h.tenantToken(tenant)
	prod := h.product("p", "")
	ent := h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/entitlements", h.admin, map[string]any{
		"product_id": prod, "policy_json": map[string]any{"max_seats": 2}}))["entitlement_id"].(string)

	cases := []struct {
		name, path, token, body, field string
	}{
		{"api token", "/v1/tokens", h.admin, `{"role":"tenant","tenant_id":"` + tenant + `"}`, "token"},
		{"mirror credential", "/v1/tenants/" + tenant + "/mirrors", h.admin, `{"allowed_channels":["stable"]}`, "credential"},
		{"lease token", "/v1/entitlements/" + ent + "/leases", tok, `{"subject_type":"user","subject_id":"alice"}`, "token"},
	}
	secrets := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{"Idempotency-Key": "idem-" + c.field + c.name}
			first := h.raw("POST", c.path, c.token, "application/json", strings.NewReader(c.body), hdr)
			got := h.must(201, first)
			secret, _ := got[c.field].(string)
			if secret == "" {
				t.Fatalf("answer has no %s: %s", c.field, first.body)
			}
			second := h.raw("POST", c.path, c.token, "application/json", strings.NewReader(c.body), hdr)
			if second.status != 201 || second.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay: got %d replayed=%q, want 201 replayed=true", second.status, second.header.Get("Idempotent-Replayed"))
			}
			if !bytes.Equal(first.body, second.body) {
				t.Fatalf("replay answered differently:\n got %s\nwant %s", second.body, first.body)
			}
			secrets[c.name] = secret
		})
	}
	h.db.Close()
	raw, err := os.ReadFile(filepath.Join(h.dir, "cp.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range secrets {
		if containsSecret(raw, secret) {
			t.Errorf("%s %q is stored in the database in clear", name, secret)
		}
	}
}

// TestReview_InactiveTenantCredentials mounts a tenant the vendor suspended
// or deleted whose tenant token and mirror credential kept working: update
// checks, downloads, leases and mirror syncs went on as before.
func TestReview_InactiveTenantCredentials(t *testing.T) {
	for _, status := range []string{"suspended", "deleted"} {
		t.Run(status, func(t *testing.T) {
			h := newHarness(t)
			tenant := h.tenant("acme")
			tok := h.tenantToken(tenant)
			prod := h.product("p", "")
			_, art := h.release(prod, "stable", "1.0.0", []byte("one"))
			ent := h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/entitlements", h.admin, map[string]any{
				"product_id": prod, "policy_json": map[string]any{"max_seats": 2}}))["entitlement_id"].(string)
			_, cred, _ := h.mirror(tenant, "stable")
			h.snapshot(tenant)

			calls := []struct {
				name, method, path, token, body string
			}{
				{"update check", "GET", "/v1/updates/check?product=" + prod + "&channel=stable&platform=linux&arch=x64&version=0.1.0", tok, ""},
				{"download", "GET", "/v1/artifacts/" + art + "/download", tok, ""},
				{"lease", "POST", "/v1/entitlements/" + ent + "/leases", tok, `{"subject_type":"user","subject_id":"u1"}`},
				{"read own tenant", "GET", "/v1/tenants/" + tenant, tok, ""},
				{"mirror self", "GET", "/v1/mirror/self", cred, ""},
				{"mirror snapshot", "GET", "/v1/mirror/snapshot", cred, ""},
				{"mirror artifact", "GET", "/v1/mirror/artifacts/" + art, cred, ""},
			}
			// Everything works while the tenant is active; the lease
			// is released again so the call can be repeated.
			for _, c := range calls {
				r := h.raw(c.method, c.path, c.token, "application/json", strings.NewReader(c.body), nil)
				if r.status >= 300 {
					t.Fatalf("%s while active: got %d: %s", c.name, r.status, r.body)
				}
			}
			h.must(200, h.do("PATCH", "/v1/tenants/"+tenant, h.admin, map[string]any{"status": status}))
			for _, c := range calls {
				t.Run(c.name, func(t *testing.T) {
					r := h.raw(c.method, c.path, c.token, "application/json", strings.NewReader(c.body), nil)
					if got := r.status; got != 401 && got != 403 {
						t.Fatalf("got %d, want 401 or 403: %s", got, r.body)
					}
				})
			}
			// The admin still sees the tenant.
			h.must(200, h.do("GET", "/v1/tenants/"+tenant, h.admin, nil))
		})
	}
}

// containsSecret reports whether raw holds secret in clear or base64 at
// any alignment (bbolt records keep []byte fields as base64 JSON).
func containsSecret(raw []byte, secret string) bool {
	if bytes.Contains(raw, []byte(secret)) {
		return true
	}
	for off := 0; off < 3; off++ {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, off), secret...))
		core := enc[(off*4+2)/3 : len(enc)-4]
		if bytes.Contains(raw, []byte(core)) {
			return true
		}
	}
	return false
}

// TestReview_MirrorSyncErrorKeepsLeaseKey mounts a mirror that reported a
// failed sync (status "error"): the next snapshot dropped its key from
// mirror_keys, so every lease it had signed stopped verifying at its
// clients, although only an admin's deactivation should revoke it.
func TestReview_MirrorSyncErrorKeepsLeaseKey(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("acme")
	mirrorID, cred, _ := h.mirror(tenant, "stable")
	keys := func() []string {
		t.Helper()
		snapID := h.snapshot(tenant)["snapshot_id"].(string)
		env := h.must(200, h.do("GET", "/v1/snapshots/"+snapID, h.admin, nil))
		payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			MirrorKeys []struct {
				MirrorID string `json:"mirror_id"`
			} `json:"mirror_keys"`
		}
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range m.MirrorKeys {
			out = append(out, k.MirrorID)
		}
		return out
	}
	if got := keys(); len(got) != 1 || got[0] != mirrorID {
		t.Fatalf("mirror_keys while active: got %v, want [%s]", got, mirrorID)
	}
	h.must(200, h.do("POST", "/v1/mirror/status", cred, map[string]any{"status": "error", "error": "upstream unreachable"}))
	if got := keys(); len(got) != 1 || got[0] != mirrorID {
		t.Fatalf("mirror_keys after a sync error: got %v, want [%s]", got, mirrorID)
	}
	h.must(200, h.do("DELETE", "/v1/mirrors/"+mirrorID, h.admin, nil))
	if got := keys(); len(got) != 0 {
		t.Fatalf("mirror_keys after deactivation: got %v, want none", got)
	}
}

// TestReview_IdempotencyScopedToToken guards that one principal's key
// never replays another's answer.
func TestReview_IdempotencyScopedToToken(t *testing.T) {
	h := newHarness(t)
	other := h.must(201, h.do("POST", "/v1/tokens", h.admin, map[string]any{"role": "admin"}))["token"].(string)
	hdr := map[string]string{"Idempotency-Key": "shared"}
	a := h.must(201, h.raw("POST", "/v1/tenants", h.admin, "application/json", strings.NewReader(`{"name":"x"}`), hdr))
	b := h.raw("POST", "/v1/tenants", other, "application/json", strings.NewReader(`{"name":"x"}`), hdr)
	if b.status != 201 || b.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("other token, same key: got %d replayed=%q, want a fresh 201", b.status, b.header.Get("Idempotent-Replayed"))
	}
	if got := b.json(t)["tenant_id"]; got == a["tenant_id"] {
		t.Fatalf("other token got the first token's tenant %v", got)
	}
}
