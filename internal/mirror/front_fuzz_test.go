package mirror

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzParseFront: whatever head the Front takes, net/http reads the same
// request from the same bytes: a GET in HTTP/1.1 of the same target
// (path and raw query), the same Host, Authorization and Range, no body,
// keep-alive, and ending where the Front thinks it ends. A head the two
// read differently would be answered by the Front as something net/http
// never saw (a smuggling or confusion bug); declining is always safe.
func FuzzParseFront(f *testing.F) {
	for _, s := range []string{
		"GET /v1/updates/check?product=p&version=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n\r\n",
		"GET /v1/artifacts/art_1 HTTP/1.1\r\nhost: m:8441\r\nRange: bytes=0-9\r\nConnection: keep-alive\r\n\r\n",
		"GET /v1/artifacts/art_1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nX: \x80\xff\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost:\ta\t\r\nAuthorization:Bearer  t \r\n\r\n",
		"GET /x?a=1&a=2 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"GET /v1/updates/check?v=1%2E0+b&c=%zz;d HTTP/1.1\r\nHost: a\r\n\r\n",
		// Found by the fuzzer: an escape in the path, which net/http
		// refuses ("/%") or unescapes ("/%41").
		"GET /% HTTP/1.1\r\nHost:0\r\n\r\n",
		"GET /v1/artifacts/%41 HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		target, h, ok := parseFront(b)
		if !ok {
			return
		}
		br := bufio.NewReader(bytes.NewReader(b))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("the Front takes %q; net/http refuses it: %v", b, err)
		}
		if left, _ := io.ReadAll(br); len(left) != 0 {
			t.Errorf("%q: net/http's request ends %d bytes before the Front's", b, len(left))
		}
		if r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) || r.ProtoMinor != 1 || r.ProtoMajor != 1 {
			t.Errorf("%q: net/http reads %s %s", b, r.Method, r.Proto)
		}
		if r.RequestURI != string(target) || r.URL.RawQuery != rawQuery(target) || r.URL.Path != pathOf(target) {
			t.Errorf("%q: the Front's target %q; net/http's %q (path %q, query %q)", b, target, r.RequestURI, r.URL.Path, r.URL.RawQuery)
		}
		if r.Host != string(h.host) {
			t.Errorf("%q: Host %q, net/http %q", b, h.host, r.Host)
		}
		if got := r.Header.Get("Authorization"); got != string(h.authz) || len(r.Header.Values("Authorization")) > 1 {
			t.Errorf("%q: Authorization %q, net/http %q", b, h.authz, r.Header.Values("Authorization"))
		}
		if h.ranges == 1 && r.Header.Get("Range") != string(h.rng) || h.ranges != len(r.Header.Values("Range")) {
			t.Errorf("%q: Range %q (%d), net/http %q", b, h.rng, h.ranges, r.Header.Values("Range"))
		}
		if r.ContentLength != 0 || len(r.TransferEncoding) != 0 || r.Close {
			t.Errorf("%q: net/http reads a body (%d, %v) or a close (%v)", b, r.ContentLength, r.TransferEncoding, r.Close)
		}
		if n, _ := r.Body.Read(make([]byte, 1)); n != 0 {
			t.Errorf("%q: net/http reads a body byte", b)
		}
	})
}

func pathOf(target []byte) string {
	p, _, _ := bytes.Cut(target, []byte("?"))
	return string(p)
}

func rawQuery(target []byte) string {
	_, q, _ := bytes.Cut(target, []byte("?"))
	return string(q)
}
