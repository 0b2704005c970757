package console_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/console/consoletest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	s     *console.Server
	f     *consoletest.Fake
	seed  *consoletest.Seeded
	clock *clock
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	f := consoletest.New(c.Now)
	seed := consoletest.Seed(f)
	s, err := console.New(console.Options{Backend: f, Now: c.Now, IdleTimeout: 30 * time.Minute, MaxAge: 12 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, s: s, f: f, seed: seed, clock: c}
}

// session is a signed-in browser.
type session struct {
	cookie *http.Cookie
	csrf   string
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *env) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.s.ServeHTTP(w, r)
	return w
}

func (e *env) signIn(token string) *session {
	e.t.Helper()
	r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := e.do(r)
	if w.Code != http.StatusSeeOther {
		e.t.Fatalf("sign in: status %d: %s", w.Code, w.Body)
	}
	var c *http.Cookie
	for _, ck := range w.Result().Cookies() {
		if ck.Name == console.CookieName {
			c = ck
		}
	}
	if c == nil {
		e.t.Fatal("sign in set no session cookie")
	}
	s := &session{cookie: c}
	// Any page carries the CSRF token (the sign-out form).
	loc := w.Header().Get("Location")
	page := e.get(s, loc)
	m := csrfRe.FindStringSubmatch(page.Body.String())
	if m == nil {
		e.t.Fatalf("no csrf token on %s (%d)", loc, page.Code)
	}
	s.csrf = m[1]
	return s
}

func (e *env) get(s *session, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	if s != nil {
		r.AddCookie(s.cookie)
	}
	return e.do(r)
}

func (e *env) post(s *session, path string, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if s != nil {
		r.AddCookie(s.cookie)
	}
	return e.do(r)
}

// fill substitutes path parameters with ids of tenant tid's objects.
func (e *env) fill(pattern, tid string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	rep := strings.NewReplacer("{tenant}", tid, "{product}", e.seed.App.ProductID, "{release}", e.seed.Release.ReleaseID,
		"{rollout}", e.seed.Rollout.RolloutID, "{token}", "tok_none", "{delivery}", "whd_1", "{id}", e.seed.Blocked.BlocklistID)
	return method, rep.Replace(path)
}

func adminRoute(pattern string) bool {
	return !strings.Contains(pattern, "{tenant}") && !strings.HasSuffix(pattern, "signout") && pattern != "GET /console/"
}

func TestConsole_NoSessionIsRefusedEverywhere(t *testing.T) {
	e := newEnv(t)
	if n := len(e.s.RoutePatterns()); n < 29 {
		t.Fatalf("only %d guarded routes registered", n)
	}
	for _, pat := range e.s.RoutePatterns() {
		t.Run(pat, func(t *testing.T) {
			method, path := e.fill(pat, e.seed.Acme.TenantID)
			var w *httptest.ResponseRecorder
			if method == "GET" {
				w = e.get(nil, path)
				if got, want := w.Code, http.StatusSeeOther; got != want {
					t.Fatalf("status = %d, want %d", got, want)
				}
				if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, "/console/signin?next=") {
					t.Errorf("Location = %q, want the sign-in page", loc)
				}
				return
			}
			w = e.post(nil, path, url.Values{"csrf": {"x"}}, nil)
			if got, want := w.Code, http.StatusUnauthorized; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
		})
	}
	t.Run("a made-up cookie is no session", func(t *testing.T) {
		w := e.get(&session{cookie: &http.Cookie{Name: console.CookieName, Value: "forged"}}, "/console/tenants")
		if w.Code != http.StatusSeeOther {
			t.Errorf("status = %d, want 303", w.Code)
		}
	})
}

