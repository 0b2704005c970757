package mirror_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// TestServer_BlobAnswersMatchServeContent checks the artifact fast path
// (open blob handles, headers written by hand, sendfile) against
// net/http's ServeContent over the same bytes for a table of requests:
// same status, body and the headers a client relies on. Each request is
// asked of a plain server and of one behind the daemon's Listener and
// ConnContext (headers with MSG_MORE, sendfile at an offset).
func TestServer_BlobAnswersMatchServeContent(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(300 << 10)}
	srv, plain := r.server(t, mirror.Options{})
	fast := sendServer(t, srv)
	r.sync(t, 1, []synctest.Art{a})
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	sha := synctest.SHA(a.Data)
	ref := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("ETag", `"`+sha+`"`)
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(a.Data))
	}))
	t.Cleanup(ref.Close)
	size := len(a.Data)
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
	}{
		{"whole", "GET", nil},
		{"head", "HEAD", nil},
		{"head range", "HEAD", map[string]string{"Range": "bytes=0-99"}},
		{"first 64 KiB", "GET", map[string]string{"Range": "bytes=0-65535"}},
		{"middle", "GET", map[string]string{"Range": "bytes=1000-1999"}},
		{"one byte", "GET", map[string]string{"Range": "bytes=5-5"}},
		{"open end", "GET", map[string]string{"Range": "bytes=100-"}},
		{"last byte open end", "GET", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size-1)}},
		{"end past size", "GET", map[string]string{"Range": fmt.Sprintf("bytes=10-%d", size+100)}},
		{"suffix", "GET", map[string]string{"Range": "bytes=-10"}},
		{"suffix larger than blob", "GET", map[string]string{"Range": fmt.Sprintf("bytes=-%d", size+5)}},
		{"whole as a range", "GET", map[string]string{"Range": fmt.Sprintf("bytes=0-%d", size-1)}},
		{"suffix zero", "GET", map[string]string{"Range": "bytes=-0"}},
		{"start past end", "GET", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)}},
		{"reversed", "GET", map[string]string{"Range": "bytes=20-10"}},
		{"garbage", "GET", map[string]string{"Range": "bytes=a-b"}},
		{"other unit", "GET", map[string]string{"Range": "items=0-1"}},
		{"spaces", "GET", map[string]string{"Range": "bytes= 0 - 9"}},
		{"two ranges", "GET", map[string]string{"Range": "bytes=0-9,20-29"}},
		{"if-none-match hit", "GET", map[string]string{"If-None-Match": `"` + sha + `"`}},
		{"if-none-match miss", "GET", map[string]string{"If-None-Match": `"x"`}},
		{"if-match miss", "GET", map[string]string{"If-Match": `"x"`}},
		{"if-range hit", "GET", map[string]string{"Range": "bytes=0-9", "If-Range": `"` + sha + `"`}},
		{"if-range miss", "GET", map[string]string{"Range": "bytes=0-9", "If-Range": `"x"`}},
	}
	for _, hs := range []*httptest.Server{plain, fast} {
		for _, tt := range tests {
			name := tt.name
			if hs == fast {
				name = "listener/" + name
			}
			t.Run(name, func(t *testing.T) {
				testBlobAnswer(t, hs.URL+"/v1/artifacts/art_a", ref.URL, tt.method, tt.hdr)
			})
		}
	}
}

// sendServer serves srv behind the daemon's Listener and ConnContext.
func sendServer(t testing.TB, srv *mirror.Server) *httptest.Server {
	t.Helper()
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener = mirror.Listener(hs.Listener)
	hs.Config.ConnContext = mirror.ConnContext
	hs.Start()
	t.Cleanup(hs.Close)
	return hs
}

