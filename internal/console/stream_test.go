package console_test

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/outpost/outpost/internal/console/consoletest"
)

// TestConsole_PublishStreams sends a 64 MiB artifact through the publish
// form and checks that the whole request allocates far less than the
// file's size: the console hands the file part to the backend as a
// stream and never buffers it (in memory or in a temporary file).
func TestConsole_PublishStreams(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.seed.AdminToken)
	const size = 64 << 20
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("csrf", s.csrf)
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
	r := httptest.NewRequest("POST", "/console/products/"+e.seed.App.ProductID+"/releases", pr)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.AddCookie(s.cookie)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := e.do(r)
	runtime.ReadMemStats(&after)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	e.f.Lock()
	var up consoletest.Upload
	for _, u := range e.f.Uploads {
		up = u
	}
	e.f.Unlock()
	if up.Size != size {
		t.Fatalf("backend read %d bytes, want %d", up.Size, size)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB for a %d MiB upload", allocated>>10, size>>20)
	if allocated > size/8 {
		t.Errorf("allocated %d bytes for a %d-byte upload: the file is being buffered", allocated, size)
	}
}