func TestConsole_ForeignTenantIsRefusedOnEveryTenantRoute(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.seed.TenantToken) // Acme
	n := 0
	for _, pat := range e.s.RoutePatterns() {
		if !strings.Contains(pat, "{tenant}") {
			continue
		}
		n++
		t.Run(pat, func(t *testing.T) {
			method, path := e.fill(pat, e.seed.Globex.TenantID)
			var w *httptest.ResponseRecorder
			if method == "GET" {
				w = e.get(s, path)
			} else {
				w = e.post(s, path, url.Values{"csrf": {s.csrf}, "version": {"9.9.9"}, "product_id": {e.seed.App.ProductID}}, nil)
			}
			if got, want := w.Code, http.StatusNotFound; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if strings.Contains(w.Body.String(), "Globex") {
				t.Errorf("the page names the other tenant")
			}
		})
		t.Run(pat+" own tenant", func(t *testing.T) {
			method, path := e.fill(pat, e.seed.Acme.TenantID)
			if method != "GET" {
				return
			}
			if w := e.get(s, path); w.Code != http.StatusOK {
				t.Errorf("own tenant: status = %d, want 200: %s", w.Code, w.Body)
			}
		})
	}
	if n < 6 {
		t.Fatalf("only %d tenant-scoped routes", n)
	}
	e.f.Lock()
	defer e.f.Unlock()
	for _, b := range e.f.Blocked {
		if b.TenantID == e.seed.Globex.TenantID {
			t.Errorf("a foreign session blocked a version of Globex")
		}
	}
}

func TestConsole_TenantSessionCannotReachAdminPages(t *testing.T) {
	e := newEnv(t)
	for _, tok := range []string{e.seed.TenantToken, e.seed.TenantROToken} {
		s := e.signIn(tok)
		for _, pat := range e.s.RoutePatterns() {
			if !adminRoute(pat) {
				continue
			}
			t.Run(tok+" "+pat, func(t *testing.T) {
				method, path := e.fill(pat, e.seed.Acme.TenantID)
				var w *httptest.ResponseRecorder
				if method == "GET" {
					w = e.get(s, path)
				} else {
					w = e.post(s, path, url.Values{"csrf": {s.csrf}, "name": {"x"}}, nil)
				}
				if got, want := w.Code, http.StatusForbidden; got != want {
					t.Errorf("status = %d, want %d", got, want)
				}
			})
		}
	}
	t.Run("home redirects a tenant to its own tenant", func(t *testing.T) {
		s := e.signIn(e.seed.TenantToken)
		w := e.get(s, "/console/")
		if got, want := w.Header().Get("Location"), "/console/tenants/"+e.seed.Acme.TenantID; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
	})
}

