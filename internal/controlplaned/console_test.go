package controlplaned_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/consoleapp"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/store"
)

// serving runs the fixture's daemon until the test ends.
func serving(t *testing.T) (*fixture, string) {
	t.Helper()
	f := newFixture(t, controlplaned.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.cp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
		f.cp.Close(context.Background())
	})
	f.waitReady(t, http.DefaultClient)
	return f, "http://" + f.cp.Addr()
}

// browser is a cookie-keeping client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func signIn(t *testing.T, hc *http.Client, base, token string) *http.Response {
	t.Helper()
	res, err := hc.PostForm(base+"/console/signin", url.Values{"token": {token}, "next": {"/console/"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: got %d, want 303", res.StatusCode)
	}
	return res
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the session's CSRF token from a page.
func csrf(t *testing.T, hc *http.Client, pageURL string) string {
	t.Helper()
	res, err := hc.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := csrfRE.FindSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s: status %d, csrf found %v", pageURL, res.StatusCode, m != nil)
	}
	return string(m[1])
}

// routes lists the console's guarded routes (method, path with every
// placeholder filled; {tenant} with tenant).
func routes(t *testing.T, app *controlplane.App, tenant string) [][2]string {
	t.Helper()
	c, err := console.New(console.Options{Backend: consoleapp.New(app, consoleapp.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	fill := regexp.MustCompile(`\{[a-z]+\}`)
	var out [][2]string
	for _, p := range c.RoutePatterns() {
		method, path, _ := strings.Cut(p, " ")
		path = strings.ReplaceAll(path, "{tenant}", tenant)
		path = fill.ReplaceAllStringFunc(path, func(s string) string { return "x_" + strings.Trim(s, "{}") })
		out = append(out, [2]string{method, path})
	}
	if len(out) < 20 {
		t.Fatalf("got %d console routes, want every one", len(out))
	}
	return out
}

func do(t *testing.T, hc *http.Client, method, u string, form url.Values, header http.Header) *http.Response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// TestConsole_Security drives the console the control plane daemon
// serves, over its real App.
func TestConsole_Security(t *testing.T) {
	f, base := serving(t)
	app := f.cp.App()
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	mine, err := app.CreateTenant(op, controlplane.TenantInput{Name: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := app.CreateTenant(op, controlplane.TenantInput{Name: "theirs"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := app.CreateToken(op, controlplane.TokenInput{Role: catalog.RoleTenant, TenantID: mine.TenantID})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("no session is refused on every route", func(t *testing.T) {
		hc := browser(t)
		for _, rt := range routes(t, app, theirs.TenantID) {
			res := do(t, hc, rt[0], base+rt[1], url.Values{}, nil)
			want := http.StatusUnauthorized
			if rt[0] == http.MethodGet {
				want = http.StatusSeeOther
			}
			if res.StatusCode != want {
				t.Errorf("%s %s: got %d, want %d", rt[0], rt[1], res.StatusCode, want)
			}
			if loc := res.Header.Get("Location"); want == http.StatusSeeOther && !strings.HasPrefix(loc, "/console/signin") {
				t.Errorf("%s %s: redirected to %q, want the sign-in page", rt[0], rt[1], loc)
			}
		}
	})

	t.Run("a tenant session is refused on another tenant's and the admin routes", func(t *testing.T) {
		hc := browser(t)
		signIn(t, hc, base, tok.Secret)
		token := csrf(t, hc, base+"/console/tenants/"+mine.TenantID)
		for _, rt := range routes(t, app, theirs.TenantID) {
			path := rt[1]
			if path == "/console/" || path == "/console/signout" {
				continue // open to every session: home shows its own tenant
			}
			want := http.StatusForbidden
			if strings.Contains(path, theirs.TenantID) {
				want = http.StatusNotFound // another tenant's pages do not exist for it
			}
			res := do(t, hc, rt[0], base+path, url.Values{"csrf": {token}, "name": {"x"}}, nil)
			if res.StatusCode != want {
				t.Errorf("%s %s: got %d, want %d", rt[0], path, res.StatusCode, want)
			}
		}
		// Its own tenant's pages work, so the refusals above are about scope.
		for _, rt := range routes(t, app, mine.TenantID) {
			if rt[0] != http.MethodGet || !strings.Contains(rt[1], mine.TenantID) {
				continue
			}
			if res := do(t, hc, rt[0], base+rt[1], nil, nil); res.StatusCode != http.StatusOK {
				t.Errorf("own tenant: GET %s: got %d, want 200", rt[1], res.StatusCode)
			}
		}
	})

	t.Run("an admin session reads every page", func(t *testing.T) {
		hc := browser(t)
		signIn(t, hc, base, f.token)
		for _, rt := range routes(t, app, mine.TenantID) {
			if rt[0] != http.MethodGet || strings.Contains(rt[1], "x_") {
				continue // pages of objects that do not exist here
			}
			if res := do(t, hc, rt[0], base+rt[1], nil, nil); res.StatusCode != http.StatusOK {
				t.Errorf("GET %s: got %d, want 200", rt[1], res.StatusCode)
			}
		}
	})

	t.Run("a cross-site form post is refused", func(t *testing.T) {
		hc := browser(t)
		signIn(t, hc, base, f.token)
		token := csrf(t, hc, base+"/console/tenants")
		for name, h := range map[string]http.Header{
			"foreign origin":  {"Origin": {"http://evil.example"}},
			"cross-site":      {"Sec-Fetch-Site": {"cross-site"}},
			"null origin":     {"Origin": {"null"}},
			"same-site other": {"Sec-Fetch-Site": {"same-site"}},
		} {
			res := do(t, hc, http.MethodPost, base+"/console/tenants", url.Values{"csrf": {token}, "name": {"evil"}}, h)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s: got %d, want 403", name, res.StatusCode)
			}
		}
		ts, _, err := app.Tenants(op, store.Page{Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range ts {
			if tn.Name == "evil" {
				t.Errorf("a cross-site post created tenant %s", tn.TenantID)
			}
		}
		// The same post from the console itself is accepted.
		res := do(t, hc, http.MethodPost, base+"/console/tenants", url.Values{"csrf": {token}, "name": {"good"}},
			http.Header{"Origin": {base}, "Sec-Fetch-Site": {"same-origin"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Errorf("same-origin post: got %d, want 303", res.StatusCode)
		}
	})

	t.Run("the session cookie's flags", func(t *testing.T) {
		check := func(t *testing.T, hc *http.Client, base string, secure bool) {
			res := signIn(t, hc, base, f.token)
			var c *http.Cookie
			for _, k := range res.Cookies() {
				if k.Name == console.CookieName {
					c = k
				}
			}
			if c == nil {
				t.Fatal("no session cookie")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" || c.Secure != secure {
				t.Errorf("got HttpOnly=%v SameSite=%v Path=%q Secure=%v, want true, Strict, /console/, %v", c.HttpOnly, c.SameSite, c.Path, c.Secure, secure)
			}
		}
		t.Run("plain HTTP", func(t *testing.T) { check(t, browser(t), base, false) })
		t.Run("TLS", func(t *testing.T) {
			// The daemon's own handler behind TLS.
			ts := httptest.NewTLSServer(f.cp.Handler())
			defer ts.Close()
			hc := ts.Client()
			hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			check(t, hc, ts.URL, true)
		})
	})

	t.Run("the API still answers beside the console", func(t *testing.T) {
		res := do(t, http.DefaultClient, http.MethodGet, base+"/v1/tenants", nil, nil)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /v1/tenants without a token: got %d, want 401", res.StatusCode)
		}
	})
}
