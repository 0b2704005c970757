package tufhttp

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func get(h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://mirror.test/", nil)
	r.URL.Path = path // as decoded by the server, hostile bytes included
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// served is a small repository with bins, an artifact with bytes and a
// DirRepo copy of it.
func served(t *testing.T) (v *vendor, target string, installer []byte) {
	t.Helper()
	v = newVendor(t, tuf.ProductOptions{PerBin: 4})
	m := view(2, 30, 1)
	target, installer = withInstaller(m, 100_000)
	v.build(m)
	v.repo.Set(tuf.TargetPath(target, sumHex(installer)), installer)
	return v, target, installer
}

func TestHandler_Serves(t *testing.T) {
	v, target, installer := served(t)
	h := New(v.repo, Options{})
	snapPath := tuf.MetadataPath(metadata.SNAPSHOT, 1)
	cases := []struct {
		name, path string
		want       []byte
		cache      string
	}{
		{"first root", "/tuf/" + tuf.MetadataPath(metadata.ROOT, 1), v.rootData, "immutable"},
		{"timestamp", "/tuf/metadata/timestamp.json", v.repo.Get("metadata/timestamp.json"), "no-cache"},
		{"snapshot", "/tuf/" + snapPath, v.repo.Get(snapPath), "immutable"},
		{"document", "/tuf/" + tuf.TargetPath(tuf.DocPolicies, sumHex(docBytes(t, v))), docBytes(t, v), "immutable"},
		{"artifact", "/tuf/" + tuf.TargetPath(target, sumHex(installer)), installer, "immutable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				t.Fatalf("%s not published", c.path)
			}
			w := get(h, c.path)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", w.Code, w.Body)
			}
			if !bytes.Equal(w.Body.Bytes(), c.want) {
				t.Fatalf("body: got %d bytes, want the %d published", w.Body.Len(), len(c.want))
			}
			if got := w.Header().Get("Cache-Control"); !strings.Contains(got, c.cache) {
				t.Fatalf("Cache-Control %q, want %q", got, c.cache)
			}
			if w.Header().Get("ETag") == "" {
				t.Fatal("no ETag")
			}
		})
	}
}

// docBytes returns the policies document as published.
func docBytes(t *testing.T, v *vendor) []byte {
	t.Helper()
	for _, f := range v.state.Files() {
		if strings.HasPrefix(f.Path, "targets/docs/") && strings.HasSuffix(f.Path, ".policies.json") {
			return f.Data
		}
	}
	t.Fatal("no policies document")
	return nil
}

func TestHandler_HostileNames(t *testing.T) {
	v, target, installer := served(t)
	dir := t.TempDir()
	writeTree(t, dir, v.repo)
	// A symlink planted in the published tree must not lead out of it.
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	evil := strings.Repeat("e", 64)
	if err := os.Symlink(secret, filepath.Join(dir, "targets", "docs", evil+".x")); err != nil {
		t.Fatal(err)
	}
	dr, err := OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	good := "/tuf/" + tuf.TargetPath(target, sumHex(installer))
	paths := []string{
		"/tuf/",
		"/tuf",
		"/other/metadata/timestamp.json",
		"/tuf/metadata/",
		"/tuf/metadata/../targets/x",
		"/tuf/metadata/../../../etc/passwd",
		"/tuf/targets/../../etc/passwd",
		"/tuf/targets/docs/../../metadata/timestamp.json",
		"/tuf/metadata/./timestamp.json",
		"/tuf/metadata//timestamp.json",
		"/tuf/metadata/timestamp.json/",
		"/tuf/metadata/root.json",
		"/tuf/metadata/0.root.json",
		"/tuf/metadata/01.root.json",
		"/tuf/metadata/-1.root.json",
		"/tuf/metadata/1.timestamp.json",
		"/tuf/metadata/1..json",
		"/tuf/metadata/99999999999999999999.root.json",
		"/tuf/metadata/1.root.json\x00",
		"/tuf/metadata/1.ro\\ot.json",
		"/tuf/metadata/1.root.json.bak",
		"/tuf/metadata/2.root.json", // not published
		"/tuf/metadata/1.p-unknown.json",
		"/tuf/targets/docs/policies.json",
		"/tuf/targets/" + strings.ToUpper(sumHex(installer)) + "." + target,
		"/tuf/targets/docs/" + strings.Repeat("0", 64) + ".policies.json",
		"/tuf/targets/docs/" + strings.Repeat("0", 63) + ".policies.json",
		"/tuf/targets/docs/" + strings.Repeat("0", 64) + ".",
		"/tuf/targets/docs/" + evil + ".x",
		good + "/",
		good + "x",
		"/tuf/" + strings.Repeat("a/", 400) + "x",
		"/tuf/metadata/" + strings.Repeat("9", 600) + ".root.json",
		"/tuf/metadata/1.röot.json",
	}
	for name, repo := range map[string]Repo{"memory": v.repo, "directory": dr} {
		h := New(repo, Options{})
		t.Run(name, func(t *testing.T) {
			if w := get(h, good); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), installer) {
				t.Fatalf("good path: status %d, %d bytes", w.Code, w.Body.Len())
			}
			for _, p := range paths {
				t.Run(strconv.Quote(p), func(t *testing.T) {
					w := get(h, p)
					if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `{"error":{"code":"not_found"`) {
						t.Fatalf("status %d %s, want 404 in the wire shape", w.Code, w.Body)
					}
					if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "root:") {
						t.Fatalf("body leaks: %q", w.Body)
					}
				})
			}
		})
	}
}

