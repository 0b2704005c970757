package license

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

// liveManifest is testManifest moved to the real clock: the handler uses
// time.Now.
func liveManifest(t testing.TB) *snapshot.Manifest {
	m := testManifest(t)
	shift := time.Since(t0).Truncate(time.Second)
	m.CreatedAt = m.CreatedAt.Add(shift)
	m.ExpiresAt = m.ExpiresAt.Add(shift)
	for i := range m.Entitlements {
		e := &m.Entitlements[i]
		e.StartsAt = e.StartsAt.Add(shift)
		if e.EndsAt != nil {
			end := e.EndsAt.Add(shift)
			e.EndsAt = &end
		}
	}
	return m
}

func newTestServer(t testing.TB) (*httptest.Server, *atomic.Pointer[snapshot.Manifest], *Ledger) {
	l, _, _ := newTestLedger(t)
	var cur atomic.Pointer[snapshot.Manifest]
	cur.Store(liveManifest(t))
	srv := httptest.NewServer(Handler(l, cur.Load))
	t.Cleanup(srv.Close)
	return srv, &cur, l
}

func do(t testing.TB, c *http.Client, method, u, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestHandler_Leases(t *testing.T) {
	srv, cur, _ := newTestServer(t)
	c := srv.Client()
	put := func(subject, body string) (int, []byte) {
		return do(t, c, http.MethodPut, srv.URL+"/v1/leases/"+url.PathEscape(subject), body)
	}
	del := func(subject, eid string) (int, []byte) {
		return do(t, c, http.MethodDelete, srv.URL+"/v1/leases/"+url.PathEscape(subject)+"?entitlement_id="+eid, "")
	}

	status, body := put("host 1", `{"entitlement_id":"`+entOne+`","subject_type":"machine"}`)
	if status != http.StatusOK {
		t.Fatalf("PUT: got %d %s, want 200", status, body)
	}
	var lr LeaseResponse
	if err := json.Unmarshal(body, &lr); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifierFromManifest(vendorKeys(), tenantA, cur.Load())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := Verify(lr.Token, v, time.Now())
	if err != nil {
		t.Fatalf("token from PUT does not verify: %v", err)
	}
	if claims.SubjectID != "host 1" || claims.LeaseID != lr.LeaseID || lr.MirrorID != mirror1 {
		t.Errorf("got claims %+v and response %+v", claims, lr)
	}

	cases := []struct {
		name       string
		do         func() (int, []byte)
		wantStatus int
		wantCode   string
	}{
		{"renew", func() (int, []byte) { return put("host 1", `{"entitlement_id":"`+entOne+`","subject_type":"machine"}`) }, 200, ""},
		{"seat taken", func() (int, []byte) { return put("host-2", `{"entitlement_id":"`+entOne+`","subject_type":"machine"}`) }, 409, "conflict"},
		{"unknown entitlement", func() (int, []byte) {
			return put("h", `{"entitlement_id":"ent_0000000000000000000000000z","subject_type":"user"}`)
		}, 404, "not_found"},
		{"malformed body", func() (int, []byte) { return put("h", `{"entitlement_id":`) }, 400, "invalid"},
		{"unknown field", func() (int, []byte) { return put("h", `{"entitlement_id":"`+entOne+`","seats":9}`) }, 400, "invalid"},
		{"missing entitlement", func() (int, []byte) { return put("h", `{"subject_type":"user"}`) }, 400, "invalid"},
		{"bad subject type", func() (int, []byte) { return put("h", `{"entitlement_id":"`+entOne+`","subject_type":"cat"}`) }, 400, "invalid"},
		{"huge body", func() (int, []byte) { return put("h", `{"entitlement_id":"`+strings.Repeat("a", 1<<20)+`"}`) }, 413, "too_large"},
		{"no seats for mirror", func() (int, []byte) { return put("h", `{"entitlement_id":"`+entNone+`","subject_type":"user"}`) }, 403, "forbidden"},
		{"delete without entitlement", func() (int, []byte) { return del("host 1", "") }, 400, "invalid"},
		{"delete", func() (int, []byte) { return del("host 1", entOne) }, 204, ""},
		{"delete again", func() (int, []byte) { return del("host 1", entOne) }, 404, "not_found"},
		{"seat free again", func() (int, []byte) { return put("host-2", `{"entitlement_id":"`+entOne+`","subject_type":"machine"}`) }, 200, ""},
		{"wrong method", func() (int, []byte) { return do(t, c, http.MethodGet, srv.URL+"/v1/leases/x", "") }, 405, ""},
		{"no snapshot", func() (int, []byte) {
			cur.Store(nil)
			return put("h", `{"entitlement_id":"`+entOne+`","subject_type":"user"}`)
		}, 503, "unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tc.do()
			if status != tc.wantStatus {
				t.Fatalf("status: got %d %s, want %d", status, body, tc.wantStatus)
			}
			if tc.wantCode == "" {
				return
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tc.wantCode || e.Error.Message == "" {
				t.Errorf("error body: got %s, want code %s and a message", body, tc.wantCode)
			}
		})
	}
}
