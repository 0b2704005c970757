package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/store/postgres"
)

// clock is a settable test clock.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time      { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) add(d time.Duration) { c.off.Add(int64(d)) }

// instance is one control plane daemon serving on a real loopback
// listener.
type instance struct {
	cp    *controlplaned.ControlPlane
	app   *controlplane.App
	base  string
	admin string
}

// serveInstance runs a ControlPlane over st until the test ends. dir holds
// its keys and blobs (shared by instances of one deployment); admin, when
// "", is minted.
func serveInstance(t *testing.T, st store.Store, dir string, clk *clock, admin string, cfg controlplaned.Config) *instance {
	t.Helper()
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys")); err != nil {
		if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
			t.Fatal(err)
		}
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	o := controlplane.Options{Store: st, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer, Config: cfg.Service}
	if clk != nil {
		o.Now = clk.now
	}
	app := controlplane.New(o)
	if admin == "" {
		ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
		tok, err := app.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin, Name: "bootstrap"})
		if err != nil {
			t.Fatal(err)
		}
		admin = tok.Secret
	}
	cfg.Listen = "127.0.0.1:0"
	cp, err := controlplaned.New(app, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- cp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	in := &instance{cp: cp, app: app, base: "http://" + cp.Addr(), admin: admin}
	(&fixture{cp: cp}).waitReady(t, httpClient())
	return in
}

func (in *instance) as(token string) *httpapi.Client {
	return &httpapi.Client{BaseURL: in.base, Token: token, HTTP: httpClient()}
}

func boltStore(t *testing.T, dir string) store.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := catalog.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