// testBlobAnswer compares the answers of url and of ref to one request.
func testBlobAnswer(t *testing.T, url, ref, method string, hdr map[string]string) {
	t.Helper()
	got, gotBody := do2(t, method, url, hdr)
	want, wantBody := do2(t, method, ref, hdr)
	// Several ranges: multipart with a random boundary each.
	for _, resp := range []*http.Response{got, want} {
		if b, ok := strings.CutPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges; boundary="); ok {
			resp.Header.Set("Content-Type", "multipart/byteranges; boundary=B")
			if resp == got {
				gotBody = bytes.ReplaceAll(gotBody, []byte(b), []byte("B"))
			} else {
				wantBody = bytes.ReplaceAll(wantBody, []byte(b), []byte("B"))
			}
		}
	}
	if got.StatusCode != want.StatusCode {
		t.Fatalf("status = %d, want %d", got.StatusCode, want.StatusCode)
	}
	for _, h := range []string{"Content-Length", "Content-Range", "Accept-Ranges", "ETag"} {
		if g, w := got.Header.Get(h), want.Header.Get(h); g != w {
			t.Errorf("%s = %q, want %q", h, g, w)
		}
	}
	if ct := got.Header.Get("Content-Type"); want.StatusCode/100 == 2 && ct != want.Header.Get("Content-Type") {
		t.Errorf("Content-Type = %q, want %q", ct, want.Header.Get("Content-Type"))
	}
	if d, err := http.ParseTime(got.Header.Get("Date")); err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
		t.Errorf("Date = %q, want the current time", got.Header.Get("Date"))
	}
	if !bytes.Equal(gotBody, wantBody) {
		t.Errorf("body: got %d bytes, want %d (equal prefix: %v)", len(gotBody), len(wantBody), bytes.HasPrefix(wantBody, gotBody))
	}
}

