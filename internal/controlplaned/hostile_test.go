package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/store"
)

// hostileFixture is one tenant's objects of every kind, on a serving
// control plane, and the tokens the suite sends.
type hostileFixture struct {
	cp                        *instance
	admin, tenantA, foreign   string
	revoked, mirror           string
	tenantID, foreignTenantID string
	ids                       map[string]string // path segment before {id} -> id
	bid, seat                 string
}

func newHostileFixture(t *testing.T) *hostileFixture {
	t.Helper()
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{LeaseRate: -1})
	ctx := context.Background()
	a := cp.as(cp.admin)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tn, err := a.CreateTenant(ctx, controlplane.TenantInput{Name: "acme"})
	must(err)
	other, err := a.CreateTenant(ctx, controlplane.TenantInput{Name: "other"})
	must(err)
	p, err := a.CreateProduct(ctx, controlplane.ProductInput{Name: "widget"})
	must(err)
	data := []byte("artifact bytes")
	art, err := a.UploadArtifact(ctx, bytes.NewReader(data), controlplane.UploadInput{SizeBytes: -1, Length: int64(len(data))})
	must(err)
	rel, err := a.CreateRelease(ctx, p.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: "1.0.0"})
	must(err)
	_, err = a.AttachArtifact(ctx, rel.ReleaseID, controlplane.AttachInput{ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "zip"})
	must(err)
	ent, err := a.CreateEntitlement(ctx, tn.TenantID, controlplane.EntitlementInput{ProductID: p.ProductID, Policy: []byte(`{"max_seats":5,"seat_assignment_mode":"explicit"}`)})
	must(err)
	seat, err := a.AssignSeat(ctx, ent.EntitlementID, controlplane.Subject{SubjectType: catalog.SubjectUser, SubjectID: "alice"})
	must(err)
	pol, err := a.CreatePolicy(ctx, tn.TenantID, controlplane.PolicyInput{ProductID: p.ProductID, Channel: "stable", Action: "NOTIFY"})
	must(err)
	bv, err := a.CreateBlockedVersion(ctx, tn.TenantID, controlplane.BlockedInput{ProductID: p.ProductID, BlockedVersion: "0.9.0"})
	must(err)
	pct := 50.0
	ro, err := a.CreateRollout(ctx, p.ProductID, controlplane.RolloutInput{Channel: "stable", ReleaseID: rel.ReleaseID, Percentage: &pct})
	must(err)
	pub, _, _ := ed25519.GenerateKey(nil)
	mir, err := a.CreateMirror(ctx, tn.TenantID, controlplane.MirrorInput{Name: "site", AllowedChannels: []string{"stable"}, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	must(err)
	snap, err := a.BuildSnapshot(ctx, tn.TenantID)
	must(err)
	tok := func(tenant string) *controlplane.TokenCreated {
		tc, err := a.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleTenant, TenantID: tenant})
		must(err)
		return tc
	}
	ta, tb, tr := tok(tn.TenantID), tok(other.TenantID), tok(tn.TenantID)
	_, err = a.RevokeToken(ctx, tr.TokenID)
	must(err)
	lease, err := cp.as(ta.Secret).AcquireLease(ctx, ent.EntitlementID, controlplane.Subject{SubjectType: catalog.SubjectUser, SubjectID: "alice"})
	must(err)
	return &hostileFixture{
		cp: cp, admin: cp.admin, tenantA: ta.Secret, foreign: tb.Secret, revoked: tr.Secret, mirror: mir.Credential,
		tenantID: tn.TenantID, foreignTenantID: other.TenantID,
		ids: map[string]string{
			"tenants": tn.TenantID, "products": p.ProductID, "artifacts": art.ArtifactID, "releases": rel.ReleaseID,
			"snapshots": snap.SnapshotID, "mirrors": mir.MirrorID, "policies": pol.PolicyID, "rollouts": ro.RolloutID,
			"entitlements": ent.EntitlementID, "leases": lease.LeaseID, "tokens": ta.TokenID,
		},
		bid: bv.BlocklistID, seat: seat.SeatAssignmentID,
	}
}

