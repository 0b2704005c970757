package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

const adminToken = "opm_site-page-test-admin-token"

// runMirror runs a bundle-fed mirror with an admin token until the test
// ends, and returns its base URL and data dir.
func runMirror(t *testing.T, v *synctest.TUFVendor, clientTokens []string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := mirror.Open(context.Background(), mirror.Config{
		DBPath: filepath.Join(dir, "mirror.db"), DataDir: dir, Listen: "127.0.0.1:0",
		Sync: sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}}, Updates: realUpdates, TenantID: v.TenantID,
		ClientTokens: clientTokens, AdminTokenHashes: []string{mirror.HashAdminToken(adminToken)},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
		<-done
	})
	return "http://" + m.Addr().String(), dir
}

func signedBundle(t *testing.T, v *synctest.TUFVendor, seq int64, arts []synctest.Art) []byte {
	t.Helper()
	v.Publish(v.Manifest(seq, arts))
	return v.Bundle(t, 0)
}

// upload posts the status page's upload form: the token field, then the
// bundle.
func upload(t *testing.T, base, token string, data []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("token", token)
	fw, _ := mw.CreateFormFile("bundle", "bundle.tar")
	fw.Write(data)
	mw.Close()
	res, err := http.Post(base+"/site/import", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func staged(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func heldSequence(t *testing.T, base, clientToken string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+clientToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("/v1/status Content-Type: got %q, want JSON", ct)
	}
	var st mirror.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Snapshot == nil {
		return 0
	}
	return st.Snapshot.Sequence
}

var hiddenRE = regexp.MustCompile(`name="(staging|nonce)" value="([^"]+)"`)

func hidden(t *testing.T, page string) url.Values {
	t.Helper()
	out := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, 2) {
		out.Set(m[1], m[2])
	}
	if out.Get("staging") == "" || out.Get("nonce") == "" {
		t.Fatalf("no staging/nonce in the dry run page")
	}
	return out
}

func TestSitePage_StatusAndImport(t *testing.T) {
	v := synctest.NewTUFVendor(t)
	base, dir := runMirror(t, v, []string{"client-token"})
	a := synctest.Art{ID: "art_a", Data: synctest.Random(64 << 10)}
	good := signedBundle(t, v, 1, []synctest.Art{a})

	t.Run("the status page is HTML at / and JSON stays at /v1/status", func(t *testing.T) {
		res, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("GET /: got %d %q, want 200 HTML", res.StatusCode, ct)
		}
		if !strings.Contains(string(b), "never") {
			t.Errorf("a mirror that never synced should say so")
		}
		if got := heldSequence(t, base, "client-token"); got != 0 {
			t.Errorf("held: got %d, want 0", got)
		}
		// /v1/ still needs the client token.
		res, err = http.Get(base + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("/v1/status without a client token: got %d, want 401", res.StatusCode)
		}
	})
	t.Run("an upload without the admin token is refused before it is staged", func(t *testing.T) {
		for _, tok := range []string{"", "wrong", "client-token"} {
			code, _ := upload(t, base, tok, good)
			if code != http.StatusUnauthorized && code != http.StatusBadRequest {
				t.Errorf("token %q: got %d, want 401", tok, code)
			}
		}
		if n := staged(t, dir); n != 0 {
			t.Errorf("staged files: got %d, want 0", n)
		}
	})
	t.Run("a bundle from another vendor is refused and not kept", func(t *testing.T) {
		other := synctest.NewTUFVendor(t)
		code, page := upload(t, base, adminToken, signedBundle(t, other, 1, []synctest.Art{a}))
		if code != http.StatusUnprocessableEntity || !strings.Contains(page, "refused") {
			t.Errorf("got %d, want 422 naming the refusal", code)
		}
		if n := staged(t, dir); n != 0 {
			t.Errorf("staged files: got %d, want 0", n)
		}
	})
	t.Run("a dry run changes nothing and discard removes it", func(t *testing.T) {
		code, page := upload(t, base, adminToken, good)
		if code != http.StatusOK {
			t.Fatalf("dry run: got %d, want 200", code)
		}
		if n := staged(t, dir); n != 1 {
			t.Errorf("staged files: got %d, want 1", n)
		}
		if got := heldSequence(t, base, "client-token"); got != 0 {
			t.Errorf("held after a dry run: got %d, want 0", got)
		}
		res, err := http.PostForm(base+"/site/import/discard", hidden(t, page))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusSeeOther {
			t.Errorf("discard: got %d", res.StatusCode)
		}
		if n := staged(t, dir); n != 0 {
			t.Errorf("staged files after discard: got %d, want 0", n)
		}
	})
	t.Run("commit imports through the pipeline", func(t *testing.T) {
		code, page := upload(t, base, adminToken, good)
		if code != http.StatusOK {
			t.Fatalf("dry run: got %d, want 200", code)
		}
		if !strings.Contains(page, "1") {
			t.Errorf("the dry run does not name version 1")
		}
		form := hidden(t, page)
		res, err := http.PostForm(base+"/site/import/commit", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("commit: got %d, want 200", res.StatusCode)
		}
		if got := heldSequence(t, base, "client-token"); got != 1 {
			t.Errorf("held after commit: got %d, want 1", got)
		}
		if n := staged(t, dir); n != 0 {
			t.Errorf("staged files after commit: got %d, want 0", n)
		}
		// The one-time value is spent.
		res, err = http.PostForm(base+"/site/import/commit", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("second commit: got %d, want 403", res.StatusCode)
		}
		// The page shows the import.
		res, err = http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), "fresh") {
			t.Errorf("after an import the page should show the mirror fresh")
		}
	})
}

