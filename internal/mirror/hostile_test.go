package mirror_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// TestHostileInput_Mirror sends every route of the mirror the hostile
// request classes of the control plane's suite (internal/controlplaned):
// every one must be a 4xx in the wire error shape (a 2xx, "ignored", fails
// the test), none may panic, the audit chain must not move and the mirror
// must stay ready. The counts are recorded in docs/SECURITY.md.
func TestHostileInput_Mirror(t *testing.T) {
	r := newRig(t)
	// The lease routes past the token check: the lease API over a real
	// ledger and a manifest that grants seats (the rig's tenant id is
	// not one a ledger takes).
	leaseSrv, _ := newTestServer(t)
	a := synctest.Art{ID: "art_00000000000000000000000001", Data: synctest.Random(1000)}
	r.sync(t, 1, []synctest.Art{a})
	const token, foreign = "client-token-of-the-site", "client-token-of-another-site"
	key := mirror1Key
	leases := mirror.NewLeases(r.st, mirror1, tenantA, func() (ed25519.PrivateKey, error) { return key, nil })
	srv, hs := r.server(t, mirror.Options{ServeExpired: true, ClientTokens: []string{token}, Leases: leases, Updates: realUpdates})
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	sha := synctest.SHA(a.Data)
	routes := []struct{ method, path string }{
		{"GET", "/v1/snapshot"},
		{"GET", "/v1/snapshots/snp_000001"},
		{"GET", "/v1/artifacts/" + a.ID},
		{"GET", "/v1/artifacts/" + a.ID + "/download"},
		{"GET", "/v1/artifacts/by-sha256/" + sha},
		{"GET", "/v1/status"},
		{"GET", "/v1/updates/check?product_id=prd_00000000000000000000000001&current_version=1.0.0&platform=linux&arch=x64"},
		{"PUT", "/v1/leases/alice"},
		{"DELETE", "/v1/leases/alice?entitlement_id=" + entOne},
	}
	type req struct {
		method, path, token string
		body                []byte
	}
	// base is where a request past the token check goes.
	base := func(path string) string {
		if strings.HasPrefix(path, "/v1/leases/") {
			return leaseSrv.URL
		}
		return hs.URL
	}
	withBody := func(body []byte) (out []req) {
		for _, rt := range routes {
			out = append(out, req{rt.method, rt.path, token, body})
		}
		return
	}
	classes := []struct {
		name string
		reqs []req
	}{
		{"no token", func() (out []req) {
			for _, rt := range routes {
				out = append(out, req{rt.method, rt.path, "", nil})
			}
			return
		}()},
		{"a foreign site's token", func() (out []req) {
			for _, rt := range routes {
				out = append(out, req{rt.method, rt.path, foreign, nil})
			}
			return
		}()},
		{"malformed JSON", withBody([]byte(`{"entitlement_id":`))},
		{"a 10 MiB body", withBody(append([]byte(`{"entitlement_id":"`), bytes.Repeat([]byte("x"), 10<<20)...))},
		{"deeply nested JSON", withBody([]byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)))},
		{"invalid UTF-8", withBody([]byte("{\"entitlement_id\":\"ent_\xff\xfe\",\"subject_type\":\"user\"}"))},
		{"overflowing and negative numbers", []req{
			{"GET", "/v1/snapshot?after=-1", token, nil},
			{"GET", "/v1/snapshot?after=99999999999999999999", token, nil},
			{"PUT", "/v1/leases/alice", token, []byte(`{"entitlement_id":1e400,"subject_type":"user"}`)},
			{"PUT", "/v1/leases/alice", token, []byte(`{"entitlement_id":-1,"subject_type":"user"}`)},
			{"PUT", "/v1/leases/alice", token, []byte(`{"entitlement_id":"` + entOne + `","subject_type":"user","seats":-1}`)},
		}},
		{"ids with path separators and NULs", func() (out []req) {
			for _, id := range []string{"..%2F..%2Fetc%2Fpasswd", "x%00y", "a%2Fb", "%2e%2e"} {
				out = append(out,
					req{"GET", "/v1/snapshots/" + id, token, nil},
					req{"GET", "/v1/artifacts/" + id, token, nil},
					req{"GET", "/v1/artifacts/" + id + "/download", token, nil},
					req{"GET", "/v1/artifacts/by-sha256/" + id, token, nil},
				)
			}
			// Subject ids are opaque names ("host/1" is one): a path
			// separator in one names no file. NULs and control
			// characters are refused.
			for _, id := range []string{"x%00y", "%00", "a%0Ab", "a%1Bb"} {
				out = append(out,
					req{"PUT", "/v1/leases/" + id, token, []byte(`{"entitlement_id":"` + entOne + `","subject_type":"user"}`)},
					req{"DELETE", "/v1/leases/" + id + "?entitlement_id=" + entOne, token, nil},
				)
			}
			return
		}()},
		{"duplicated query parameters", func() (out []req) {
			for _, rt := range routes {
				sep := "?"
				if strings.Contains(rt.path, "?") {
					sep = "&"
				}
				out = append(out, req{rt.method, rt.path + sep + "entitlement_id=ent_00000000000000000000000001&entitlement_id=ent_00000000000000000000000002&after=1&after=2", token, nil})
			}
			return
		}()},
	}
	type tally struct{ n, c4xx, ignored, c5xx, other int }
	var b strings.Builder
	fmt.Fprintf(&b, "hostile-input suite, mirror: %d routes\n| class | requests | 4xx | 2xx (ignored) | 5xx | other |\n| --- | --- | --- | --- | --- | --- |\n", len(routes))
	var total tally
	for _, c := range classes {
		var tl tally
		t.Run(c.name, func(t *testing.T) {
			before, err := r.st.AuditHead()
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range c.reqs {
				tl.n++
				u := hs.URL + q.path
				if q.token == token {
					u = base(q.path) + q.path
				}
				hr, _ := http.NewRequest(q.method, u, bytes.NewReader(q.body))
				if q.token != "" {
					hr.Header.Set("Authorization", "Bearer "+q.token)
				}
				resp, err := http.DefaultClient.Do(hr)
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
					t.Errorf("%s %s: %d %.200s", q.method, q.path, resp.StatusCode, body)
				case resp.StatusCode >= 400:
					tl.c4xx++
					var e struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
						t.Errorf("%s %s: %d answer is not the wire error shape: %.200s", q.method, q.path, resp.StatusCode, body)
					}
				case resp.StatusCode < 300:
					tl.ignored++
					t.Errorf("%s %s: %d, want a 4xx (nothing hostile may be ignored)", q.method, q.path, resp.StatusCode)
				default:
					tl.other++
					t.Errorf("%s %s: %d, want a 4xx: %.200s", q.method, q.path, resp.StatusCode, body)
				}
			}
			if after, _ := r.st.AuditHead(); after != before {
				t.Errorf("the mirror's audit chain moved: a hostile request changed something")
			}
			if resp, _ := get(t, hs.URL+"/readyz", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("mirror not ready after the class: %d", resp.StatusCode)
			}
		})
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", c.name, tl.n, tl.c4xx, tl.ignored, tl.c5xx, tl.other)
		total.n, total.c4xx, total.ignored, total.c5xx, total.other = total.n+tl.n, total.c4xx+tl.c4xx, total.ignored+tl.ignored, total.c5xx+tl.c5xx, total.other+tl.other
	}
	fmt.Fprintf(&b, "| **total** | %d | %d | %d | %d | %d |\n", total.n, total.c4xx, total.ignored, total.c5xx, total.other)
	t.Log("\n" + b.String())
	if out := os.Getenv("OUTPOST_HOSTILE_REPORT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
}
