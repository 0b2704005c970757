package sitepage_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sitepage"
	"github.com/outpost/outpost/internal/sitepage/sitepagetest"
)

func newHandler(t *testing.T) (*sitepage.Handler, *sitepagetest.Fake) {
	t.Helper()
	now := func() time.Time { return time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC) }
	f := sitepagetest.New(now, "mat_admin")
	h, err := sitepage.New(sitepage.Options{Backend: f, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return h, f
}

func upload(t *testing.T, h http.Handler, token string, data []byte, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if token != "" {
		_ = mw.WriteField("token", token)
	}
	fw, _ := mw.CreateFormFile("bundle", "acme-42.tar")
	_, _ = fw.Write(data)
	_ = mw.Close()
	r := httptest.NewRequest("POST", "/site/import", &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var hiddenRe = regexp.MustCompile(`name="(staging|nonce)" value="([^"]+)"`)

func post(h http.Handler, path string, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler_StatusPage(t *testing.T) {
	h, _ := newHandler(t)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	if !regexp.MustCompile(`id="freshness"[^>]*>stale<`).MatchString(body) {
		t.Errorf("freshness is not stale")
	}
	for _, want := range []string{"v41", "in 20h 0m", "rollback refused", "734.0 MiB", "7 / 10", "Acme App", `type="file"`, `name="token"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	t.Run("other paths are 404", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/nope", nil))
		if w.Code != http.StatusNotFound {
			t.Errorf("status %d, want 404", w.Code)
		}
	})
}

func TestHandler_ImportDryRunThenCommit(t *testing.T) {
	h, f := newHandler(t)
	data := bytes.Repeat([]byte("bundle"), 50000)
	w := upload(t, h, "mat_admin", data, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("dry run: status %d: %s", w.Code, w.Body)
	}
	body := w.Body.String()
	if !strings.Contains(body, "v41 → v42") || !strings.Contains(body, "Commit import") {
		t.Fatalf("dry run result lacks the report: %s", body)
	}
	if len(f.Committed()) != 0 {
		t.Fatal("a dry run committed")
	}
	m := hiddenRe.FindAllStringSubmatch(body, -1)
	form := url.Values{}
	for _, x := range m[:2] {
		form.Set(x[1], x[2])
	}
	t.Run("a wrong nonce does not commit", func(t *testing.T) {
		bad := url.Values{"staging": {form.Get("staging")}, "nonce": {"guess"}}
		if w := post(h, "/site/import/commit", bad, nil); w.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403", w.Code)
		}
	})
	t.Run("a cross-site commit is refused", func(t *testing.T) {
		if w := post(h, "/site/import/commit", form, map[string]string{"Origin": "http://evil.example"}); w.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403", w.Code)
		}
	})
	w = post(h, "/site/import/commit", form, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Bundle imported") {
		t.Fatalf("commit: status %d: %s", w.Code, w.Body)
	}
	if got := len(f.Committed()); got != 1 {
		t.Errorf("committed %d bundles, want 1", got)
	}
	t.Run("the nonce is single-use", func(t *testing.T) {
		if w := post(h, "/site/import/commit", form, nil); w.Code != http.StatusForbidden {
			t.Errorf("status %d, want 403", w.Code)
		}
	})
	t.Run("the page shows the new state", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if b := w.Body.String(); !regexp.MustCompile(`id="freshness"[^>]*>fresh<`).MatchString(b) || !strings.Contains(b, `id="metadata-version">v42<`) {
			t.Errorf("status page not updated")
		}
	})
}

func TestHandler_ImportRefusals(t *testing.T) {
	h, f := newHandler(t)
	cases := []struct {
		name  string
		token string
		data  string
		hdr   map[string]string
		want  int
		text  string
	}{
		{"no token", "", "bundle", nil, http.StatusUnauthorized, "not accepted"},
		{"wrong token", "mat_wrong", "bundle", nil, http.StatusUnauthorized, "not accepted"},
		{"token in the header", "", "bundle", map[string]string{"Authorization": "Bearer mat_admin"}, http.StatusOK, "Dry run"},
		{"cross-site", "mat_admin", "bundle", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "another site"},
		{"invalid bundle", "mat_admin", "BAD bundle", nil, http.StatusUnprocessableEntity, "signature does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := upload(t, h, tc.token, []byte(tc.data), tc.hdr)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.text) {
				t.Errorf("status %d, want %d with %q: %s", w.Code, tc.want, tc.text, w.Body)
			}
		})
	}
	if len(f.Committed()) != 0 {
		t.Error("a refused upload committed")
	}
}

func TestHandler_TokenCheckedBeforeTheFileIsRead(t *testing.T) {
	h, _ := newHandler(t)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("token", "mat_wrong")
		fw, _ := mw.CreateFormFile("bundle", "x.tar")
		_, _ = fw.Write([]byte("first chunk"))
		// An endless bundle: a handler that read the file before
		// checking the token would never answer.
		_, _ = io.Copy(fw, zeros{})
		_ = mw.Close()
		_ = pw.Close()
	}()
	r := httptest.NewRequest("POST", "/site/import", pr)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	_ = pr.CloseWithError(io.ErrClosedPipe)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", w.Code)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestHandler_DryRunExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := sitepagetest.New(clock, "mat_admin")
	h, err := sitepage.New(sitepage.Options{Backend: f, Now: clock, StagingTTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	first := upload(t, h, "mat_admin", []byte("one"), nil)
	m := hiddenRe.FindAllStringSubmatch(first.Body.String(), -1)
	form := url.Values{}
	for _, x := range m[:2] {
		form.Set(x[1], x[2])
	}
	mu.Lock()
	now = now.Add(11 * time.Minute)
	mu.Unlock()
	// The next dry run sweeps the expired one, which the backend discards.
	upload(t, h, "mat_admin", []byte("two"), nil)
	if got, want := f.Staged(), 1; got != want {
		t.Errorf("staged imports = %d, want %d (the expired one discarded)", got, want)
	}
	if w := post(h, "/site/import/commit", form, nil); w.Code != http.StatusForbidden {
		t.Errorf("commit of an expired dry run: status %d, want 403", w.Code)
	}
	if len(f.Committed()) != 0 {
		t.Error("an expired dry run was committed")
	}
}

func TestHandler_FormsAreLabelled(t *testing.T) {
	h, _ := newHandler(t)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	page := w.Body.String()
	controls := regexp.MustCompile(`<(input|select)\b[^>]*>`).FindAllString(page, -1)
	if len(controls) < 2 {
		t.Fatalf("found %d controls", len(controls))
	}
	for _, c := range controls {
		if strings.Contains(c, `type="hidden"`) {
			continue
		}
		id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(c)
		if id == nil || !strings.Contains(page, `<label for="`+id[1]+`"`) {
			t.Errorf("control without a label: %s", c)
		}
	}
}