// writeTree writes every file of m under dir.
func writeTree(t *testing.T, dir string, m *MemRepo) {
	t.Helper()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for p, b := range m.files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHandler_HTTP(t *testing.T) {
	v, target, installer := served(t)
	dir := t.TempDir()
	writeTree(t, dir, v.repo)
	dr, err := OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	h := New(dr, Options{})
	art := "/tuf/" + tuf.TargetPath(target, sumHex(installer))
	snap := "/tuf/" + tuf.MetadataPath(metadata.SNAPSHOT, 1)
	snapData := v.repo.Get(tuf.MetadataPath(metadata.SNAPSHOT, 1))

	t.Run("range of an artifact", func(t *testing.T) {
		w := get(h, art, "Range", "bytes=1000-1999")
		if w.Code != http.StatusPartialContent {
			t.Fatalf("status %d, want 206", w.Code)
		}
		if got, want := w.Body.Bytes(), installer[1000:2000]; !bytes.Equal(got, want) {
			t.Fatalf("range: got %d bytes, want bytes 1000-1999", len(got))
		}
	})
	t.Run("ETag of an artifact is its sha256", func(t *testing.T) {
		w := get(h, art)
		if got, want := w.Header().Get("ETag"), `"`+sumHex(installer)+`"`; got != want {
			t.Fatalf("ETag %s, want %s", got, want)
		}
		if w := get(h, art, "If-None-Match", w.Header().Get("ETag")); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Fatalf("If-None-Match: status %d with %d bytes, want 304 and none", w.Code, w.Body.Len())
		}
	})
	t.Run("metadata gzip when accepted", func(t *testing.T) {
		w := get(h, snap, "Accept-Encoding", "br, gzip;q=0.8")
		if got := w.Header().Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", got)
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, snapData) {
			t.Fatal("gunzipped snapshot differs from the published one")
		}
		if w.Header().Get("Vary") != "Accept-Encoding" {
			t.Fatalf("Vary %q", w.Header().Get("Vary"))
		}
		etag := w.Header().Get("ETag")
		if w := get(h, snap, "Accept-Encoding", "gzip", "If-None-Match", etag); w.Code != http.StatusNotModified {
			t.Fatalf("If-None-Match on gzip: status %d, want 304", w.Code)
		}
		if w := get(h, snap, "If-None-Match", etag); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), snapData) {
			t.Fatalf("identity request with the gzip ETag: status %d, want 200 and the plain bytes", w.Code)
		}
	})
	t.Run("metadata plain when gzip refused or absent", func(t *testing.T) {
		for _, ae := range []string{"", "identity", "gzip;q=0", "deflate, br", "xgzip"} {
			w := get(h, snap, "Accept-Encoding", ae)
			if w.Header().Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), snapData) {
				t.Fatalf("Accept-Encoding %q: got Content-Encoding %q", ae, w.Header().Get("Content-Encoding"))
			}
		}
	})
	t.Run("artifacts never gzip", func(t *testing.T) {
		w := get(h, art, "Accept-Encoding", "gzip")
		if w.Header().Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), installer) {
			t.Fatalf("Content-Encoding %q", w.Header().Get("Content-Encoding"))
		}
	})
	t.Run("HEAD and methods", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodHead, art, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Header().Get("Content-Length") != strconv.Itoa(len(installer)) {
			t.Fatalf("HEAD: status %d, length %q", w.Code, w.Header().Get("Content-Length"))
		}
		r = httptest.NewRequest(http.MethodPost, art, nil)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `{"error":{"code":"not_found"`) {
			t.Fatalf("POST: status %d %s, want 404 in the wire shape (no route, as on both daemons)", w.Code, w.Body)
		}
	})
	t.Run("size caps", func(t *testing.T) {
		var errs []error
		capped := New(dr, Options{MaxMetadata: 1000, MaxTarget: 10_000, OnError: func(_ *http.Request, err error) { errs = append(errs, err) }})
		if w := get(capped, snap); w.Code != http.StatusInternalServerError || bytes.Contains(w.Body.Bytes(), snapData[:100]) {
			t.Fatalf("oversized metadata: status %d, want 500 and no bytes of it", w.Code)
		}
		if w := get(capped, art); w.Code != http.StatusInternalServerError || w.Body.Len() > 100 {
			t.Fatalf("oversized target: status %d with %d bytes, want 500", w.Code, w.Body.Len())
		}
		if w := get(capped, "/tuf/metadata/timestamp.json"); w.Code != http.StatusOK {
			t.Fatalf("timestamp under the cap: status %d", w.Code)
		}
		if len(errs) != 2 {
			t.Fatalf("OnError told %d errors, want 2: %v", len(errs), errs)
		}
	})
	t.Run("prefix", func(t *testing.T) {
		hp := New(dr, Options{Prefix: "/t/acme"})
		if w := get(hp, "/t/acme/metadata/timestamp.json"); w.Code != http.StatusOK {
			t.Fatalf("status %d under the prefix", w.Code)
		}
		if w := get(hp, "/tuf/metadata/timestamp.json"); w.Code != http.StatusNotFound {
			t.Fatalf("status %d outside the prefix, want 404", w.Code)
		}
	})
}