func TestConsole_CrossSiteFormPostIsRefused(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.seed.AdminToken)
	other := e.signIn(e.seed.AdminToken)
	form := func(csrf string) url.Values { return url.Values{"csrf": {csrf}, "name": {"Evil Corp"}} }
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
		want int
	}{
		{"no token", url.Values{"name": {"Evil Corp"}}, nil, http.StatusForbidden},
		{"wrong token", form("not-the-token"), nil, http.StatusForbidden},
		{"another session's token", form(other.csrf), nil, http.StatusForbidden},
		{"foreign Origin", form(s.csrf), map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"null Origin", form(s.csrf), map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site fetch", form(s.csrf), map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site but other origin", form(s.csrf), map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"https Origin for an http console", form(s.csrf), map[string]string{"Origin": "https://example.com"}, http.StatusForbidden},
		{"same origin with the token", form(s.csrf), map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(mustTenants(t, e))
			w := e.post(s, "/console/tenants", tc.form, tc.hdr)
			if got := w.Code; got != tc.want {
				t.Fatalf("status = %d, want %d: %s", got, tc.want, w.Body)
			}
			after := len(mustTenants(t, e))
			if created := after > before; created != (tc.want == http.StatusSeeOther) {
				t.Errorf("tenant created = %v, want %v", created, !created)
			}
		})
	}
	t.Run("a cross-site sign-in is refused (login CSRF)", func(t *testing.T) {
		for _, hdr := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
			w := e.post(nil, "/console/signin", url.Values{"token": {e.seed.AdminToken}}, hdr)
			if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
				t.Errorf("%v: status %d with %d cookies, want 403 and no session", hdr, w.Code, len(w.Result().Cookies()))
			}
		}
	})
	t.Run("every POST route checks the token", func(t *testing.T) {
		for _, pat := range e.s.RoutePatterns() {
			method, path := e.fill(pat, e.seed.Acme.TenantID)
			if method != "POST" {
				continue
			}
			if strings.HasSuffix(pat, "/releases") {
				continue // multipart: its own case below
			}
			if w := e.post(s, path, url.Values{"csrf": {"bad"}}, nil); w.Code != http.StatusForbidden {
				t.Errorf("%s: status = %d, want 403", pat, w.Code)
			}
		}
	})
	t.Run("the upload refuses a bad token before reading the file", func(t *testing.T) {
		body, ct := multipartBody(t, map[string]string{"csrf": "bad", "channel": "stable", "version": "3.0.0", "platform": "linux", "arch": "x64", "installer_type": "tar.gz"}, "a.tgz", []byte("payload"))
		r := httptest.NewRequest("POST", "/console/products/"+e.seed.App.ProductID+"/releases", body)
		r.Header.Set("Content-Type", ct)
		r.AddCookie(s.cookie)
		if w := e.do(r); w.Code != http.StatusForbidden {
			t.Errorf("status = %d, want 403", w.Code)
		}
		e.f.Lock()
		defer e.f.Unlock()
		if len(e.f.Uploads) != 0 {
			t.Errorf("the backend received %d uploads", len(e.f.Uploads))
		}
	})
}

func mustTenants(t *testing.T, e *env) []string {
	t.Helper()
	e.f.Lock()
	defer e.f.Unlock()
	var out []string
	for _, x := range e.f.TenantList {
		out = append(out, x.TenantID)
	}
	return out
}

func TestConsole_ReadOnlySessionsCannotPost(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, token string }{{"admin_ro", e.seed.AdminROToken}, {"tenant_ro", e.seed.TenantROToken}} {
		s := e.signIn(tc.token)
		t.Run(tc.name, func(t *testing.T) {
			for _, pat := range e.s.RoutePatterns() {
				method, path := e.fill(pat, e.seed.Acme.TenantID)
				if method != "POST" || strings.HasSuffix(pat, "signout") {
					continue
				}
				w := e.post(s, path, url.Values{"csrf": {s.csrf}, "name": {"x"}, "version": {"9.9.9"}, "confirm": {e.seed.Release.ReleaseID}}, nil)
				if w.Code != http.StatusForbidden {
					t.Errorf("%s: status = %d, want 403", pat, w.Code)
				}
			}
			for _, pat := range e.s.RoutePatterns() {
				method, path := e.fill(pat, e.seed.Acme.TenantID)
				if method != "GET" {
					continue
				}
				w := e.get(s, path)
				if w.Code != http.StatusOK {
					continue
				}
				if n := strings.Count(w.Body.String(), `method="post"`); n != 1 { // sign-out only
					t.Errorf("%s: %d post forms on a read-only page, want only sign-out", pat, n)
				}
			}
		})
	}
	t.Run("a read-only session may still sign out", func(t *testing.T) {
		s := e.signIn(e.seed.AdminROToken)
		if w := e.post(s, "/console/signout", url.Values{"csrf": {s.csrf}}, nil); w.Code != http.StatusSeeOther {
			t.Errorf("status = %d, want 303", w.Code)
		}
		if w := e.get(s, "/console/tenants"); w.Code != http.StatusSeeOther {
			t.Errorf("after sign-out: status = %d, want 303", w.Code)
		}
	})
	e.f.Lock()
	defer e.f.Unlock()
	if e.seed.Release.Status != "ACTIVE" {
		t.Errorf("a read-only session revoked the release")
	}
}

