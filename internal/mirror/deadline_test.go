package mirror_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// TestMirror_BodyDeadline trickles a request body to the event and lease
// routes of a running Mirror: the server stops waiting at its body
// deadline and answers, instead of holding the handler for as long as
// the client likes.
func TestMirror_BodyDeadline(t *testing.T) {
	dir := t.TempDir()
	m, err := mirror.Open(context.Background(), mirror.Config{
		DBPath: filepath.Join(dir, "mirror.db"), DataDir: dir, Listen: "127.0.0.1:0",
		BodyTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	defer func() {
		m.Close(context.Background())
		<-done
	}()
	for _, route := range []string{"POST /v1/events", "PUT /v1/leases/dev1"} {
		t.Run(route, func(t *testing.T) {
			conn, err := net.Dial("tcp", m.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var method, path string
			fmt.Sscan(route, &method, &path)
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"events\":[", method, path)
			// The client never sends the rest. A server without a body
			// deadline would wait for it until this test's own limit.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("the server was still waiting for the body after 20s")
				}
				return // connection closed by the server: fine
			}
			resp.Body.Close()
			// Without a mirror id the lease route answers 503 before
			// reading; the events route must have hit the deadline.
			if method == "POST" && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
				t.Errorf("trickled body answered %d, want a 4xx", resp.StatusCode)
			}
		})
	}
}

// TestMirror_StreamDeadlines mounts the slow-client attacks on a running
// Mirror's other routes: a client that asks for a large artifact and
// stops reading is cut after one idle period (a mirror without a write
// deadline would hold the handler, its file and its connection for as
// long as the client likes); a client that reads gets every byte through
// the chunked sendfile; a bundle upload on the status page that stalls
// is cut; and a keep-alive connection idle for longer than the write
// timeout still answers its next request (no deadline left over from the
// previous one).
func TestMirror_StreamDeadlines(t *testing.T) {
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	dir := t.TempDir()
	big := synctest.Art{ID: "art_big", Data: synctest.Random(48 << 20)}
	v.Publish(v.Manifest(1, []synctest.Art{big}))
	src, err := sync.NewControlPlane(cp.URL, cp.Credential, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A reading client must take each 4 MiB within idle, even on a busy
	// machine under the race detector; the write timeout of the other
	// routes can be short.
	const idle, write = 2 * time.Second, 200 * time.Millisecond
	m, err := mirror.Open(context.Background(), mirror.Config{
		DBPath: filepath.Join(dir, "mirror.db"), DataDir: dir, Listen: "127.0.0.1:0",
		Source: src, Sync: sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}}, SyncInterval: time.Hour,
		WriteTimeout: write, StreamIdleTimeout: idle, AdminTokenHashes: []string{mirror.HashAdminToken("admin-token")},
		Updates: realUpdates, TenantID: v.TenantID,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	defer func() {
		m.Close(context.Background())
		<-done
	}()
	base := "http://" + m.Addr().String()
	waitFor(t, "the first sync", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	size := int64(len(big.Data))

	t.Run("a client that stops reading a download is cut", func(t *testing.T) {
		conn, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		fmt.Fprintf(conn, "GET /v1/artifacts/%s/download HTTP/1.1\r\nHost: x\r\n\r\n", big.ID)
		// The client never reads: once the socket buffers are full the
		// handler's writes block. Its deadline must end it, releasing
		// the goroutine, the open blob and the connection.
		waitFor(t, "the download's handler", func() bool { return serving() > 0 })
		waitFor(t, "the stalled download's handler to be cut", func() bool { return serving() == 0 })
	})
	t.Run("a client that reads gets every byte", func(t *testing.T) {
		for _, path := range []string{"/v1/artifacts/" + big.ID + "/download", "/v1/artifacts/by-sha256/" + synctest.SHA(big.Data)} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != synctest.SHA(big.Data) {
				t.Fatalf("GET %s: %d bytes, err %v; want the %d signed bytes", path, n, err, size)
			}
		}
	})
	t.Run("a stalled bundle upload is cut", func(t *testing.T) {
		conn, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		part := "--B\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nadmin-token\r\n--B\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"b.tar\"\r\n\r\n"
		fmt.Fprintf(conn, "POST /site/import HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000000\r\n\r\n%s", part)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server was still waiting for the bundle after 20s")
			}
			return // connection closed by the server: fine
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("stalled upload answered %d, want a 4xx", resp.StatusCode)
		}
	})
	t.Run("an idle keep-alive connection answers its next request", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for i := range 2 {
			resp, err := c.Get(base + "/v1/status")
			if err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d = %d", i+1, resp.StatusCode)
			}
			time.Sleep(3 * write)
		}
	})
}

// serving counts the goroutines of this process serving an artifact.
func serving() int {
	var sb strings.Builder
	pprof.Lookup("goroutine").WriteTo(&sb, 2)
	return strings.Count(sb.String(), "mirror.(*Server).serveBlob(")
}
