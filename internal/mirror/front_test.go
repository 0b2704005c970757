package mirror_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
)

// frontPair is one mirror Server behind net/http alone (ref) and behind a
// Front (front), on loopback.
type frontPair struct {
	srv   *mirror.Server
	ref   string
	front string
	f     *mirror.Front
	pid   string
	art   string // a served artifact's id
}

func newFrontPair(t *testing.T, o mirror.FrontOptions) *frontPair {
	t.Helper()
	v, m := publishedView(t, 2, 3, 1)
	st, c, _ := syncedState(t, v)
	srv, err := mirror.NewServer(mirror.Options{State: st, Cache: c, Updates: realUpdates, ClientTokens: []string{"tok-1", "tok-2"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := httptest.NewServer(srv.Handler())
	t.Cleanup(ref.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := srv.NewFront(mirror.Listener(ln), o)
	hs := &http.Server{Handler: srv.Handler(), ConnContext: mirror.ConnContext}
	done := make(chan struct{})
	go func() { hs.Serve(f); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.Shutdown(ctx); err != nil {
			t.Errorf("front shutdown: %v", err)
		}
		// As the mirror stops: the Front first, then net/http, whose
		// Shutdown closes its listener (the Front) again.
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("http server shutdown after the front's: %v", err)
		}
		<-done
	})
	return &frontPair{srv: srv, ref: ref.Listener.Addr().String(), front: ln.Addr().String(), f: f, pid: m.Products[0].ProductID, art: state.Needed(m, nil)[0].ArtifactID}
}

// exchange writes raw to addr and reads n responses: status line,
// headers but Date, and body of each, as text.
func exchange(t *testing.T, addr, raw string, n int) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out strings.Builder
	req := &http.Request{Method: strings.Fields(raw)[0]}
	for i := range n {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			fmt.Fprintf(&out, "response %d: %v\n", i, err)
			break
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Header.Del("Date")
		if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "boundary=") {
			// A multipart answer's boundary is random.
			_, b, _ := strings.Cut(ct, "boundary=")
			body = bytes.ReplaceAll(body, []byte(b), []byte("BOUNDARY"))
			resp.Header.Set("Content-Type", strings.ReplaceAll(ct, b, "BOUNDARY"))
		}
		fmt.Fprintf(&out, "%s %s\n", resp.Proto, resp.Status)
		resp.Header.Write(&out)
		fmt.Fprintf(&out, "\n%s (%v)\n", body, err)
	}
	return out.String()
}

