package mirror_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/wire"
)

// Fixed ids so that failures are readable.
const (
	tenantA = "ten_00000000000000000000000001"
	entOne  = "ent_00000000000000000000000002" // automatic, 1 mirror seat
	entNone = "ent_00000000000000000000000004" // no seats for our mirror
	entBig  = "ent_00000000000000000000000006" // 1,000,000 mirror seats (benchmarks)
	mirror1 = "mir_00000000000000000000000001"
	mirror2 = "mir_00000000000000000000000002"
)

func testKey(seed byte) ed25519.PrivateKey {
	s := sha256.Sum256([]byte{seed})
	return ed25519.NewKeyFromSeed(s[:])
}

var (
	vendorKey  = testKey(1)
	mirror1Key = testKey(2)
)

func vendorKeys() map[string]ed25519.PublicKey {
	p := vendorKey.Public().(ed25519.PublicKey)
	return map[string]ed25519.PublicKey{license.KeyID(p): p}
}

// liveManifest is a manifest of tenantA, held by mirror1, current now.
func liveManifest(t testing.TB) *snapshot.Manifest {
	now := time.Now().UTC().Truncate(time.Second)
	ent := func(id string, p string) snapshot.Entitlement {
		return snapshot.Entitlement{EntitlementID: id, ProductID: "prd_00000000000000000000000001", Policy: json.RawMessage(p), StartsAt: now.Add(-time.Hour)}
	}
	return &snapshot.Manifest{
		Schema: 1, SnapshotID: "snp_00000000000000000000000001", TenantID: tenantA, Sequence: 1,
		CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour),
		Tenant: snapshot.Tenant{TenantID: tenantA, Name: "Acme", Status: catalog.TenantActive, Metadata: json.RawMessage(`{}`)},
		Entitlements: []snapshot.Entitlement{
			ent(entOne, `{"max_seats":1,"lease_ttl":"10m","mirror_seats":{"`+mirror1+`":1}}`),
			ent(entNone, `{"max_seats":3,"mirror_seats":{"`+mirror2+`":3}}`),
			ent(entBig, `{"max_seats":1000000,"mirror_seats":{"`+mirror1+`":1000000}}`),
		},
		MirrorKeys: []snapshot.MirrorKey{{MirrorID: mirror1, PublicKey: base64.StdEncoding.EncodeToString(mirror1Key.Public().(ed25519.PublicKey))}},
	}
}

func newTestServer(t testing.TB) (*httptest.Server, *atomic.Pointer[snapshot.Manifest]) {
	st, err := state.Open(filepath.Join(t.TempDir(), "mirror.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := st.Ledger(mirror1, mirror1Key, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[snapshot.Manifest]
	cur.Store(liveManifest(t))
	h := mirror.LeaseHandler(func() (*state.Ledger, error) { return l, nil }, cur.Load, time.Now, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, &cur
}

func do(t testing.TB, c *http.Client, method, u, body string, secret ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) > 0 && secret[0] != "" {
		req.Header.Set(wire.HeaderLeaseSecret, secret[0])
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
	srv, cur := newTestServer(t)
	c := srv.Client()
	var secret string // the holder secret of host 1's lease
	put := func(subject, body string) (int, []byte) {
		return do(t, c, http.MethodPut, srv.URL+"/v1/leases/"+url.PathEscape(subject), body, secret)
	}
	del := func(subject, eid string) (int, []byte) {
		return do(t, c, http.MethodDelete, srv.URL+"/v1/leases/"+url.PathEscape(subject)+"?entitlement_id="+eid, "", secret)
	}

	status, body := put("host 1", `{"entitlement_id":"`+entOne+`","subject_type":"machine"}`)
	if status != http.StatusOK {
		t.Fatalf("PUT: got %d %s, want 200", status, body)
	}
	var lr mirror.LeaseResponse
	if err := json.Unmarshal(body, &lr); err != nil {
		t.Fatal(err)
	}
	v, err := license.NewVerifierFromManifest(vendorKeys(), tenantA, cur.Load())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := license.Verify(lr.Token, v, time.Now())
	if err != nil {
		t.Fatalf("token from PUT does not verify: %v", err)
	}
	if claims.SubjectID != "host 1" || claims.LeaseID != lr.LeaseID || lr.MirrorID != mirror1 {
		t.Errorf("got claims %+v and response %+v", claims, lr)
	}
	if lr.HolderSecret == "" {
		t.Fatal("PUT returned no holder_secret")
	}
	// Anyone else who can reach the mirror: no secret, or a made-up one.
	for _, try := range []string{"", "olh_" + strings.Repeat("A", 43)} {
		hijack := func(method, u, body string) {
			t.Helper()
			if st, b := do(t, c, method, u, body, try); st != http.StatusForbidden {
				t.Fatalf("%s %s with secret %q: got %d %s, want 403", method, u, try, st, b)
			}
		}
		hijack(http.MethodPut, srv.URL+"/v1/leases/host%201", `{"entitlement_id":"`+entOne+`","subject_type":"machine"}`)
		hijack(http.MethodDelete, srv.URL+"/v1/leases/host%201?entitlement_id="+entOne, "")
	}
	secret = lr.HolderSecret

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
		{"wrong method", func() (int, []byte) { return do(t, c, http.MethodGet, srv.URL+"/v1/leases/x", "") }, 404, "not_found"},
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

// BenchmarkHandlerAcquire: the same over HTTP on loopback.
func BenchmarkHandlerAcquire(b *testing.B) {
	srv, _ := newTestServer(b)
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	body := []byte(`{"entitlement_id":"` + entBig + `","subject_type":"machine"}`)
	runClients(b, func(i int64) error {
		req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v1/leases/host-%d", srv.URL, i), bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// clients is the concurrency of the performance target.
const clients = 32

// runClients spreads b.N calls of fn over 32 goroutines and reports
// leases/s.
func runClients(b *testing.B, fn func(i int64) error) {
	b.Helper()
	var (
		next int64 = -1
		wg   gosync.WaitGroup
		once gosync.Once
	)
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(b.N) {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { b.Errorf("call %d: %v", i, err) })
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "leases/s")
}
