package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// claims returns valid claims for the vendor's entitlement.
func (v *vendor) claims(subject string, issuer string) license.Claims {
	now := time.Now().Unix()
	return license.Claims{
		LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: v.entID, TenantID: v.tenantID,
		ProductID: v.m.Products[0].ProductID, SubjectType: "machine", SubjectID: subject,
		Features: []string{"pro"}, IssuedAt: now - 60, ExpiresAt: now + 3600, Issuer: issuer,
	}
}

func (v *vendor) issue(t testing.TB, c license.Claims, key ed25519.PrivateKey) string {
	t.Helper()
	tok, err := license.Issue(c, key)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return tok
}

// leaseServer serves the lease API of a mirror or of the control plane.
type leaseServer struct {
	mu       sync.Mutex
	leases   map[string]string // key -> lease id
	released []string
	calls    []string
	srv      *httptest.Server
}

func newLeaseServer(t *testing.T, v *vendor, mirror bool) *leaseServer {
	ls := &leaseServer{leases: map[string]string{}}
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, c license.Claims, key ed25519.PrivateKey) {
		tok := v.issue(t, c, key)
		writeJSONT(w, status, map[string]any{
			"lease_id": c.LeaseID, "token": tok, "entitlement_id": c.EntitlementID,
			"subject_type": c.SubjectType, "subject_id": c.SubjectID,
			"issued_at": time.Unix(c.IssuedAt, 0).UTC(), "expires_at": time.Unix(c.ExpiresAt, 0).UTC(),
		})
	}
	notFound := func(w http.ResponseWriter) {
		writeJSONT(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "lease not found"}})
	}
	if mirror {
		mux.HandleFunc("PUT /v1/leases/{subject}", func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				EntitlementID string `json:"entitlement_id"`
				SubjectType   string `json:"subject_type"`
			}
			json.NewDecoder(r.Body).Decode(&body)
			c := v.claims(r.PathValue("subject"), "mirror:"+v.mirrorID)
			c.EntitlementID, c.SubjectType = body.EntitlementID, body.SubjectType
			ls.record("PUT "+r.URL.EscapedPath(), c.EntitlementID+"/"+c.SubjectID, c.LeaseID)
			answer(w, 200, c, v.mirrorKey)
		})
		mux.HandleFunc("DELETE /v1/leases/{subject}", func(w http.ResponseWriter, r *http.Request) {
			if !ls.release("DELETE "+r.URL.RequestURI(), r.URL.Query().Get("entitlement_id")+"/"+r.PathValue("subject")) {
				notFound(w)
				return
			}
			w.WriteHeader(204)
		})
		mux.Handle("GET /tuf/", tufhttp.New(v.tv.Repo, tufhttp.Options{Prefix: "/tuf/"}))
		// What server-kind detection asks (only a mirror has it).
		mux.HandleFunc("GET /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {})
	} else {
		mux.HandleFunc("POST /v1/entitlements/{id}/leases", func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				SubjectType string `json:"subject_type"`
				SubjectID   string `json:"subject_id"`
			}
			json.NewDecoder(r.Body).Decode(&body)
			c := v.claims(body.SubjectID, license.IssuerVendor)
			c.EntitlementID, c.SubjectType = r.PathValue("id"), body.SubjectType
			ls.record("POST "+r.URL.Path, c.LeaseID, c.LeaseID)
			answer(w, 201, c, v.key)
		})
		mux.HandleFunc("DELETE /v1/leases/{id}", func(w http.ResponseWriter, r *http.Request) {
			if !ls.release("DELETE "+r.URL.Path, r.PathValue("id")) {
				notFound(w)
				return
			}
			w.WriteHeader(200)
		})
	}
	ls.srv = httptest.NewServer(mux)
	t.Cleanup(ls.srv.Close)
	return ls
}

func (ls *leaseServer) record(call, key, id string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.calls = append(ls.calls, call)
	ls.leases[key] = id
}

func (ls *leaseServer) release(call, key string) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.calls = append(ls.calls, call)
	if _, ok := ls.leases[key]; !ok {
		return false
	}
	delete(ls.leases, key)
	ls.released = append(ls.released, key)
	return true
}