func TestSitePage_AdminTokenConfig(t *testing.T) {
	v := synctest.NewTUFVendor(t)
	dir := t.TempDir()
	_, err := mirror.Open(context.Background(), mirror.Config{
		DBPath: filepath.Join(dir, "mirror.db"), DataDir: dir, Listen: "127.0.0.1:0",
		Sync: sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}}, AdminTokenHashes: []string{adminToken},
	})
	if err == nil || !strings.Contains(err.Error(), "hex sha256") {
		t.Errorf("a token in place of its hash: got %v, want a refusal", err)
	}
	t.Run("HashAdminToken is the hex sha256", func(t *testing.T) {
		got := mirror.HashAdminToken("abc")
		want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

// TestSitePage_UploadStreams uploads a bundle with a 32 MiB artifact to a
// serving mirror's status page and checks that the mirror's process
// allocates far less than that: the upload goes to the staging file and
// the dry run reads it back as a stream.
func TestSitePage_UploadStreams(t *testing.T) {
	v := synctest.NewTUFVendor(t)
	base, dir := runMirror(t, v, nil)
	a := synctest.Art{ID: "art_big", Data: synctest.Random(32 << 20)}
	v.Publish(v.Manifest(1, []synctest.Art{a}))
	bundled := v.Bundle(t, 0)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("token", adminToken)
		fw, _ := mw.CreateFormFile("bundle", "big.tar")
		if _, err := fw.Write(bundled); err != nil {
			pw.CloseWithError(err)
			return
		}
		_ = mw.Close()
		_ = pw.Close()
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := http.Post(base+"/site/import", mw.FormDataContentType(), pr)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	runtime.ReadMemStats(&after)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("dry run: got %d, want 200", res.StatusCode)
	}
	if n := staged(t, dir); n != 1 {
		t.Errorf("staged files: got %d, want 1", n)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("client and mirror allocated %d KiB for a 32 MiB bundle", allocated>>10)
	if allocated > 8<<20 {
		t.Errorf("allocated %d bytes for a 32 MiB bundle: it is being buffered", allocated)
	}
}
