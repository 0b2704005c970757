package consoleapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/consoleapp"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store/bolt/bolttest"
)

// consoleOver serves the console over w's backend and returns a signed-in
// client for token, the base URL and the session's CSRF token.
func consoleOver(t *testing.T, w *world, token string) (*http.Client, string, string) {
	t.Helper()
	cs, err := console.New(console.Options{Backend: w.b, Now: w.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cs)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.PostForm(srv.URL+"/console/signin", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	// Home, or for a tenant its tenant's page: any page has the sign-out form.
	body := ""
	for u := srv.URL + "/console/"; u != ""; {
		r, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		body, u = string(b), ""
		if loc := r.Header.Get("Location"); r.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/console/") {
			u = srv.URL + loc
		}
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf token on the home page")
	}
	return hc, srv.URL, m[1]
}

func fetch(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	res, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The policies page over the real App: each policy's version history,
// and blocked versions blocked and unblocked with the page's forms.
func TestConsolePages_PoliciesAndBlockedVersions(t *testing.T) {
	w := setup(t)
	pol, err := w.app.CreatePolicy(w.op, w.tMine, controlplane.PolicyInput{ProductID: w.product, Channel: "stable", Action: catalog.ActionNotify, Conditions: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{`{"min_version":"0.9.0"}`, `{"min_version":"0.9.5"}`} {
		if _, err := w.app.UpdatePolicy(w.op, pol.PolicyID, controlplane.PolicyUpdate{Action: catalog.ActionInstall, Conditions: json.RawMessage(c), Priority: 1}); err != nil {
			t.Fatalf("update policy with %s: %v", c, err)
		}
	}
	hc, base, csrf := consoleOver(t, w, w.adminSecret)
	page := base + "/console/tenants/" + w.tMine + "/policies"

	t.Run("the version history", func(t *testing.T) {
		code, body := fetch(t, hc, page)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		for _, want := range []string{"Version history (3)", "v3, priority 1", `<td class="num">v1</td><td>NOTIFY</td>`, `<td class="num">v2</td><td>INSTALL</td>`, "0.9.5"} {
			if !strings.Contains(body, want) {
				t.Errorf("the policies page lacks %q", want)
			}
		}
		if i, j := strings.Index(body, `<td class="num">v3</td>`), strings.Index(body, `<td class="num">v1</td>`); i < 0 || j < i {
			t.Errorf("versions not newest first (v3 at %d, v1 at %d)", i, j)
		}
	})

	var blockID string
	t.Run("block a version", func(t *testing.T) {
		res, err := hc.PostForm(page[:strings.LastIndex(page, "/")]+"/blocked", url.Values{"csrf": {csrf}, "product_id": {w.product}, "version": {"1.0.0"}, "reason": {"bricks devices"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("block: %d", res.StatusCode)
		}
		bs, _ := w.b.BlockedVersions(console.WithPrincipal(context.Background(), w.admin), w.tMine)
		if len(bs) != 1 || bs[0].BlockedVersion != "1.0.0" || bs[0].Reason != "bricks devices" {
			t.Fatalf("blocked versions in the App: %+v", bs)
		}
		blockID = bs[0].BlocklistID
		if _, body := fetch(t, hc, page); !strings.Contains(body, "<strong>1.0.0</strong>") || !strings.Contains(body, "bricks devices") {
			t.Error("the page does not list the blocked version")
		}
	})
	t.Run("its tenant sees it and cannot unblock it", func(t *testing.T) {
		thc, tbase, tcsrf := consoleOver(t, w, w.mineSecret)
		tpage := tbase + "/console/tenants/" + w.tMine + "/policies"
		code, body := fetch(t, thc, tpage)
		if code != http.StatusOK || !strings.Contains(body, "bricks devices") || strings.Contains(body, "Unblock 1.0.0") {
			t.Errorf("tenant's page: %d, lists the block %v, offers to unblock %v", code, strings.Contains(body, "bricks devices"), strings.Contains(body, "Unblock 1.0.0"))
		}
		res, err := thc.PostForm(tbase+"/console/tenants/"+w.tMine+"/blocked/"+blockID+"/delete", url.Values{"csrf": {tcsrf}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("tenant unblock: %d, want 403", res.StatusCode)
		}
	})
	t.Run("unblock it", func(t *testing.T) {
		res, err := hc.PostForm(page[:strings.LastIndex(page, "/")]+"/blocked/"+blockID+"/delete", url.Values{"csrf": {csrf}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("unblock: %d", res.StatusCode)
		}
		if bs, _ := w.b.BlockedVersions(console.WithPrincipal(context.Background(), w.admin), w.tMine); len(bs) != 0 {
			t.Errorf("blocked versions after unblock: %+v", bs)
		}
	})
}

// The tokens, audit, mirrors and entitlements pages over the real App.
func TestConsolePages_TokensAuditMirrorsEntitlements(t *testing.T) {
	w := setup(t)
	hc, base, csrf := consoleOver(t, w, w.adminSecret)

	t.Run("tokens: create, list, revoke", func(t *testing.T) {
		res, err := hc.PostForm(base+"/console/tokens", url.Values{"csrf": {csrf}, "role": {catalog.RoleTenant}, "tenant_id": {w.tMine}, "name": {"ci-runner"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := regexp.MustCompile(`id="new-token" class="secret" readonly value="([^"]+)"`).FindSubmatch(b)
		if res.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("create: %d, secret shown %v", res.StatusCode, m != nil)
		}
		secret := string(m[1])
		p, err := w.b.Authenticate(context.Background(), secret)
		if err != nil || p.Role != catalog.RoleTenant || p.TenantID != w.tMine {
			t.Fatalf("the new token: %+v, %v; want a tenant token of %s", p, err, w.tMine)
		}
		_, list := fetch(t, hc, base+"/console/tokens")
		if !strings.Contains(list, "ci-runner") || strings.Contains(list, secret) {
			t.Errorf("the list names the token %v, shows its secret %v", strings.Contains(list, "ci-runner"), strings.Contains(list, secret))
		}
		if !strings.Contains(list, "tokens/"+p.TokenID+"/revoke") {
			t.Fatalf("no revoke form for %s", p.TokenID)
		}
		res, err = hc.PostForm(base+"/console/tokens/"+p.TokenID+"/revoke", url.Values{"csrf": {csrf}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d", res.StatusCode)
		}
		if _, err := w.app.Authenticate(context.Background(), secret); err == nil {
			t.Error("the App still accepts the revoked token")
		}
	})

	t.Run("audit: events and the chain's verification", func(t *testing.T) {
		code, body := fetch(t, hc, base+"/console/audit")
		if code != http.StatusOK || !strings.Contains(body, `class="chain chain-ok" role="status" id="chain-status"`) || !strings.Contains(body, "tenant.created") {
			t.Errorf("audit page: %d, chain ok %v, lists tenant.created %v", code, strings.Contains(body, "chain-ok"), strings.Contains(body, "tenant.created"))
		}
	})

	t.Run("mirrors: a fork alert", func(t *testing.T) {
		mp, err := w.app.Authenticate(context.Background(), w.mMine.Credential)
		if err != nil {
			t.Fatal(err)
		}
		alien := catalog.NewID(catalog.PrefixSnapshot)
		if _, err := w.app.ReportSync(controlplane.WithPrincipal(context.Background(), mp), controlplane.SyncReport{LastSnapshotID: alien, Sequence: 3}); err != nil {
			t.Fatal(err)
		}
		_, body := fetch(t, hc, base+"/console/mirrors")
		if !strings.Contains(body, `<tr class="fork">`) || !strings.Contains(body, alien) {
			t.Errorf("the mirrors page shows no fork alert naming %s", alien)
		}
	})

	t.Run("entitlements: seat and lease charts", func(t *testing.T) {
		e, err := w.app.CreateEntitlement(w.op, w.tMine, controlplane.EntitlementInput{ProductID: w.product, Policy: json.RawMessage(`{"max_seats":3}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.app.AcquireLease(w.op, e.EntitlementID, controlplane.Subject{SubjectType: "device", SubjectID: "d1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.app.RecordHistory(w.op); err != nil {
			t.Fatal(err)
		}
		_, body := fetch(t, hc, base+"/console/entitlements")
		for _, want := range []string{`id="seat-usage"`, "1 / 3", "<svg"} {
			if !strings.Contains(body, want) {
				t.Errorf("the entitlements page lacks %q", want)
			}
		}
	})
}

// A tampered audit event breaks the chain, and the audit page says where.
func TestConsolePages_AuditChainBroken(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	app, db := newAppAt(t, dir, clk.now)
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	for _, name := range []string{"acme", "globex", "initech"} {
		if _, err := app.CreateTenant(op, controlplane.TenantInput{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := app.CreateToken(op, controlplane.TokenInput{Role: catalog.RoleAdmin, Name: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bolttest.TamperAuditEvent(filepath.Join(dir, "cp.db"), 2, func(ev *catalog.AuditEvent) {
		ev.Payload = json.RawMessage(`{"name":"mallory"}`)
	}); err != nil {
		t.Fatal(err)
	}
	app, _ = newAppAt(t, dir, clk.now)
	w := &world{app: app, clk: clk, b: consoleapp.New(app, consoleapp.Options{Now: clk.now})}
	hc, base, _ := consoleOver(t, w, tok.Secret)
	code, body := fetch(t, hc, base+"/console/audit")
	if code != http.StatusOK || !strings.Contains(body, `class="chain chain-bad" role="status" id="chain-status"`) {
		t.Fatalf("audit page: %d, chain shown broken %v", code, strings.Contains(body, "chain-bad"))
	}
	if !strings.Contains(body, "chain broken</span> audit chain broken at event 2 (") || !strings.Contains(body, "hash does not match") {
		t.Errorf("the audit page does not name the broken event and why:\n%.800s", body[strings.Index(body, `id="chain-status"`):])
	}

}
