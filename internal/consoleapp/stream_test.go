package consoleapp_test

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

// TestBackend_PublishStreams publishes a 64 MiB file through the console
// over the real App and disk blob store: the request allocates far less
// than the file's size (the file part goes into App.UploadArtifact as a
// stream), and the stored artifact has the file's size.
func TestBackend_PublishStreams(t *testing.T) {
	w := setup(t)
	c, err := console.New(console.Options{Backend: w.b})
	if err != nil {
		t.Fatal(err)
	}
	// Sign in and read the CSRF token.
	r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(url.Values{"token": {w.adminSecret}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, r)
	var cookie *http.Cookie
	for _, k := range rec.Result().Cookies() {
		if k.Name == console.CookieName {
			cookie = k
		}
	}
	if cookie == nil {
		t.Fatalf("sign in: %d, no cookie", rec.Code)
	}
	r = httptest.NewRequest("GET", "/console/products/"+w.product, nil)
	r.AddCookie(cookie)
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, r)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("product page %d without a CSRF token", rec.Code)
	}

	const size = 64 << 20
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("csrf", m[1])
		for k, v := range map[string]string{"channel": "stable", "version": "9.0.0", "platform": "linux", "arch": "x64", "installer_type": "tar.gz"} {
			_ = mw.WriteField(k, v)
		}
		fw, _ := mw.CreateFormFile("file", "big.bin")
		chunk := make([]byte, 64<<10)
		for range size / len(chunk) {
			if _, err := fw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		_ = mw.Close()
		_ = pw.Close()
	}()
	r = httptest.NewRequest("POST", "/console/products/"+w.product+"/releases", pr)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.AddCookie(cookie)
	rec = httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c.ServeHTTP(rec, r)
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("publish: status %d: %.500s", rec.Code, rec.Body)
	}
	rs, _, err := w.app.Releases(w.op, w.product, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var rel *catalog.Release
	for _, x := range rs {
		if x.Version == "9.0.0" {
			rel = x
		}
	}
	if rel == nil {
		t.Fatal("no release 9.0.0")
	}
	v, err := w.app.Release(w.op, rel.ReleaseID)
	if err != nil || len(v.Artifacts) != 1 {
		t.Fatalf("release 9.0.0: %+v, %v", v, err)
	}
	a, err := w.app.Artifact(controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "t"}), v.Artifacts[0].ArtifactID)
	if err != nil {
		t.Fatal(err)
	}
	if a.SizeBytes != size {
		t.Errorf("stored %d bytes, want %d", a.SizeBytes, size)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB for a %d MiB publish", allocated>>10, size>>20)
	if allocated > size/8 {
		t.Errorf("allocated %d bytes for a %d-byte upload: the file is being buffered", allocated, size)
	}
}