func TestConsole_TenantSeesOnlyItsTenant(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.seed.TenantToken)
	for _, path := range []string{"", "/mirrors", "/entitlements", "/audit", "/webhooks", "/policies"} {
		t.Run("tenants/acme"+path, func(t *testing.T) {
			w := e.get(s, "/console/tenants/"+e.seed.Acme.TenantID+path)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			body := w.Body.String()
			for _, foreign := range []string{"Globex", "globex-hq", e.seed.Globex.TenantID} {
				if strings.Contains(body, foreign) {
					t.Errorf("the page shows %q, of another tenant", foreign)
				}
			}
		})
	}
	t.Run("no admin navigation", func(t *testing.T) {
		body := e.get(s, "/console/tenants/"+e.seed.Acme.TenantID).Body.String()
		for _, admin := range []string{`href="/console/tokens"`, `href="/console/products"`, `href="/console/audit"`} {
			if strings.Contains(body, admin) {
				t.Errorf("a tenant page links to %s", admin)
			}
		}
	})
	t.Run("a tenant may not block a version, as in the API", func(t *testing.T) {
		w := e.post(s, "/console/tenants/"+e.seed.Acme.TenantID+"/blocked", url.Values{"csrf": {s.csrf}, "product_id": {e.seed.App.ProductID}, "version": {"1.1.0"}}, nil)
		if w.Code != http.StatusForbidden {
			t.Fatalf("status = %d, want 403", w.Code)
		}
	})
}

func TestConsole_SessionCookieFlags(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name       string
		tls        bool
		wantSecure bool
	}{{"plain http", false, false}, {"behind TLS", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(url.Values{"token": {e.seed.AdminToken}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := e.do(r)
			raw := w.Header().Get("Set-Cookie")
			c := w.Result().Cookies()[0]
			if !c.HttpOnly {
				t.Errorf("HttpOnly missing: %s", raw)
			}
			if c.SameSite != http.SameSiteStrictMode {
				t.Errorf("SameSite = %v, want Strict: %s", c.SameSite, raw)
			}
			if c.Secure != tc.wantSecure {
				t.Errorf("Secure = %v, want %v: %s", c.Secure, tc.wantSecure, raw)
			}
			if c.Path != "/console/" {
				t.Errorf("Path = %q, want /console/", c.Path)
			}
			if len(c.Value) < 40 {
				t.Errorf("session id %q is too short to be unguessable", c.Value)
			}
		})
	}
	t.Run("a new sign-in gets a new id", func(t *testing.T) {
		a, b := e.signIn(e.seed.AdminToken), e.signIn(e.seed.AdminToken)
		if a.cookie.Value == b.cookie.Value {
			t.Error("two sign-ins share a session id")
		}
	})
	t.Run("security headers", func(t *testing.T) {
		w := e.get(nil, "/console/signin")
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP = %q", csp)
		}
	})
}

