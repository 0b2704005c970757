package sitepage_test

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// TestHandler_ImportStreams uploads a 64 MiB bundle and checks that the
// request allocates far less than the bundle: it is streamed to the
// backend, never buffered.
func TestHandler_ImportStreams(t *testing.T) {
	h, _ := newHandler(t)
	const size = 64 << 20
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("token", "mat_admin")
		fw, _ := mw.CreateFormFile("bundle", "big.tar")
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
	r := httptest.NewRequest("POST", "/site/import", pr)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	runtime.ReadMemStats(&after)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "64.0 MiB") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB for a %d MiB bundle", allocated>>10, size>>20)
	if allocated > size/8 {
		t.Errorf("allocated %d bytes for a %d-byte bundle: it is being buffered", allocated, size)
	}
}