// TestFront_SameAnswers: whatever reaches the Front, the answer is the
// one net/http gives, byte for byte but the Date; the Front answers the
// plain update checks itself and hands everything else over.
func TestFront_SameAnswers(t *testing.T) {
	p := newFrontPair(t, mirror.FrontOptions{})
	q := "/v1/updates/check?product=" + p.pid + "&channel=stable&platform=linux&arch=x64&version=0.0.1"
	get := func(target, headers string) string {
		return "GET " + target + " HTTP/1.1\r\n" + headers + "\r\n"
	}
	std := "Host: mirror.local\r\nAuthorization: Bearer tok-2\r\n"
	art := "/v1/artifacts/" + p.art
	tests := []struct {
		name string
		raw  string
		n    int // responses
		fast int // of them answered by the Front
	}{
		{"plain", get(q, std), 1, 1},
		{"keep-alive and other headers", get(q, "host: mirror.local:8080\r\nUser-Agent: curl/8\r\nConnection: Keep-Alive\r\nAccept: */*\r\nauthorization:   Bearer tok-1  \r\n"), 1, 1},
		{"pipelined", get(q, std) + get(q, std) + get(strings.Replace(q, "0.0.1", "9.9.9", 1), std), 3, 3},
		{"pipelined, with an error", get(q, std) + get("/v1/updates/check?product=nope", std) + get(q, std), 3, 3},
		{"no token", get(q, "Host: a\r\n"), 1, 0},
		{"wrong token", get(q, "Host: a\r\nAuthorization: Bearer tok-3\r\n"), 1, 0},
		{"token scheme in lower case", get(q, "Host: a\r\nAuthorization: bearer tok-1\r\n"), 1, 0},
		{"two tokens", get(q, std+"Authorization: Bearer tok-1\r\n"), 1, 0},
		{"unknown product", get("/v1/updates/check?product=prd_nope&channel=stable&platform=linux&arch=x64&version=1", std), 1, 1},
		{"missing parameter", get("/v1/updates/check?channel=stable", std), 1, 1},
		{"bad version", get(strings.Replace(q, "0.0.1", "x.y", 1), std), 1, 1},
		{"no query", get("/v1/updates/check", std), 1, 0},
		{"repeated parameter", get(q+"&version=0.0.2", std), 1, 0},
		{"escaped parameter", get(strings.Replace(q, "0.0.1", "0.0%2E1", 1), std), 1, 1},
		{"a bad escape", get(q+"&x=%zz", std), 1, 0},
		{"an escaped repeated key", get(q+"&%76ersion=2", std), 1, 0},
		{"a semicolon", get(q+";x=1", std), 1, 0},
		{"plus in the query", get(q+"+1", std), 1, 1},
		{"fragment", get(q+"#x", std), 1, 0},
		{"bad UTF-8", get(q+"\xff", std), 1, 0},
		{"HEAD", strings.Replace(get(q, std), "GET", "HEAD", 1), 1, 0},
		{"POST", strings.Replace(get(q, std), "GET", "POST", 1), 1, 0},
		{"HTTP/1.0", strings.Replace(get(q, std), "HTTP/1.1", "HTTP/1.0", 1), 1, 0},
		{"no Host", get(q, "Authorization: Bearer tok-1\r\n"), 1, 0},
		{"two Hosts", get(q, std+"Host: b\r\n"), 1, 0},
		{"odd Host", get(q, "Host: a b\r\nAuthorization: Bearer tok-1\r\n"), 1, 0},
		{"a body", get(q, std+"Content-Length: 5\r\n") + "hello", 1, 0},
		{"an empty body", get(q, std+"Content-Length: 0\r\n"), 1, 0},
		{"chunked", get(q, std+"Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 1, 0},
		{"Connection: close", get(q, std+"Connection: close\r\n"), 1, 0},
		{"Expect", get(q, std+"Expect: 100-continue\r\n"), 1, 0},
		{"folded header", get(q, std+"X-A: 1\r\n 2\r\n"), 1, 0},
		{"space before colon", get(q, std+"X-A : 1\r\n"), 1, 0},
		{"bare LF", strings.ReplaceAll(get(q, std), "\r\n", "\n"), 1, 0},
		{"control byte in a value", get(q, std+"X-A: a\x01b\r\n"), 1, 0},
		{"other path", get("/v1/updates/checks?x=1", std), 1, 0},
		{"trailing slash", get("/v1/updates/check/?x=1", std), 1, 0},
		{"absolute form", get("http://mirror.local"+q, std), 1, 0},
		{"long head", get(q, std+"X-Pad: "+strings.Repeat("p", 5000)+"\r\n"), 1, 0},
		{"artifact", get(art, std), 1, 1},
		{"artifact, a range", get(art, std+"Range: bytes=10-99\r\n"), 1, 1},
		{"artifact, the last bytes", get(art, std+"Range: bytes=-50\r\n"), 1, 1},
		{"artifact, from an offset", get(art, std+"Range: bytes=100-\r\n"), 1, 1},
		{"artifact, a range past its end", get(art, std+"Range: bytes=100000-\r\n"), 1, 0},
		{"artifact, two ranges", get(art, std+"Range: bytes=0-1,5-6\r\n"), 1, 0},
		{"artifact, two Range headers", get(art, std+"Range: bytes=0-1\r\nRange: bytes=5-6\r\n"), 1, 0},
		{"artifact, another unit", get(art, std+"Range: items=0-1\r\n"), 1, 0},
		{"artifact, If-None-Match", get(art, std+"If-None-Match: \"x\"\r\n"), 1, 0},
		{"artifact, If-Range", get(art, std+"If-Range: \"x\"\r\nRange: bytes=0-1\r\n"), 1, 0},
		{"artifact, unknown id", get("/v1/artifacts/art_nope", std), 1, 0},
		{"artifact, download path", get(art+"/download", std), 1, 0},
		{"artifact, a query", get(art+"?x=1", std), 1, 0},
		{"artifact, dot segment", get("/v1/artifacts/../artifacts/"+p.art, std), 1, 0},
		{"artifact, HEAD", strings.Replace(get(art, std), "GET", "HEAD", 1), 1, 0},
		{"artifact, no token", get(art, "Host: a\r\n"), 1, 0},
		{"artifact, update check, a range, pipelined", get(art, std) + get(q, std) + get(art, std+"Range: bytes=0-0\r\n"), 3, 3},
		{"fast, then handed over", get(q, std) + get(q, std+"Content-Length: 2\r\n") + "{}" + get(q, std), 3, 1},
		{"an error, then handed over", get("/v1/updates/check?product=nope", std) + get(q+"&product=again", std) + get(q, std), 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.f.Answered()
			want := exchange(t, p.ref, tt.raw, tt.n)
			got := exchange(t, p.front, tt.raw, tt.n)
			if got != want {
				t.Errorf("through the Front:\n%s\nnet/http alone:\n%s", got, want)
			}
			if got, want := p.f.Answered()-before, uint64(tt.fast); got != want {
				t.Errorf("the Front answered %d requests itself, want %d", got, want)
			}
		})
	}
}

// TestFront_Timeouts: a request head that stops coming is cut after
// ReadHeaderTimeout, a keep-alive connection after IdleTimeout.
func TestFront_Timeouts(t *testing.T) {
	p := newFrontPair(t, mirror.FrontOptions{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	cut := func(t *testing.T, raw string, within time.Duration) {
		t.Helper()
		c, err := net.Dial("tcp", p.front)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, raw)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		io.Copy(io.Discard, c) // the answer, if any, then EOF
		if d := time.Since(start); d > within {
			t.Errorf("connection open %v, want cut within %v", d, within)
		}
	}
	t.Run("slow head", func(t *testing.T) { cut(t, "GET /v1/updates/check?x=1 HTTP/1.1\r\nHost: a\r\n", 2*time.Second) })
	t.Run("idle", func(t *testing.T) {
		cut(t, "GET /v1/updates/check?product="+p.pid+"&channel=stable&platform=linux&arch=x64&version=0.0.1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer tok-1\r\n\r\n", 2*time.Second)
	})
}

// TestFront_Shutdown: Shutdown closes idle keep-alive connections at once
// and returns when the Front's connections are gone.
func TestFront_Shutdown(t *testing.T) {
	p := newFrontPair(t, mirror.FrontOptions{})
	c, err := net.Dial("tcp", p.front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /v1/updates/check?product="+p.pid+"&channel=stable&platform=linux&arch=x64&version=0.0.1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer tok-1\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("answer: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if p.f.Answered() != 1 {
		t.Fatalf("answered by the Front: %d, want 1", p.f.Answered())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.f.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown took %v with one idle connection", d)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil || bytes.Contains([]byte(err.Error()), []byte("timeout")) {
		t.Errorf("idle connection after shutdown: read %d, %v; want EOF", n, err)
	}
}