func TestConsole_SessionLifecycle(t *testing.T) {
	t.Run("a bad token does not sign in", func(t *testing.T) {
		e := newEnv(t)
		w := e.post(nil, "/console/signin", url.Values{"token": {"opt_wrong"}}, nil)
		if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
			t.Errorf("status = %d, cookies %v; want 401 and none", w.Code, w.Result().Cookies())
		}
		if !strings.Contains(w.Body.String(), "That token was not accepted.") {
			t.Errorf("no friendly message")
		}
	})
	t.Run("idle expiry", func(t *testing.T) {
		e := newEnv(t)
		s := e.signIn(e.seed.AdminToken)
		e.clock.Add(29 * time.Minute)
		if w := e.get(s, "/console/tenants"); w.Code != http.StatusOK {
			t.Fatalf("before idle timeout: status %d", w.Code)
		}
		e.clock.Add(31 * time.Minute)
		if w := e.get(s, "/console/tenants"); w.Code != http.StatusSeeOther {
			t.Errorf("after idle timeout: status = %d, want 303", w.Code)
		}
	})
	t.Run("absolute expiry", func(t *testing.T) {
		e := newEnv(t)
		s := e.signIn(e.seed.AdminToken)
		for range 25 { // active every 29 minutes for 12h+
			e.clock.Add(29 * time.Minute)
			e.get(s, "/console/tenants")
		}
		if w := e.get(s, "/console/tenants"); w.Code != http.StatusSeeOther {
			t.Errorf("after max age: status = %d, want 303", w.Code)
		}
	})
	t.Run("sign out ends the session", func(t *testing.T) {
		e := newEnv(t)
		s := e.signIn(e.seed.AdminToken)
		w := e.post(s, "/console/signout", url.Values{"csrf": {s.csrf}}, nil)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("sign out: status %d", w.Code)
		}
		if c := w.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
			t.Errorf("sign out did not clear the cookie: %v", c)
		}
		if w := e.get(s, "/console/tenants"); w.Code != http.StatusSeeOther {
			t.Errorf("old cookie after sign out: status = %d, want 303", w.Code)
		}
		if n := e.s.Sessions(); n != 0 {
			t.Errorf("%d sessions left", n)
		}
	})
	t.Run("a revoked token ends its sessions", func(t *testing.T) {
		e := newEnv(t)
		admin := e.signIn(e.seed.AdminToken)
		victim := e.signIn(e.seed.TenantToken)
		p, err := e.f.Authenticate(t.Context(), e.seed.TenantToken)
		if err != nil {
			t.Fatal(err)
		}
		if w := e.post(admin, "/console/tokens/"+p.TokenID+"/revoke", url.Values{"csrf": {admin.csrf}}, nil); w.Code != http.StatusSeeOther {
			t.Fatalf("revoke: %d %s", w.Code, w.Body)
		}
		if w := e.get(victim, "/console/tenants/"+e.seed.Acme.TenantID); w.Code != http.StatusSeeOther {
			t.Errorf("revoked token's session: status = %d, want 303", w.Code)
		}
	})
	t.Run("a backend that cannot answer keeps the session", func(t *testing.T) {
		e := newEnv(t)
		s := e.signIn(e.seed.AdminToken)
		e.f.Lock()
		e.f.TokenCheckErr = errors.New("store unavailable")
		e.f.Unlock()
		if w := e.get(s, "/console/tenants"); w.Code != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want 503", w.Code)
		}
		e.f.Lock()
		e.f.TokenCheckErr = nil
		e.f.Unlock()
		if w := e.get(s, "/console/tenants"); w.Code != http.StatusOK {
			t.Errorf("after recovery: status = %d, want 200", w.Code)
		}
	})
	t.Run("next only leads inside the console", func(t *testing.T) {
		e := newEnv(t)
		for next, want := range map[string]string{"/console/products": "/console/products", "https://evil.example/": "/console/", "//evil.example/console/": "/console/", "/elsewhere": "/console/"} {
			w := e.post(nil, "/console/signin", url.Values{"token": {e.seed.AdminToken}, "next": {next}}, nil)
			if got := w.Header().Get("Location"); got != want {
				t.Errorf("next %q: Location = %q, want %q", next, got, want)
			}
		}
	})
}