func TestLease_AcquireReleaseVerify(t *testing.T) {
	cases := []struct {
		name     string
		mirror   bool
		kind     ServerKind
		wantCall string
		issuer   string
	}{
		{"mirror explicit", true, KindMirror, "PUT /v1/leases/host%2F1", ""},
		{"mirror auto", true, KindAuto, "PUT /v1/leases/host%2F1", ""},
		{"control plane explicit", false, KindControlPlane, "POST /v1/entitlements/", license.IssuerVendor},
		{"control plane auto detected", false, KindAuto, "POST /v1/entitlements/", license.IssuerVendor},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, 10)
			ls := newLeaseServer(t, v, tc.mirror)
			c, err := New(ls.srv.URL, append(v.options(t), WithServerKind(tc.kind))...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			l, err := c.AcquireLease(ctx, LeaseRequest{EntitlementID: v.entID, SubjectType: "machine", SubjectID: "host/1"})
			if err != nil {
				t.Fatalf("acquire: %v", err)
			}
			last := ls.calls[len(ls.calls)-1]
			if len(last) < len(tc.wantCall) || last[:len(tc.wantCall)] != tc.wantCall {
				t.Errorf("server call got %q, want prefix %q", last, tc.wantCall)
			}
			if l.SubjectID != "host/1" || l.EntitlementID != v.entID || l.Token == "" || l.ExpiresAt.IsZero() {
				t.Errorf("lease got %+v", l)
			}
			cl, err := c.VerifyLease(ctx, l.Token)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			wantIssuer := tc.issuer
			if tc.mirror {
				wantIssuer = "mirror:" + v.mirrorID
			}
			if cl.Issuer != wantIssuer || cl.SubjectID != "host/1" || cl.TenantID != v.tenantID || cl.LeaseID != l.LeaseID {
				t.Errorf("claims got %+v, want issuer %s", cl, wantIssuer)
			}
			if err := c.ReleaseLease(ctx, l.Ref()); err != nil {
				t.Fatalf("release: %v", err)
			}
			if len(ls.released) != 1 {
				t.Errorf("released got %v, want one", ls.released)
			}
			err = c.ReleaseLease(ctx, l.Ref())
			if ErrorCode(err) != CodeNotFound {
				t.Errorf("second release got %v, want not_found", err)
			}
		})
	}
}

func TestVerifyLease_Rejects(t *testing.T) {
	v := newVendor(t, 10)
	_, otherVendor := newKey(t)
	_, otherMirror := newKey(t)
	expired := v.claims("m1", license.IssuerVendor)
	expired.IssuedAt, expired.ExpiresAt = time.Now().Add(-48*time.Hour).Unix(), time.Now().Add(-24*time.Hour).Unix()
	foreign := v.claims("m1", license.IssuerVendor)
	foreign.TenantID = catalog.NewID(catalog.PrefixTenant)
	greedy := v.claims("m1", "mirror:"+v.mirrorID)
	greedy.Features = []string{"pro", "enterprise"}
	good := v.issue(t, v.claims("m1", license.IssuerVendor), v.key)
	tampered := []byte(good)
	tampered[len(license.TokenPrefix)+10] ^= 1

	cases := []struct {
		name  string
		token string
		cause error
	}{
		{"altered", string(tampered), license.ErrRejected},
		{"untrusted vendor key", v.issue(t, v.claims("m1", license.IssuerVendor), otherVendor), license.ErrUntrustedKey},
		{"expired", v.issue(t, expired, v.key), license.ErrExpired},
		{"another tenant", v.issue(t, foreign, v.key), license.ErrWrongTenant},
		{"mirror key not in the metadata", v.issue(t, v.claims("m1", "mirror:"+v.mirrorID), otherMirror), license.ErrUnknownMirrorKey},
		{"mirror grants more than entitled", v.issue(t, greedy, v.mirrorKey), license.ErrNotEntitled},
		{"garbage", "hello", license.ErrMalformed},
	}
	// Mirror tokens verify along the TUF metadata the server serves.
	s := newServer(t, v)
	c, err := New(s.srv.URL, v.options(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyLease(context.Background(), good); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if _, err := c.VerifyLease(context.Background(), v.issue(t, v.claims("m1", "mirror:"+v.mirrorID), v.mirrorKey)); err != nil {
		t.Fatalf("good mirror token: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.VerifyLease(context.Background(), tc.token)
			if !errors.Is(err, ErrVerification) || !errors.Is(err, tc.cause) {
				t.Errorf("got %v, want ErrVerification wrapping %v", err, tc.cause)
			}
		})
	}
	t.Run("mirror token without a TUF root", func(t *testing.T) {
		c, err := New(s.srv.URL, WithTrustedKeys(v.keys()), WithTenant(v.tenantID))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.VerifyLease(context.Background(), v.issue(t, v.claims("m1", "mirror:"+v.mirrorID), v.mirrorKey))
		if !errors.Is(err, ErrConfig) {
			t.Errorf("got %v, want ErrConfig (no TUF root)", err)
		}
	})
	t.Run("mirror token with forged metadata", func(t *testing.T) {
		other := tuftest.NewVendor(t, v.tenantID, 100)
		other.Build(v.clone(t))
		s.set(func(s *server) { s.repo = tufhttp.New(other.Repo, tufhttp.Options{Prefix: "/tuf/"}) })
		c, err := New(s.srv.URL, v.options(t)...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.VerifyLease(context.Background(), v.issue(t, v.claims("m1", "mirror:"+v.mirrorID), v.mirrorKey))
		if !errors.Is(err, ErrVerification) {
			t.Errorf("got %v, want ErrVerification", err)
		}
	})
}

func TestAcquireLease_ValidatesInput(t *testing.T) {
	c, _ := New("http://127.0.0.1:1")
	cases := map[string]LeaseRequest{
		"entitlement":  {EntitlementID: "../x", SubjectType: "machine", SubjectID: "a"},
		"subject type": {EntitlementID: "ent_x", SubjectType: "robot", SubjectID: "a"},
		"subject id":   {EntitlementID: "ent_x", SubjectType: "user", SubjectID: "a\nb"},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := c.AcquireLease(context.Background(), r); !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}
