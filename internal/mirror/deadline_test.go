package mirror_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror"
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