func multipartBody(t *testing.T, fields map[string]string, name string, data []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	// csrf first, as the page's form does.
	if v, ok := fields["csrf"]; ok {
		_ = mw.WriteField("csrf", v)
	}
	for k, v := range fields {
		if k != "csrf" {
			_ = mw.WriteField(k, v)
		}
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestConsole_AdminFlows(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.seed.AdminToken)
	t.Run("every page renders", func(t *testing.T) {
		for _, pat := range e.s.RoutePatterns() {
			method, path := e.fill(pat, e.seed.Acme.TenantID)
			if method != "GET" {
				continue
			}
			w := e.get(s, path)
			if w.Code != http.StatusOK {
				t.Errorf("%s: status %d: %s", path, w.Code, w.Body)
			}
		}
	})
	t.Run("publish streams the file to the backend", func(t *testing.T) {
		data := bytes.Repeat([]byte("outpost"), 100000)
		body, ct := multipartBody(t, map[string]string{"csrf": s.csrf, "size_bytes": "700000", "channel": "stable", "version": "2.0.0", "platform": "linux", "arch": "x64", "installer_type": "tar.gz"}, "app-2.0.0.tgz", data)
		r := httptest.NewRequest("POST", "/console/products/"+e.seed.App.ProductID+"/releases", body)
		r.Header.Set("Content-Type", ct)
		r.AddCookie(s.cookie)
		w := e.do(r)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("status = %d: %s", w.Code, w.Body)
		}
		e.f.Lock()
		var got consoletest.Upload
		for _, u := range e.f.Uploads {
			got = u
		}
		e.f.Unlock()
		if got.Size != int64(len(data)) || got.Name != "app-2.0.0.tgz" {
			t.Errorf("upload = %+v, want %d bytes named app-2.0.0.tgz", got, len(data))
		}
		page := e.get(s, w.Header().Get("Location")).Body.String()
		if !strings.Contains(page, "Published 2.0.0") {
			t.Errorf("no confirmation on the product page")
		}
	})
	t.Run("a wrong declared size is refused with the backend's message", func(t *testing.T) {
		body, ct := multipartBody(t, map[string]string{"csrf": s.csrf, "size_bytes": "5", "channel": "stable", "version": "2.0.1", "platform": "linux", "arch": "x64", "installer_type": "tar.gz"}, "x", []byte("123"))
		r := httptest.NewRequest("POST", "/console/products/"+e.seed.App.ProductID+"/releases", body)
		r.Header.Set("Content-Type", ct)
		r.AddCookie(s.cookie)
		w := e.do(r)
		page := e.get(s, w.Header().Get("Location")).Body.String()
		if !strings.Contains(page, "declared 5 bytes, received 3") {
			t.Errorf("the error is not shown: %s", page)
		}
	})
	t.Run("revoke shows what it affects, then revokes", func(t *testing.T) {
		page := e.get(s, "/console/releases/"+e.seed.Release.ReleaseID+"/revoke").Body.String()
		for _, want := range []string{"Acme Corp", "acme-dc1", e.seed.Rollout.RolloutID} {
			if !strings.Contains(page, want) {
				t.Errorf("confirmation does not name %q", want)
			}
		}
		if w := e.post(s, "/console/releases/"+e.seed.Release.ReleaseID+"/revoke", url.Values{"csrf": {s.csrf}}, nil); w.Code != http.StatusBadRequest {
			t.Errorf("without confirm: status = %d, want 400", w.Code)
		}
		if w := e.post(s, "/console/releases/"+e.seed.Release.ReleaseID+"/revoke", url.Values{"csrf": {s.csrf}, "confirm": {e.seed.Release.ReleaseID}}, nil); w.Code != http.StatusSeeOther {
			t.Fatalf("revoke: status = %d", w.Code)
		}
		e.f.Lock()
		st := e.seed.Release.Status
		e.f.Unlock()
		if st != "REVOKED" {
			t.Errorf("status = %s, want REVOKED", st)
		}
	})
	t.Run("token secret is shown once", func(t *testing.T) {
		w := e.post(s, "/console/tokens", url.Values{"csrf": {s.csrf}, "role": {"tenant"}, "tenant_id": {e.seed.Acme.TenantID}, "name": {"ci"}}, nil)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="new-token"`) {
			t.Fatalf("status %d, no token shown", w.Code)
		}
		if strings.Contains(e.get(s, "/console/tokens").Body.String(), `id="new-token"`) {
			t.Error("the secret is shown again")
		}
	})
	t.Run("domain errors are friendly", func(t *testing.T) {
		w := e.get(s, "/console/products/prd_nope")
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "Not found: Product") {
			t.Errorf("status %d: %s", w.Code, w.Body)
		}
	})
	t.Run("webhooks page lists endpoints and redelivers", func(t *testing.T) {
		page := e.get(s, "/console/webhooks").Body.String()
		for _, want := range []string{`id="webhook-subscriptions"`, "https://hooks.acme.example/outpost", `webhooks/deliveries/whd_2/redeliver`} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if w := e.post(s, "/console/webhooks/deliveries/whd_2/redeliver", url.Values{}, nil); w.Code != http.StatusForbidden {
			t.Errorf("redeliver without CSRF: status %d, want %d", w.Code, http.StatusForbidden)
		}
		w := e.post(s, "/console/webhooks/deliveries/whd_2/redeliver", url.Values{"csrf": {s.csrf}}, nil)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("redeliver: status %d, want %d", w.Code, http.StatusSeeOther)
		}
		e.f.Lock()
		got := slices.Clone(e.f.Redelivered)
		e.f.Unlock()
		if want := []string{"whd_2"}; !slices.Equal(got, want) {
			t.Errorf("redelivered %v, want %v", got, want)
		}
	})
	t.Run("webhooks not configured", func(t *testing.T) {
		e.f.Lock()
		e.f.Webhooks = nil
		e.f.Unlock()
		if !strings.Contains(e.get(s, "/console/webhooks").Body.String(), "not configured") {
			t.Error("no not-configured notice")
		}
	})
	t.Run("charts are inline SVG with titles", func(t *testing.T) {
		page := e.get(s, "/console/rollouts/"+e.seed.Rollout.RolloutID).Body.String()
		if !strings.Contains(page, `<svg`) || !strings.Contains(page, `<title id="adoption-title">Adoption</title>`) {
			t.Error("no adoption chart")
		}
	})
}

func BenchmarkConsole_MirrorsPage(b *testing.B) {
	e := newEnv(b)
	s := e.signIn(e.seed.AdminToken)
	b.ReportAllocs()
	for b.Loop() {
		if w := e.get(s, "/console/mirrors"); w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkConsole_RolloutPageWithCharts(b *testing.B) {
	e := newEnv(b)
	s := e.signIn(e.seed.AdminToken)
	b.ReportAllocs()
	for b.Loop() {
		if w := e.get(s, "/console/rollouts/"+e.seed.Rollout.RolloutID); w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// The rollout forms set the percentage, the schedule and the health gate:
// on the product page when a rollout starts, on the rollout's page after.
func TestConsole_RolloutScheduleAndGate(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.seed.AdminToken)
	info := func(t *testing.T, id string) *console.RolloutInfo {
		t.Helper()
		e.f.Lock()
		defer e.f.Unlock()
		for _, r := range e.f.RolloutList {
			if r.Rollout.RolloutID == id {
				return r
			}
		}
		t.Fatalf("rollout %s not found", id)
		return nil
	}
	start := e.clock.Now()
	var id string

	t.Run("started with a schedule and a gate", func(t *testing.T) {
		w := e.post(s, "/console/products/"+e.seed.App.ProductID+"/rollouts", url.Values{"csrf": {s.csrf}, "release_id": {e.seed.Release.ReleaseID},
			"percentage": {"5"}, "gate_max_failure_rate": {"2.5"}, "gate_min_reports": {"50"}, "schedule": {"5 for 24h, 25 for 2d, 100"}}, nil)
		loc := w.Header().Get("Location")
		if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/rollouts/") {
			t.Fatalf("status %d, location %q", w.Code, loc)
		}
		id = strings.TrimPrefix(loc, "/console/rollouts/")
		r := info(t, id)
		want := []console.RolloutStep{{At: start, Percentage: 5}, {At: start.Add(24 * time.Hour), Percentage: 25}, {At: start.Add(72 * time.Hour), Percentage: 100}}
		if len(r.Schedule) != len(want) {
			t.Fatalf("schedule %+v, want %+v", r.Schedule, want)
		}
		for i := range want {
			if !r.Schedule[i].At.Equal(want[i].At) || r.Schedule[i].Percentage != want[i].Percentage {
				t.Errorf("step %d: got %+v, want %+v", i, r.Schedule[i], want[i])
			}
		}
		if r.Gate == nil || r.Gate.MaxFailureRate != 2.5 || r.Gate.MinReports != 50 {
			t.Errorf("gate %+v, want 2.5%% after 50", r.Gate)
		}
		page := e.get(s, loc).Body.String()
		for _, want := range []string{"halt above 2.5% failed installs (after 50 reports)", "→ 25%", "→ 100%", `id="upd-remove-schedule"`, `id="upd-remove-gate"`} {
			if !strings.Contains(page, want) {
				t.Errorf("the rollout page lacks %q", want)
			}
		}
	})

	t.Run("a bad schedule is refused and starts nothing", func(t *testing.T) {
		e.f.Lock()
		n := len(e.f.RolloutList)
		e.f.Unlock()
		w := e.post(s, "/console/products/"+e.seed.App.ProductID+"/rollouts", url.Values{"csrf": {s.csrf}, "release_id": {e.seed.Release.ReleaseID},
			"percentage": {"5"}, "schedule": {"50 for 1h, 25"}}, nil)
		page := e.get(s, w.Header().Get("Location")).Body.String()
		if !strings.Contains(page, "25% is not above the step before") {
			t.Errorf("the refusal is not shown on %s", w.Header().Get("Location"))
		}
		e.f.Lock()
		defer e.f.Unlock()
		if len(e.f.RolloutList) != n {
			t.Errorf("a refused schedule started a rollout")
		}
	})

	t.Run("changed on the rollout page", func(t *testing.T) {
		e.clock.Add(20 * time.Minute) // within the idle timeout
		w := e.post(s, "/console/rollouts/"+id, url.Values{"csrf": {s.csrf}, "percentage": {"25"}, "schedule": {"25 for 12h, 100"}, "gate_max_failure_rate": {"1"}, "gate_min_reports": {"10"}}, nil)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("status %d", w.Code)
		}
		r := info(t, id)
		if r.Rollout.Percentage != 25 || len(r.Schedule) != 2 || !r.Schedule[1].At.Equal(e.clock.Now().Add(12*time.Hour)) || r.Gate == nil || r.Gate.MaxFailureRate != 1 || r.Gate.MinReports != 10 {
			t.Errorf("got %v%%, schedule %+v, gate %+v", r.Rollout.Percentage, r.Schedule, r.Gate)
		}
	})

	t.Run("empty fields keep the schedule and the gate", func(t *testing.T) {
		w := e.post(s, "/console/rollouts/"+id, url.Values{"csrf": {s.csrf}, "percentage": {"30"}, "schedule": {""}, "gate_max_failure_rate": {""}}, nil)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("status %d", w.Code)
		}
		if r := info(t, id); r.Rollout.Percentage != 30 || len(r.Schedule) != 2 || r.Gate == nil {
			t.Errorf("got %v%%, schedule %+v, gate %+v; want 30%%, both kept", r.Rollout.Percentage, r.Schedule, r.Gate)
		}
	})

	t.Run("removed", func(t *testing.T) {
		w := e.post(s, "/console/rollouts/"+id, url.Values{"csrf": {s.csrf}, "remove_schedule": {"1"}, "remove_gate": {"1"}, "schedule": {"ignored"}}, nil)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("status %d", w.Code)
		}
		if r := info(t, id); r.Schedule != nil || r.Gate != nil {
			t.Errorf("schedule %+v, gate %+v; want both removed", r.Schedule, r.Gate)
		}
		page := e.get(s, "/console/rollouts/"+id).Body.String()
		if strings.Contains(page, `id="upd-remove-schedule"`) || !strings.Contains(page, "<dd>none</dd>") {
			t.Errorf("the page still shows a schedule or a gate")
		}
	})
}
