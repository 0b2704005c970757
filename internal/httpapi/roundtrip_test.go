package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/httpapi"
)

// TestAPI_RoundTrip checks that every resource with PUT or PATCH takes
// back the body a GET gave, with one field changed; that a read-only field
// sent back unchanged is accepted and changed is refused naming it; and
// that an unknown field is still refused.
func TestAPI_RoundTrip(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("acme")
	prod := h.product("app", "open")
	rel, _ := h.release(prod, "stable", "1.0.0", []byte("bytes"))
	policy := h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/policies", h.admin, map[string]any{
		"product_id": prod, "channel": "stable", "action": "NOTIFY", "conditions": map[string]any{"platforms": []string{"linux"}}}))["policy_id"].(string)
	rollout := h.must(201, h.do("POST", "/v1/products/"+prod+"/rollouts", h.admin, map[string]any{
		"channel": "stable", "release_id": rel, "percentage": 10}))["rollout_id"].(string)
	ent := h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/entitlements", h.admin, map[string]any{
		"product_id": prod, "policy_json": map[string]any{"max_seats": 5}}))["entitlement_id"].(string)
	mirror, _, _ := h.mirror(tenant, "stable")

	cases := []struct {
		name     string
		method   string
		path     string
		field    string // a writable field to change
		value    any
		readOnly string // a read-only field to change
		other    any
	}{
		{"tenant", "PATCH", "/v1/tenants/" + tenant, "name", "Acme Corp", "tenant_id", "ten_other"},
		{"policy", "PUT", "/v1/policies/" + policy, "action", "DOWNLOAD", "channel", "beta"},
		{"rollout", "PATCH", "/v1/rollouts/" + rollout, "percentage", 50.0, "release_id", "rel_other"},
		{"entitlement", "PATCH", "/v1/entitlements/" + ent, "policy_json", map[string]any{"max_seats": 7.0}, "product_id", "prd_other"},
		{"mirror", "PATCH", "/v1/mirrors/" + mirror, "name", "north site", "vendor_url", "https://elsewhere.example"},
	}
	// Every PUT and PATCH route of the table has its case.
	for _, rt := range httpapi.Routes() {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		if method != "PUT" && method != "PATCH" {
			continue
		}
		covered := false
		for _, c := range cases {
			prefix, _, _ := strings.Cut(pattern, "{id}")
			covered = covered || (c.method == method && strings.HasPrefix(c.path, prefix) && strings.Count(c.path, "/") == strings.Count(pattern, "/"))
		}
		if !covered {
			t.Errorf("%s has no round-trip case", rt.Pattern)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := h.must(200, h.do("GET", c.path, h.admin, nil))
			t.Run("unchanged body is accepted", func(t *testing.T) {
				h.must(200, h.do(c.method, c.path, h.admin, body))
			})
			t.Run("one field changed", func(t *testing.T) {
				body := h.must(200, h.do("GET", c.path, h.admin, nil))
				body[c.field] = c.value
				got := h.must(200, h.do(c.method, c.path, h.admin, body))
				if g, w := jsonOf(got[c.field]), jsonOf(c.value); g != w {
					t.Fatalf("%s = %s, want %s", c.field, g, w)
				}
			})
			t.Run("read-only field changed", func(t *testing.T) {
				body := h.must(200, h.do("GET", c.path, h.admin, nil))
				body[c.readOnly] = c.other
				r := h.do(c.method, c.path, h.admin, body)
				e, _ := r.json(t)["error"].(map[string]any)
				if r.status != 400 || e["field"] != c.readOnly {
					t.Fatalf("got %d %s, want 400 naming %s", r.status, r.body, c.readOnly)
				}
				if after := h.must(200, h.do("GET", c.path, h.admin, nil)); jsonOf(after[c.readOnly]) == jsonOf(c.other) {
					t.Fatalf("%s changed", c.readOnly)
				}
			})
			t.Run("unknown field", func(t *testing.T) {
				body := h.must(200, h.do("GET", c.path, h.admin, nil))
				body["no_such_field"] = 1
				r := h.do(c.method, c.path, h.admin, body)
				e, _ := r.json(t)["error"].(map[string]any)
				if r.status != 400 || e["field"] != "no_such_field" {
					t.Fatalf("got %d %s, want 400 naming no_such_field", r.status, r.body)
				}
			})
		})
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