func do2(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestServer_ConcurrentRanges has many clients ask for different ranges of
// two artifacts at once (the open handles are shared between requests
// one at a time): every answer carries exactly its bytes. Run with -race.
func TestServer_ConcurrentRanges(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(256 << 10)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(96 << 10)}
	srv, err := mirror.NewServer(mirror.Options{State: r.st, Cache: r.cache})
	if err != nil {
		t.Fatal(err)
	}
	// The daemon's listener and hook, so the sendfile-at-an-offset path
	// runs.
	hs := sendServer(t, srv)
	r.sync(t, 1, []synctest.Art{a, b})
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	arts := []synctest.Art{a, b}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for i := range 40 {
				art := arts[(c+i)%2]
				n := len(art.Data)
				start := (c*7919 + i*104729) % n
				end := min(start+(i*977)%(70<<10), n-1)
				req, _ := http.NewRequest("GET", hs.URL+"/v1/artifacts/"+art.ID, nil)
				want := art.Data
				if i%5 != 0 {
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end))
					want = art.Data[start : end+1]
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(body, want) {
					errs <- fmt.Errorf("client %d request %d (%s %s): got %d bytes, not the right ones (want %d)", c, i, art.ID, req.Header.Get("Range"), len(body), len(want))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestServer_NoStaleHandles: a blob quarantined by Verify, or removed and
// committed again, is never served from a handle opened before.
func TestServer_NoStaleHandles(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(64 << 10)}
	srv, hs := r.server(t, mirror.Options{})
	r.sync(t, 1, []synctest.Art{a})
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	url := hs.URL + "/v1/artifacts/art_a"
	for range 3 { // the handle is now open and pooled
		if resp, body := get(t, url, nil); resp.StatusCode != 200 || !bytes.Equal(body, a.Data) {
			t.Fatalf("before: status %d, %d bytes", resp.StatusCode, len(body))
		}
	}
	path := r.cache.Path(synctest.SHA(a.Data))

	t.Run("quarantined by verify", func(t *testing.T) {
		// Corrupt the blob in place: same inode, same size.
		bad := bytes.Clone(a.Data)
		bad[0] ^= 0xff
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := r.cache.Verify(context.Background())
		if err != nil || len(rep.Quarantined) != 1 {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
		if resp, _ := get(t, url, nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("after quarantine: status %d, want 503", resp.StatusCode)
		}
	})
	t.Run("committed again", func(t *testing.T) {
		if err := r.cache.Ingest(context.Background(), synctest.SHA(a.Data), int64(len(a.Data)), bytes.NewReader(a.Data)); err != nil {
			t.Fatal(err)
		}
		if resp, body := get(t, url, map[string]string{"Range": "bytes=0-9"}); resp.StatusCode != 206 || !bytes.Equal(body, a.Data[:10]) {
			t.Errorf("after re-commit: status %d, body %x", resp.StatusCode, body)
		}
	})
	t.Run("truncated blob after a new snapshot", func(t *testing.T) {
		if err := os.Truncate(path, 100); err != nil {
			t.Fatal(err)
		}
		// A new snapshot resets the handles; the wrong size is seen.
		if err := srv.Reload(); err != nil {
			t.Fatal(err)
		}
		if resp, _ := get(t, url, nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("truncated: status %d, want 503", resp.StatusCode)
		}
	})
}

// BenchmarkServer_Range64KiB serves 64 KiB ranges of a cached artifact
// over loopback TCP (the daemon's Listener and ConnContext, keep-alive
// clients): the handler path of bench/serve.sh's Range row without wrk.
func BenchmarkServer_Range64KiB(b *testing.B) {
	r := newRig(b)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(1 << 20)}
	srv, err := mirror.NewServer(mirror.Options{State: r.st, Cache: r.cache})
	if err != nil {
		b.Fatal(err)
	}
	hs := sendServer(b, srv)
	r.v.Publish(r.v.Manifest(1, []synctest.Art{a}))
	if _, err := r.s.Once(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := srv.Reload(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 10)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer client.CloseIdleConnections()
		req, _ := http.NewRequest("GET", hs.URL+"/v1/artifacts/art_a", nil)
		req.Header.Set("Range", "bytes=0-65535")
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent || n != 64<<10 {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
}

// TestMirror_RoutesThroughTheDaemon: the daemon hands clean /v1/ paths
// straight to the API and everything else to its router, so the site
// page, the API and the router's redirects answer as before.
func TestMirror_RoutesThroughTheDaemon(t *testing.T) {
	v := synctest.NewTUFVendor(t)
	base, _ := runMirror(t, v, []string{"tok"})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, method, path, token string
		want                      int
	}{
		{"status", "GET", "/v1/status", "tok", 200},
		{"status without token", "GET", "/v1/status", "", 401},
		{"update check, nothing held", "GET", "/v1/updates/check?product=p&channel=stable&platform=linux&arch=x64&version=1.0.0", "tok", 503},
		{"update check, repeated parameter", "GET", "/v1/updates/check?product=p&product=q", "tok", 400},
		{"update check without token", "GET", "/v1/updates/check", "", 401},
		{"update check, POST", "POST", "/v1/updates/check", "tok", 404},
		{"unknown API path", "GET", "/v1/nope", "tok", 404},
		{"artifact, nothing held", "GET", "/v1/artifacts/art_1", "tok", 503},
		{"artifact without token", "GET", "/v1/artifacts/art_1", "", 401},
		{"artifact, repeated parameter", "GET", "/v1/artifacts/art_1?a=1&a=2", "tok", 400},
		{"artifact, POST", "POST", "/v1/artifacts/art_1", "tok", 404},
		{"artifact, escaped id", "GET", "/v1/artifacts/art%5F1", "tok", 503},
		{"artifact, no id", "GET", "/v1/artifacts/", "tok", 404},
		{"artifact download", "GET", "/v1/artifacts/art_1/download", "tok", 503},
		{"unclean path redirected", "GET", "/v1/x/../status", "tok", http.StatusTemporaryRedirect},
		{"site page", "GET", "/", "", 200},
		{"healthz", "GET", "/healthz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
