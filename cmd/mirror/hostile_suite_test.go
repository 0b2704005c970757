package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/outpost/outpost/internal/mirror"
)

// mirrorRoute is one route of the real mirror that takes input: its
// method, a path with valid ids, and whose token it wants.
type mirrorRoute struct {
	method, path string
	admin        bool // the site page's admin token, not a client token
}

// shapeOK says whether a 4xx answer has the documented shape of its
// route: the wire error everywhere; a TUF repository path that names no
// file also answers a plain 404 (the layout TUF clients expect); the
// site page answers its HTML error page.
func shapeOK(path string, resp *http.Response, body []byte) bool {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" && e.Error.Message != "" {
		return true
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(path, "/tuf/"):
		return strings.HasPrefix(ct, "text/plain") && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed)
	case strings.HasPrefix(path, "/site/"):
		return strings.HasPrefix(ct, "text/html") && bytes.Contains(body, []byte("<html"))
	}
	return false
}

// itemsRefused says whether a 2xx answer of POST /v1/events stored
// nothing: the route refuses bad events one by one (docs/fleet.md, so one
// stale event cannot block a client's others), and a batch of only
// hostile events answers 200 with accepted 0 and a rejection for each.
func itemsRefused(path string, body []byte) bool {
	if !strings.HasPrefix(path, "/v1/events") {
		return false
	}
	var a struct {
		Accepted *int              `json:"accepted"`
		Rejected []json.RawMessage `json:"rejected"`
	}
	return json.Unmarshal(body, &a) == nil && a.Accepted != nil && *a.Accepted == 0 && len(a.Rejected) > 0
}