// TestTokens_Lifecycle mounts the attacks of a leaked token against a
// serving control plane: a revoked token, an expired one, a read-only one
// writing, a tenant token reaching another tenant's tokens.
func TestTokens_Lifecycle(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{}
	cp := serveInstance(t, boltStore(t, dir), dir, clk, "", controlplaned.Config{})
	ctx := context.Background()
	admin := cp.as(cp.admin)
	acme, err := admin.CreateTenant(ctx, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := admin.CreateTenant(ctx, controlplane.TenantInput{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(role, tenant string, ttl int64) *controlplane.TokenCreated {
		t.Helper()
		tok, err := admin.CreateToken(ctx, controlplane.TokenInput{Role: role, TenantID: tenant, Name: role + " " + tenant, TTLSeconds: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	t.Run("revoked token fails on the next request", func(t *testing.T) {
		leaked := mint(catalog.RoleAdmin, "", 0)
		if _, _, err := cp.as(leaked.Secret).Tenants(ctx, store.Page{}); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		got, err := admin.RevokeToken(ctx, leaked.TokenID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt == nil {
			t.Fatalf("revoke answered %+v, want revoked_at", got)
		}
		_, _, err = cp.as(leaked.Secret).Tenants(ctx, store.Page{})
		wantCode(t, err, catalog.EUNAUTHORIZED)
	})
	t.Run("expired token fails", func(t *testing.T) {
		short := mint(catalog.RoleTenant, acme.TenantID, 60)
		if short.ExpiresAt == nil {
			t.Fatal("a token with ttl_seconds has no expires_at")
		}
		if _, err := cp.as(short.Secret).Tenant(ctx, acme.TenantID); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
		clk.add(61 * time.Second)
		defer clk.add(-61 * time.Second)
		_, err := cp.as(short.Secret).Tenant(ctx, acme.TenantID)
		wantCode(t, err, catalog.EUNAUTHORIZED)
	})
	t.Run("read-only tokens cannot write", func(t *testing.T) {
		ro := cp.as(mint(catalog.RoleAdminRO, "", 0).Secret)
		if _, _, err := ro.Tenants(ctx, store.Page{}); err != nil {
			t.Fatalf("admin_ro GET: %v", err)
		}
		_, err := ro.CreateTenant(ctx, controlplane.TenantInput{Name: "sneaky"})
		wantCode(t, err, catalog.EFORBIDDEN)
		_, err = ro.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin})
		wantCode(t, err, catalog.EFORBIDDEN)
		tro := cp.as(mint(catalog.RoleTenantRO, acme.TenantID, 0).Secret)
		victim := mint(catalog.RoleTenant, acme.TenantID, 0)
		_, err = tro.RevokeToken(ctx, victim.TokenID)
		wantCode(t, err, catalog.EFORBIDDEN)
		if _, err := cp.as(victim.Secret).Tenant(ctx, acme.TenantID); err != nil {
			t.Fatalf("a refused revocation took effect: %v", err)
		}
	})
	t.Run("tenant token sees and revokes only its tenant's tokens", func(t *testing.T) {
		mine := mint(catalog.RoleTenant, acme.TenantID, 0)
		sibling := mint(catalog.RoleTenant, acme.TenantID, 0)
		foreign := mint(catalog.RoleTenant, other.TenantID, 0)
		me := cp.as(mine.Secret)
		list, _, err := me.ListTokens(ctx, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range list {
			if tok.TenantID != acme.TenantID {
				t.Errorf("tenant token listed %s of tenant %q", tok.TokenID, tok.TenantID)
			}
		}
		_, err = me.RevokeToken(ctx, foreign.TokenID)
		wantCode(t, err, catalog.ENOTFOUND)
		admins, _, _ := admin.ListTokens(ctx, store.Page{Limit: 1000})
		for _, tok := range admins {
			if tok.Role == catalog.RoleAdmin && tok.RevokedAt == nil {
				_, err = me.RevokeToken(ctx, tok.TokenID)
				wantCode(t, err, catalog.ENOTFOUND)
			}
		}
		if _, err := cp.as(foreign.Secret).Tenant(ctx, other.TenantID); err != nil {
			t.Fatalf("foreign token stopped working: %v", err)
		}
		if _, err := me.RevokeToken(ctx, sibling.TokenID); err != nil {
			t.Fatalf("revoke own tenant's token: %v", err)
		}
		_, err = cp.as(sibling.Secret).Tenant(ctx, acme.TenantID)
		wantCode(t, err, catalog.EUNAUTHORIZED)
	})
	t.Run("last_used_at is recorded, at most once a minute", func(t *testing.T) {
		tok := mint(catalog.RoleTenant, acme.TenantID, 0)
		c := cp.as(tok.Secret)
		for range 3 {
			if _, err := c.Tenant(ctx, acme.TenantID); err != nil {
				t.Fatal(err)
			}
		}
		first := lastUsed(t, admin, tok.TokenID)
		if first == nil {
			t.Fatal("last_used_at not recorded")
		}
		c.Tenant(ctx, acme.TenantID)
		if again := lastUsed(t, admin, tok.TokenID); !again.Equal(*first) {
			t.Fatalf("last_used_at moved within the minute: %v -> %v", first, again)
		}
		clk.add(2 * time.Minute)
		defer clk.add(-2 * time.Minute)
		c.Tenant(ctx, acme.TenantID)
		if later := lastUsed(t, admin, tok.TokenID); !later.After(*first) {
			t.Fatalf("last_used_at = %v two minutes later, want after %v", later, first)
		}
	})
	t.Run("revocation and token.revoked are audited", func(t *testing.T) {
		evs, _, err := admin.AuditEvents(ctx, store.AuditFilter{EventType: "token.revoked"}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) < 2 {
			t.Fatalf("%d token.revoked events, want at least 2", len(evs))
		}
	})
}

func lastUsed(t *testing.T, admin *httpapi.Client, id string) *time.Time {
	t.Helper()
	list, _, err := admin.ListTokens(context.Background(), store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list {
		if tok.TokenID == id {
			return tok.LastUsedAt
		}
	}
	t.Fatalf("token %s not listed", id)
	return nil
}

// pgSchema returns a fresh schema on the test PostgreSQL server, dropped
// at cleanup.
func pgSchema(t *testing.T) (url, schema string) {
	t.Helper()
	url = os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
			t.Skip("OUTPOST_SKIP_POSTGRES=1")
		}
		t.Fatal("OUTPOST_TEST_POSTGRES_URL is not set: export OUTPOST_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\", or set OUTPOST_SKIP_POSTGRES=1")
	}
	var b [6]byte
	rand.Read(b[:])
	schema = "outpost_cpd_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return url, schema
}

// TestTokens_RevokedOnEveryInstance revokes a token through one control
// plane instance and uses it at once against another on the same
// PostgreSQL database: no instance caches token validity.
func TestTokens_RevokedOnEveryInstance(t *testing.T) {
	url, schema := pgSchema(t)
	ctx := context.Background()
	open := func() store.Store {
		db, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	dir := t.TempDir()
	a := serveInstance(t, open(), dir, nil, "", controlplaned.Config{})
	b := serveInstance(t, open(), dir, nil, a.admin, controlplaned.Config{})
	leaked, err := a.as(a.admin).CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin, Name: "leaked"})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []*instance{a, b} {
		if _, _, err := in.as(leaked.Secret).Tenants(ctx, store.Page{}); err != nil {
			t.Fatalf("%s before revocation: %v", in.base, err)
		}
	}
	if _, err := b.as(b.admin).RevokeToken(ctx, leaked.TokenID); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*instance{a, b} {
		_, _, err := in.as(leaked.Secret).Tenants(ctx, store.Page{})
		wantCode(t, err, catalog.EUNAUTHORIZED)
	}
}

// httpClient is a client with its own connections, closed by the test's
// end.
func httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
}

// auditHead is the newest audit event's hash.
func auditHead(t *testing.T, admin *httpapi.Client) string {
	t.Helper()
	var last string
	cur := ""
	for {
		evs, next, err := admin.AuditEvents(context.Background(), store.AuditFilter{}, store.Page{Limit: 1000, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			last = evs[len(evs)-1].Hash
		}
		if next == "" {
			return last
		}
		cur = next
	}
}

// TestLeases_BoundToHolder mounts the seat hijack against a serving
// control plane: someone with a token of the same tenant renews or
// releases alice's lease without her holder secret.
func TestLeases_BoundToHolder(t *testing.T) {
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{})
	ctx := context.Background()
	admin := cp.as(cp.admin)
	tn, err := admin.CreateTenant(ctx, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := admin.CreateProduct(ctx, controlplane.ProductInput{Name: "widget"})
	if err != nil {
		t.Fatal(err)
	}
	ent, err := admin.CreateEntitlement(ctx, tn.TenantID, controlplane.EntitlementInput{ProductID: p.ProductID, Policy: []byte(`{"max_seats":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	tok := func() *httpapi.Client {
		tc, err := admin.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleTenant, TenantID: tn.TenantID})
		if err != nil {
			t.Fatal(err)
		}
		return cp.as(tc.Secret)
	}
	alice, mallory := tok(), tok()
	l, err := alice.AcquireLease(ctx, ent.EntitlementID, controlplane.Subject{SubjectType: catalog.SubjectUser, SubjectID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if l.HolderSecret == "" || l.HolderHash == "" {
		t.Fatalf("acquire answered %+v, want a holder secret", l)
	}
	head := auditHead(t, admin)
	for name, secret := range map[string]string{"no secret": "", "a made-up secret": "olh_" + strings.Repeat("A", 43), "malformed": "guess"} {
		t.Run(name, func(t *testing.T) {
			_, err := mallory.AcquireLease(ctx, ent.EntitlementID, controlplane.Subject{SubjectType: catalog.SubjectUser, SubjectID: "alice", HolderSecret: secret})
			wantCode(t, err, catalog.EFORBIDDEN)
			_, err = mallory.ReleaseLease(ctx, l.LeaseID, secret)
			wantCode(t, err, catalog.EFORBIDDEN)
			if got := auditHead(t, admin); got != head {
				t.Fatalf("a refused request changed the audit chain head")
			}
		})
	}
	renewed, err := alice.AcquireLease(ctx, ent.EntitlementID, controlplane.Subject{SubjectType: catalog.SubjectUser, SubjectID: "alice", HolderSecret: l.HolderSecret})
	if err != nil {
		t.Fatalf("renewal with the holder secret: %v", err)
	}
	if renewed.LeaseID != l.LeaseID || renewed.HolderSecret != "" {
		t.Fatalf("renewal = %+v, want the same lease and no new secret", renewed)
	}
	if _, err := alice.ReleaseLease(ctx, l.LeaseID, l.HolderSecret); err != nil {
		t.Fatalf("release with the holder secret: %v", err)
	}
	t.Run("admin force-releases", func(t *testing.T) {
		b, err := alice.AcquireLease(ctx, ent.EntitlementID, controlplane.Subject{SubjectType: catalog.SubjectUser, SubjectID: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = mallory.ReleaseLease(ctx, b.LeaseID, "")
		wantCode(t, err, catalog.EFORBIDDEN)
		got, err := admin.ReleaseLease(ctx, b.LeaseID, "")
		if err != nil || got.ReleasedAt == nil {
			t.Fatalf("admin force release: %+v, %v", got, err)
		}
	})
}

// TestExternalURLs_SpecialPurposeAddressesRefused points EXTERNAL
// artifacts of a serving control plane at addresses that reach the
// vendor's own network although a hand list of private ranges misses
// them: verification must refuse to connect, naming the address.
func TestExternalURLs_SpecialPurposeAddressesRefused(t *testing.T) {
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{})
	ctx := context.Background()
	admin := cp.as(cp.admin)
	for _, host := range []string{
		"[64:ff9b::7f00:1]", // NAT64 of 127.0.0.1
		"[2002:7f00:1::1]",  // 6to4 of 127.0.0.1
		"[::127.0.0.1]",     // IPv4-compatible IPv6
		"198.18.0.1",        // benchmarking
		"240.0.0.1",         // reserved
		"169.254.169.254",   // cloud metadata
		"[::ffff:10.0.0.1]", // IPv4-mapped private
		"0.0.0.0",           // this host
	} {
		t.Run(host, func(t *testing.T) {
			a, err := admin.CreateExternalArtifact(ctx, controlplane.ExternalInput{ExternalURL: "http://" + host + ":9/f", SHA256: strings.Repeat("a", 64), SizeBytes: 1})
			if err != nil {
				t.Fatal(err)
			}
			v, err := admin.VerifyArtifact(ctx, a.ArtifactID)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != catalog.ArtifactFailed || !strings.Contains(v.Reason, "not a public address") {
				t.Fatalf("verify %s = %+v, want FAILED: not a public address", host, v)
			}
		})
	}
}

// TestLeases_RateLimitedPerToken floods the lease endpoint with one
// token: past the burst it is answered 429 with Retry-After, nothing is
// issued, and another token is not affected.
func TestLeases_RateLimitedPerToken(t *testing.T) {
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{LeaseRate: 0.001, LeaseBurst: 3})
	ctx := context.Background()
	admin := cp.as(cp.admin)
	tn, _ := admin.CreateTenant(ctx, controlplane.TenantInput{Name: "acme"})
	p, _ := admin.CreateProduct(ctx, controlplane.ProductInput{Name: "widget"})
	ent, err := admin.CreateEntitlement(ctx, tn.TenantID, controlplane.EntitlementInput{ProductID: p.ProductID, Policy: []byte(`{"max_seats":100}`)})
	if err != nil {
		t.Fatal(err)
	}
	tok := func() string {
		tc, err := admin.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleTenant, TenantID: tn.TenantID})
		if err != nil {
			t.Fatal(err)
		}
		return tc.Secret
	}
	flooder, other := tok(), tok()
	acquire := func(token, subject string) *http.Response {
		req, _ := http.NewRequest("POST", cp.base+"/v1/entitlements/"+ent.EntitlementID+"/leases", strings.NewReader(`{"subject_type":"machine","subject_id":"`+subject+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if r := acquire(flooder, fmt.Sprintf("m%d", i)); r.StatusCode != http.StatusCreated {
			t.Fatalf("request %d within the burst: %d", i, r.StatusCode)
		}
	}
	head := auditHead(t, admin)
	r := acquire(flooder, "m9")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the burst: %d, Retry-After %q; want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if auditHead(t, admin) != head {
		t.Fatal("a rate-limited request changed the audit chain")
	}
	if r := acquire(other, "n1"); r.StatusCode != http.StatusCreated {
		t.Fatalf("another token: %d, want 201", r.StatusCode)
	}
}

// TestDeadlines_SlowBodyIsCut sends a request whose body never finishes:
// the control plane gives up on it at its read deadline rather than
// holding the connection and its handler for ever.
func TestDeadlines_SlowBodyIsCut(t *testing.T) {
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{ReadTimeout: 200 * time.Millisecond, StreamIdle: 200 * time.Millisecond})
	for _, tc := range []struct{ name, head string }{
		{"JSON route", "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + cp.admin + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":"},
		{"streaming upload", "POST /v1/artifacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + cp.admin + "\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\nxxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", cp.cp.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(tc.head)); err != nil {
				t.Fatal(err)
			}
			// Generous: the server's deadline is 200ms; without one, it
			// would wait for the rest of the body for ever.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server still waits for the body after 20s")
			}
		})
	}
}

// TestDeadlines_LongStreamsPass: a download of several write chunks and a
// ranged one go through whole under the per-write deadline.
func TestDeadlines_LongStreamsPass(t *testing.T) {
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{})
	ctx := context.Background()
	admin := cp.as(cp.admin)
	data := make([]byte, 9<<20+123)
	rand.Read(data)
	a, err := admin.UploadArtifact(ctx, bytes.NewReader(data), controlplane.UploadInput{SizeBytes: -1, Length: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	get := func(rng string) []byte {
		req, _ := http.NewRequest("GET", cp.base+"/v1/artifacts/"+a.ArtifactID+"/download", nil)
		req.Header.Set("Authorization", "Bearer "+cp.admin)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := get(""); !bytes.Equal(got, data) {
		t.Fatalf("download: %d bytes, want the %d uploaded", len(got), len(data))
	}
	if got := get("bytes=1000-"); !bytes.Equal(got, data[1000:]) {
		t.Fatalf("ranged download: %d bytes, want %d", len(got), len(data)-1000)
	}
}