// path fills a route pattern's {id}, {bid} and {seat} with the fixture's
// objects, or with id for every one when id is not "".
func (f *hostileFixture) path(pattern, id string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	segs := strings.Split(path, "/")
	for i, s := range segs {
		var v string
		switch s {
		case "{id}":
			v = f.ids[segs[i-1]]
		case "{bid}":
			v = f.bid
		case "{seat}":
			v = f.seat
		default:
			continue
		}
		if id != "" {
			v = id
		}
		segs[i] = v
	}
	return method, strings.Join(segs, "/")
}

// hostileRequest is one request of the suite.
type hostileRequest struct {
	route, method, path, token, ctype string
	body                              []byte
	// ownScope: a 2xx is right (the token's own tenant, nothing of
	// tenant A's named); the answer must not mention tenant A.
	ownScope bool
}

type tally struct{ n, ok2xx, c4xx, c5xx, other int }

// TestHostileInput sends every route of the control plane's table every
// class of hostile request on a serving daemon: each must answer a 4xx in
// the wire error shape (a 2xx only where the token reads its own
// tenant's objects), change nothing (the audit chain head stays, checked
// after every refused write and after every class) and leave the daemon
// ready. The counts are printed (go test -v -run
// TestHostileInput ./internal/controlplaned) and recorded in
// docs/SECURITY.md.
func TestHostileInput(t *testing.T) {
	f := newHostileFixture(t)
	routes := httpapi.Routes()
	nested := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	big := append([]byte(`{"name":"`), bytes.Repeat([]byte("x"), 10<<20)...)
	big = append(big, `"}`...)
	tokenFor := func(access string) string {
		if access == "mirror" {
			return f.mirror
		}
		return f.admin
	}
	bodyReq := func(rt httpapi.RouteInfo, body []byte) hostileRequest {
		m, p := f.path(rt.Pattern, "")
		return hostileRequest{route: rt.Pattern, method: m, path: p, token: tokenFor(rt.Access), ctype: "application/json", body: body}
	}
	classes := []struct {
		name string
		reqs func() []hostileRequest
	}{
		{"no token", func() (out []hostileRequest) {
			for _, rt := range routes {
				m, p := f.path(rt.Pattern, "")
				out = append(out, hostileRequest{route: rt.Pattern, method: m, path: p})
			}
			return
		}},
		{"a foreign tenant's token", func() (out []hostileRequest) {
			for _, rt := range routes {
				m, p := f.path(rt.Pattern, "")
				out = append(out, hostileRequest{route: rt.Pattern, method: m, path: p, token: f.foreign, ownScope: m == "GET" && !strings.Contains(rt.Pattern, "{")})
			}
			return
		}},
		{"a revoked token", func() (out []hostileRequest) {
			for _, rt := range routes {
				m, p := f.path(rt.Pattern, "")
				out = append(out, hostileRequest{route: rt.Pattern, method: m, path: p, token: f.revoked})
			}
			return
		}},
		{"malformed JSON", func() (out []hostileRequest) {
			for _, rt := range routes {
				out = append(out, bodyReq(rt, []byte(`{"name":`)))
			}
			return
		}},
		{"a 10 MiB body", func() (out []hostileRequest) {
			for _, rt := range routes {
				out = append(out, bodyReq(rt, big))
			}
			return
		}},
		{"deeply nested JSON", func() (out []hostileRequest) {
			for _, rt := range routes {
				out = append(out, bodyReq(rt, []byte(nested)))
			}
			return
		}},
		{"invalid UTF-8", func() (out []hostileRequest) {
			for _, rt := range routes {
				out = append(out, bodyReq(rt, []byte("{\"name\":\"\xff\xfe\xfd\",\"channel\":\"\xc3\x28\"}")))
				m, p := f.path(rt.Pattern, "")
				out = append(out, hostileRequest{route: rt.Pattern, method: m, path: p + "?tenant_id=%ff%fe", token: tokenFor(rt.Access)})
			}
			return
		}},
		{"overflowing and negative numbers", func() (out []hostileRequest) {
			for _, rt := range routes {
				if rt.Paged {
					for _, q := range []string{"limit=-1", "limit=99999999999999999999", "limit=0"} {
						m, p := f.path(rt.Pattern, "")
						out = append(out, hostileRequest{route: rt.Pattern, method: m, path: p + "?" + q, token: tokenFor(rt.Access)})
					}
				}
			}
			ent, ro := f.ids["entitlements"], f.ids["rollouts"]
			targeted := []struct{ method, path, token, body string }{
				{"GET", "/v1/mirror/snapshot?after=-1", f.mirror, ""},
				{"GET", "/v1/mirror/snapshot?after=99999999999999999999", f.mirror, ""},
				{"POST", "/v1/tokens", f.admin, `{"role":"admin","ttl_seconds":-1}`},
				{"POST", "/v1/tokens", f.admin, `{"role":"admin","ttl_seconds":1e30}`},
				{"POST", "/v1/tenants/" + f.tenantID + "/entitlements", f.admin, `{"product_id":"` + f.ids["products"] + `","policy_json":{"max_seats":-1}}`},
				{"POST", "/v1/tenants/" + f.tenantID + "/entitlements", f.admin, `{"product_id":"` + f.ids["products"] + `","policy_json":{"max_seats":1e400}}`},
				{"POST", "/v1/tenants/" + f.tenantID + "/entitlements", f.admin, `{"product_id":"` + f.ids["products"] + `","policy_json":{"max_seats":9223372036854775807,"mirror_seats":{"mir_00000000000000000000000001":9223372036854775807,"mir_00000000000000000000000002":9223372036854775807}}}`},
				{"PATCH", "/v1/entitlements/" + ent, f.admin, `{"policy_json":{"max_seats":-3}}`},
				{"PATCH", "/v1/rollouts/" + ro, f.admin, `{"percentage":-1}`},
				{"PATCH", "/v1/rollouts/" + ro, f.admin, `{"percentage":1e400}`},
				{"POST", "/v1/artifacts", f.admin, `{"external_url":"https://example.com/a","sha256":"` + strings.Repeat("a", 64) + `","size_bytes":-1}`},
				{"POST", "/v1/artifacts", f.admin, `{"external_url":"https://example.com/a","sha256":"` + strings.Repeat("a", 64) + `","size_bytes":99999999999999999999}`},
				{"POST", "/v1/artifacts?size_bytes=-5", f.admin, ""},
				{"POST", "/v1/tenants/" + f.tenantID + "/policies", f.admin, `{"product_id":"` + f.ids["products"] + `","channel":"stable","action":"NOTIFY","priority":99999999999999999999}`},
			}
			for _, x := range targeted {
				ct := "application/json"
				if x.body == "" && x.method == "POST" {
					ct = "application/octet-stream"
				}
				out = append(out, hostileRequest{route: x.method + " " + x.path, method: x.method, path: x.path, token: x.token, ctype: ct, body: []byte(x.body)})
			}
			return
		}},
		{"ids with path separators and NULs", func() (out []hostileRequest) {
			for _, rt := range routes {
				if !strings.Contains(rt.Pattern, "{") {
					continue
				}
				for _, id := range []string{"..%2F..%2Fetc%2Fpasswd", "ten_%00x", "a%2Fb", "%2e%2e", "x%5C..%5Cy"} {
					m, p := f.path(rt.Pattern, id)
					out = append(out, hostileRequest{route: rt.Pattern, method: m, path: p, token: tokenFor(rt.Access)})
				}
			}
			return
		}},
		{"duplicated query parameters", func() (out []hostileRequest) {
			for _, rt := range routes {
				m, p := f.path(rt.Pattern, "")
				out = append(out, hostileRequest{route: rt.Pattern, method: m, path: p + "?limit=1&limit=2&tenant_id=" + f.tenantID + "&tenant_id=" + f.foreignTenantID, token: tokenFor(rt.Access)})
			}
			return
		}},
	}

	ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	headSeq := func() int64 {
		var last int64
		cur := ""
		for {
			evs, next, err := f.cp.app.AuditEvents(ctx, store.AuditFilter{}, store.Page{Limit: store.MaxLimit, Cursor: cur})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) > 0 {
				last = evs[len(evs)-1].Seq
			}
			if next == "" {
				return last
			}
			cur = next
		}
	}
	hc := httpClient()
	counts := map[string]*tally{}
	var order []string
	for _, c := range classes {
		tl := &tally{}
		counts[c.name] = tl
		order = append(order, c.name)
		t.Run(c.name, func(t *testing.T) {
			before := headSeq()
			for _, q := range c.reqs() {
				tl.n++
				req, err := http.NewRequest(q.method, f.cp.base+q.path, bytes.NewReader(q.body))
				if err != nil {
					t.Fatalf("%s: %v", q.route, err)
				}
				if q.token != "" {
					req.Header.Set("Authorization", "Bearer "+q.token)
				}
				if q.ctype != "" {
					req.Header.Set("Content-Type", q.ctype)
				}
				resp, err := hc.Do(req)
				if err != nil {
					tl.other++
					t.Errorf("%s %s: %v", q.method, q.path, err)
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				switch {
				case resp.StatusCode >= 500:
					tl.c5xx++
					t.Errorf("%s %s (%s): %d %s", q.method, q.path, q.route, resp.StatusCode, body)
				case resp.StatusCode >= 400:
					tl.c4xx++
					var e struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					if json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
						t.Errorf("%s %s: %d answer is not the wire error shape: %.200s", q.method, q.path, resp.StatusCode, body)
					}
				case resp.StatusCode >= 200 && resp.StatusCode < 300 && q.ownScope:
					tl.ok2xx++
					if bytes.Contains(body, []byte(f.tenantID)) {
						t.Errorf("%s %s with a foreign token shows tenant %s: %.300s", q.method, q.path, f.tenantID, body)
					}
				default:
					tl.other++
					t.Errorf("%s %s (%s): %d, want a 4xx: %.300s", q.method, q.path, q.route, resp.StatusCode, body)
				}
				if q.method != http.MethodGet && q.method != http.MethodHead {
					if now := headSeq(); now != before {
						t.Fatalf("%s %s (%s): the refused write moved the audit chain from seq %d to %d", q.method, q.path, q.route, before, now)
					}
				}
			}
			if after := headSeq(); after != before {
				t.Errorf("the audit chain moved from seq %d to %d: a hostile request changed something", before, after)
			}
			resp, err := hc.Get(f.cp.base + "/readyz")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("daemon not ready after the class: %v %v", resp, err)
			}
			resp.Body.Close()
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hostile-input suite, control plane: %d routes\n", len(routes))
	fmt.Fprintf(&b, "| class | requests | 2xx (own scope) | 4xx | 5xx | other |\n| --- | --- | --- | --- | --- | --- |\n")
	total := tally{}
	for _, name := range order {
		c := counts[name]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", name, c.n, c.ok2xx, c.c4xx, c.c5xx, c.other)
		total.n, total.ok2xx, total.c4xx, total.c5xx, total.other = total.n+c.n, total.ok2xx+c.ok2xx, total.c4xx+c.c4xx, total.c5xx+c.c5xx, total.other+c.other
	}
	fmt.Fprintf(&b, "| **total** | %d | %d | %d | %d | %d |\n", total.n, total.ok2xx, total.c4xx, total.c5xx, total.other)
	t.Log("\n" + b.String())
	if out := os.Getenv("OUTPOST_HOSTILE_REPORT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}
