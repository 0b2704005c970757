package e2e

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// checkQuickstartBrowser follows what `make run` prints for a browser:
// the console's URL with the admin and tenant tokens to sign in with, and
// the status page's URL with the mirror admin token for a bundle upload
// (of the bundle the printed export command writes).
func checkQuickstartBrowser(t *testing.T, out, demo string) {
	t.Helper()
	find := func(what, pat string) string {
		t.Helper()
		m := regexp.MustCompile(pat).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("make run does not print %s (/%s/):\n%s", what, pat, out)
		}
		return m[1]
	}
	console := find("the console URL", `vendor console\s+(http://\S+/console/)`)
	admin := find("the admin token", `sign in with the admin token: (\S+)`)
	tenant := find("the tenant token", `sees only its own pages: (\S+)\)`)
	site := find("the status page URL", `status page\s+(http://\S+/)\n`)
	mirrorAdmin := find("the mirror admin token", `mirror admin token for the bundle upload: (\S+)`)
	export := find("a bundle export command", `a bundle to try: (\S+ bundle export .+ --out \S+),`)
	server := find("the admin variables", `export (OUTPOST_SERVER=\S+ OUTPOST_TOKEN=\S+)`)

	browser := func(t *testing.T) *http.Client {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	signIn := func(t *testing.T, hc *http.Client, token string) {
		t.Helper()
		res, err := hc.PostForm(console+"signin", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || len(hc.Jar.Cookies(res.Request.URL)) == 0 {
			t.Fatalf("sign in at %s: got %d and %d cookies, want 303 and a session", console, res.StatusCode, len(hc.Jar.Cookies(res.Request.URL)))
		}
	}
	page := func(t *testing.T, hc *http.Client, u string) (int, string, string) {
		t.Helper()
		res, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Location"), string(b)
	}

	t.Run("the admin token signs in to the console", func(t *testing.T) {
		hc := browser(t)
		signIn(t, hc, admin)
		if code, _, body := page(t, hc, console+"tenants"); code != http.StatusOK || !strings.Contains(body, "Demo Customer") {
			t.Errorf("tenants page: %d, names the demo tenant %v", code, strings.Contains(body, "Demo Customer"))
		}
	})
	t.Run("the tenant token signs in to its own pages", func(t *testing.T) {
		hc := browser(t)
		signIn(t, hc, tenant)
		if code, loc, _ := page(t, hc, console); code != http.StatusSeeOther || !strings.Contains(loc, "/console/tenants/ten_") {
			t.Errorf("home for the tenant: %d to %q, want its tenant's page", code, loc)
		}
		if code, _, _ := page(t, hc, console+"tenants"); code != http.StatusForbidden {
			t.Errorf("admin page for the tenant: %d, want 403", code)
		}
	})
	t.Run("the status page shows the synced mirror", func(t *testing.T) {
		code, _, body := page(t, http.DefaultClient, site)
		if code != http.StatusOK || !regexp.MustCompile(`id="metadata-version">v\d+<`).MatchString(body) || !strings.Contains(body, `data-freshness`) {
			t.Errorf("status page: %d, want the held metadata version:\n%.1500s", code, body)
		}
	})
	t.Run("the mirror admin token uploads the printed bundle for a dry run", func(t *testing.T) {
		cmd := exec.Command("bash", "-c", "export "+server+"; "+export)
		cmd.Dir, cmd.Env = demo, baseEnv()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", export, err, b)
		}
		bundle := export[strings.LastIndex(export, " ")+1:]
		upload := func(token string) (int, string) {
			f, err := os.Open(bundle)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("token", token)
			fw, _ := mw.CreateFormFile("bundle", "demo.tar")
			io.Copy(fw, f)
			mw.Close()
			res, err := http.Post(site+"site/import", mw.FormDataContentType(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		if code, _ := upload("opm_not_the_token"); code != http.StatusUnauthorized {
			t.Errorf("upload with another token: %d, want 401", code)
		}
		if code, body := upload(mirrorAdmin); code != http.StatusOK || !strings.Contains(body, `id="import-result"`) {
			t.Errorf("upload with the printed token: %d, want 200 and the dry run:\n%.2000s", code, body)
		}
	})
}