// TestHostileInput_MirrorDaemon sends every input-taking route of the real
// mirror binary (synced from a real control plane, leases delegated,
// client tokens, the site page's admin token) every class of hostile
// request of the control plane's suite, a revoked client token included:
// each must answer a 4xx in its route's documented shape (a 2xx fails,
// but for POST /v1/events refusing every event of a batch one by one, as
// documented, with nothing stored), never a 5xx, change nothing (the
// audit chain head, the held snapshot and the client events stay, read
// through the admin socket after every refused write and every class)
// and leave the daemon ready. The public routes (/healthz, /readyz,
// /metrics, the status page GET / and its /site/static/ assets) take no
// input and are not part of it. The counts are printed (go test -v -run
// TestHostileInput_MirrorDaemon ./cmd/mirror, or make hostile) and
// recorded in docs/SECURITY.md.
func TestHostileInput_MirrorDaemon(t *testing.T) {
	bin := buildOnce(t)
	cp := startControlPlane(t)
	lm := newLeasingMirror(t, bin, cp, 5, 3)
	const token, foreign, revoked, adminToken = "client-token-of-the-site", "client-token-of-another-site", "client-token-removed-from-the-config", "site-admin-token-0123456789"
	base, err := os.ReadFile(lm.config)
	if err != nil {
		t.Fatal(err)
	}
	configure := func(tokens ...string) {
		t.Helper()
		q, _ := json.Marshal(tokens)
		extra := fmt.Sprintf("client_tokens: %s\nadmin_token_hashes: [%q]\nrate_limit:\n  leases: {rate: 0}\n  events: {rate: 0}\n", q, mirror.HashAdminToken(adminToken))
		if err := os.WriteFile(lm.config, append(append([]byte(nil), base...), extra...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The revoked token works, then leaves the config: revocation.
	configure(token, revoked)
	d := startDaemon(t, bin, lm.config)
	waitReady(t, d.base)
	if st, b := call(t, "GET", d.base+"/v1/status", revoked, nil); st != http.StatusOK {
		t.Fatalf("GET /v1/status with the token before its revocation = %d %s", st, b)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
	configure(token)
	d = startDaemon(t, bin, lm.config)
	waitReady(t, d.base)

	// A lease for alice, so the lease routes act on an existing one.
	status, b := call(t, "PUT", d.base+"/v1/leases/alice", token, strings.NewReader(`{"entitlement_id":"`+lm.ent+`","subject_type":"machine"}`))
	if status != http.StatusOK {
		t.Fatalf("alice's lease = %d %s", status, b)
	}
	ent := lm.ent
	sha := strings.Repeat("ab", 32)
	routes := []mirrorRoute{
		{method: "GET", path: "/v1/snapshot"},
		{method: "GET", path: "/v1/snapshots/snp_00000000000000000000000001"},
		{method: "GET", path: "/v1/artifacts/art_00000000000000000000000001"},
		{method: "GET", path: "/v1/artifacts/art_00000000000000000000000001/download"},
		{method: "GET", path: "/v1/artifacts/by-sha256/" + sha},
		{method: "GET", path: "/v1/deltas/dlt_00000000000000000000000001/download"},
		{method: "GET", path: "/v1/status"},
		{method: "GET", path: "/v1/updates/check?product_id=prd_00000000000000000000000001&current_version=1.0.0&platform=linux&arch=x64"},
		{method: "GET", path: "/tuf/metadata/timestamp.json"},
		{method: "GET", path: "/tuf/targets/app/" + sha + ".app-1.0.0.zip"},
		{method: "POST", path: "/v1/events"},
		{method: "PUT", path: "/v1/leases/alice"},
		{method: "DELETE", path: "/v1/leases/alice?entitlement_id=" + ent},
		{method: "POST", path: "/site/import", admin: true},
		{method: "POST", path: "/site/import/commit", admin: true},
		{method: "POST", path: "/site/import/discard", admin: true},
	}
	type req struct {
		method, path, token, ctype string
		body                       []byte
	}
	tokenOf := func(rt mirrorRoute) string {
		if rt.admin {
			return adminToken
		}
		return token
	}
	every := func(tok func(mirrorRoute) string) (out []req) {
		for _, rt := range routes {
			out = append(out, req{method: rt.method, path: rt.path, token: tok(rt)})
		}
		return
	}
	withBody := func(body []byte) (out []req) {
		for _, rt := range routes {
			out = append(out, req{method: rt.method, path: rt.path, token: tokenOf(rt), ctype: "application/json", body: body})
		}
		return
	}
	// A multipart upload whose bundle part is body: the site page's form.
	multipart := func(body []byte) req {
		var b bytes.Buffer
		fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n%s\r\n--B\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"b.tar\"\r\n\r\n", adminToken)
		b.Write(body)
		b.WriteString("\r\n--B--\r\n")
		return req{method: "POST", path: "/site/import", ctype: "multipart/form-data; boundary=B", body: b.Bytes()}
	}
	nested := []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000))
	big := append([]byte(`{"entitlement_id":"`), bytes.Repeat([]byte("x"), 10<<20)...)
	classes := []struct {
		name string
		reqs []req
	}{
		{"no token", every(func(mirrorRoute) string { return "" })},
		{"a foreign site's token", every(func(mirrorRoute) string { return foreign })},
		{"a revoked token", every(func(mirrorRoute) string { return revoked })},
		{"malformed JSON", append(withBody([]byte(`{"entitlement_id":`)), multipart([]byte(`{"entitlement_id":`)))},
		{"a 10 MiB body", append(withBody(big), multipart(big))},
		{"deeply nested JSON", append(withBody(nested), multipart(nested))},
		{"invalid UTF-8", func() (out []req) {
			out = withBody([]byte("{\"entitlement_id\":\"ent_\xff\xfe\",\"subject_type\":\"user\",\"events\":[{\"type\":\"\xc3\x28\"}]}"))
			for _, rt := range routes {
				sep := "?"
				if strings.Contains(rt.path, "?") {
					sep = "&"
				}
				out = append(out, req{method: rt.method, path: rt.path + sep + "x=%ff%fe", token: tokenOf(rt)})
			}
			return
		}()},
		{"overflowing and negative numbers", func() (out []req) {
			for _, q := range []string{"after=-1", "after=99999999999999999999", "after=1e400"} {
				out = append(out, req{method: "GET", path: "/v1/snapshot?" + q, token: token})
			}
			for _, v := range []string{"-1", "99999999999999999999", "1e400"} {
				out = append(out,
					req{method: "PUT", path: "/v1/leases/alice", token: token, ctype: "application/json", body: []byte(`{"entitlement_id":` + v + `,"subject_type":"machine"}`)},
					req{method: "PUT", path: "/v1/leases/bob", token: token, ctype: "application/json", body: []byte(`{"entitlement_id":"` + ent + `","subject_type":"machine","ttl_seconds":` + v + `}`)},
					req{method: "POST", path: "/v1/events", token: token, ctype: "application/json", body: []byte(`{"events":[{"type":"install_failed","client_id":"c-7f3a9b21","release_id":"rel_00000000000000000000000001","to_version":"1.1.0","error_code":"E_DISK_FULL","duration_ms":` + v + `}]}`)},
					req{method: "GET", path: "/tuf/metadata/" + v + ".root.json", token: token},
				)
			}
			return
		}()},
		{"ids with path separators and NULs", func() (out []req) {
			for _, id := range []string{"..%2F..%2Fetc%2Fpasswd", "x%00y", "a%2Fb", "%2e%2e", "x%5C..%5Cy"} {
				out = append(out,
					req{method: "GET", path: "/v1/snapshots/" + id, token: token},
					req{method: "GET", path: "/v1/artifacts/" + id, token: token},
					req{method: "GET", path: "/v1/artifacts/" + id + "/download", token: token},
					req{method: "GET", path: "/v1/artifacts/by-sha256/" + id, token: token},
					req{method: "GET", path: "/v1/deltas/" + id + "/download", token: token},
					req{method: "GET", path: "/tuf/metadata/" + id, token: token},
					req{method: "GET", path: "/tuf/targets/" + id, token: token},
				)
			}
			// Lease subject ids are opaque names ("host/1" is one): a
			// path separator in one names no file. NULs and control
			// characters are refused.
			for _, id := range []string{"x%00y", "%00", "a%0Ab", "a%1Bb"} {
				out = append(out,
					req{method: "PUT", path: "/v1/leases/" + id, token: token, ctype: "application/json", body: []byte(`{"entitlement_id":"` + ent + `","subject_type":"machine"}`)},
					req{method: "DELETE", path: "/v1/leases/" + id + "?entitlement_id=" + ent, token: token},
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
				out = append(out, req{method: rt.method, path: rt.path + sep + "entitlement_id=" + ent + "&entitlement_id=ent_00000000000000000000000002&after=1&after=2", token: tokenOf(rt)})
			}
			return
		}()},
	}

	admin, ok := mirror.DialAdmin(context.Background(), filepath.Join(lm.dir, mirror.AdminSocketName))
	if !ok {
		t.Fatal("the mirror's admin socket does not answer")
	}
	type seen struct {
		head     string
		sequence int64
		events   uint64
	}
	observe := func() seen {
		t.Helper()
		h, err := admin.AuditHead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st, err := admin.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s := seen{head: h.Hash}
		if st.Snapshot != nil {
			s.sequence = st.Snapshot.Sequence
		}
		if st.Events != nil {
			s.events = st.Events.LastSeq
		}
		return s
	}
	type tally struct{ n, c4xx, itemsRefused, ignored, c5xx, other int }
	var out strings.Builder
	fmt.Fprintf(&out, "hostile-input suite, mirror daemon: %d routes\n| class | requests | 4xx | 200, every event refused | 2xx (ignored) | 5xx | other |\n| --- | --- | --- | --- | --- | --- | --- |\n", len(routes))
	var total tally
	hc := &http.Client{Transport: &http.Transport{}}
	for _, c := range classes {
		var tl tally
		t.Run(c.name, func(t *testing.T) {
			before := observe()
			for _, q := range c.reqs {
				tl.n++
				hr, err := http.NewRequest(q.method, d.base+q.path, bytes.NewReader(q.body))
				if err != nil {
					t.Fatalf("%s %s: %v", q.method, q.path, err)
				}
				if q.token != "" {
					hr.Header.Set("Authorization", "Bearer "+q.token)
				}
				if q.ctype != "" {
					hr.Header.Set("Content-Type", q.ctype)
				}
				resp, err := hc.Do(hr)
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
					if !shapeOK(q.path, resp, body) {
						t.Errorf("%s %s: %d answer is not the route's error shape (%s): %.200s", q.method, q.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
					}
				case resp.StatusCode < 300 && itemsRefused(q.path, body):
					tl.itemsRefused++
				case resp.StatusCode < 300:
					tl.ignored++
					t.Errorf("%s %s: %d, want a 4xx (nothing hostile may be ignored): %.200s", q.method, q.path, resp.StatusCode, body)
				default:
					tl.other++
					t.Errorf("%s %s: %d, want a 4xx: %.200s", q.method, q.path, resp.StatusCode, body)
				}
				if q.method != http.MethodGet && q.method != http.MethodHead {
					if now := observe(); now != before {
						t.Fatalf("%s %s: the refused write changed the mirror: %+v -> %+v (audit head, held sequence, client events)", q.method, q.path, before, now)
					}
				}
			}
			if after := observe(); after != before {
				t.Errorf("the mirror changed: %+v -> %+v (audit head, held sequence, client events)", before, after)
			}
			if st, _ := call(t, "GET", d.base+"/readyz", "", nil); st != http.StatusOK {
				t.Fatalf("mirror not ready after the class: %d", st)
			}
		})
		fmt.Fprintf(&out, "| %s | %d | %d | %d | %d | %d | %d |\n", c.name, tl.n, tl.c4xx, tl.itemsRefused, tl.ignored, tl.c5xx, tl.other)
		total.n, total.c4xx, total.itemsRefused, total.ignored, total.c5xx, total.other = total.n+tl.n, total.c4xx+tl.c4xx, total.itemsRefused+tl.itemsRefused, total.ignored+tl.ignored, total.c5xx+tl.c5xx, total.other+tl.other
	}
	fmt.Fprintf(&out, "| **total** | %d | %d | %d | %d | %d | %d |\n", total.n, total.c4xx, total.itemsRefused, total.ignored, total.c5xx, total.other)
	t.Log("\n" + out.String())
	if path := os.Getenv("OUTPOST_HOSTILE_REPORT_MIRROR"); path != "" {
		os.WriteFile(path, []byte(out.String()), 0o644)
	}
	// The honest client still gets its lease renewed.
	if st, b := call(t, "PUT", d.base+"/v1/leases/carol", token, strings.NewReader(`{"entitlement_id":"`+ent+`","subject_type":"machine"}`)); st != http.StatusOK {
		t.Errorf("an honest lease after the suite = %d %s", st, b)
	}
}
