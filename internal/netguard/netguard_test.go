package netguard

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
)

func TestCheck_Addresses(t *testing.T) {
	cases := []struct {
		addr   string
		public bool
		why    string
	}{
		{"8.8.8.8", true, "public v4"},
		{"1.1.1.1", true, "public v4"},
		{"93.184.215.14", true, "public v4"},
		{"2606:4700:4700::1111", true, "public v6"},
		{"2001:4860:4860::8888", true, "public v6 just past 2001::/23"},
		{"::ffff:8.8.8.8", true, "v4-mapped public"},

		{"127.0.0.1", false, "loopback"},
		{"127.255.255.254", false, "loopback"},
		{"::1", false, "v6 loopback"},
		{"0.0.0.0", false, "unspecified"},
		{"0.1.2.3", false, "this network"},
		{"::", false, "v6 unspecified"},
		{"10.1.2.3", false, "private"},
		{"172.16.0.1", false, "private"},
		{"172.31.255.255", false, "private"},
		{"192.168.1.1", false, "private"},
		{"100.64.0.1", false, "carrier-grade NAT"},
		{"100.127.255.255", false, "carrier-grade NAT"},
		{"198.18.0.1", false, "benchmarking"},
		{"198.19.255.255", false, "benchmarking"},
		{"240.0.0.1", false, "reserved"},
		{"255.255.255.255", false, "broadcast"},
		{"169.254.169.254", false, "link-local (cloud metadata)"},
		{"fe80::1", false, "v6 link-local"},
		{"fe80::1%eth0", false, "v6 link-local with zone"},
		{"fec0::1", false, "v6 site-local"},
		{"224.0.0.1", false, "multicast"},
		{"239.255.255.250", false, "multicast"},
		{"ff02::1", false, "v6 multicast"},
		{"ff0e::1", false, "v6 global multicast"},
		{"fc00::1", false, "ULA"},
		{"fd12:3456::1", false, "ULA"},
		{"64:ff9b::a00:1", false, "NAT64 with 10.0.0.1 inside"},
		{"64:ff9b::7f00:1", false, "NAT64 with 127.0.0.1 inside"},
		{"64:ff9b::808:808", false, "NAT64 (refused whole, even with a public v4 inside)"},
		{"64:ff9b:1::a00:1", false, "local-use NAT64"},
		{"2002:a00:1::1", false, "6to4 with 10.0.0.1 inside"},
		{"2002:7f00:1::1", false, "6to4 with 127.0.0.1 inside"},
		{"2002:808:808::1", false, "6to4 (refused whole)"},
		{"::a00:1", false, "IPv4-compatible 10.0.0.1"},
		{"::7f00:1", false, "IPv4-compatible 127.0.0.1"},
		{"::ffff:10.0.0.1", false, "v4-mapped private"},
		{"::ffff:127.0.0.1", false, "v4-mapped loopback"},
		{"::ffff:169.254.169.254", false, "v4-mapped link-local"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, "Teredo"},
		{"2001:db8::1", false, "v6 documentation"},
		{"3fff::1", false, "v6 documentation (RFC 9637)"},
		{"192.0.2.1", false, "documentation"},
		{"198.51.100.1", false, "documentation"},
		{"203.0.113.1", false, "documentation"},
		{"192.0.0.8", false, "IETF protocol assignments"},
		{"192.88.99.1", false, "6to4 relay anycast"},
	}
	for _, c := range cases {
		t.Run(c.addr+" "+c.why, func(t *testing.T) {
			a := netip.MustParseAddr(c.addr)
			err := Check(a)
			if got := err == nil; got != c.public {
				t.Fatalf("Check(%s) = %v, want public=%v", a, err, c.public)
			}
			if err != nil && !errors.Is(err, ErrNotPublic) {
				t.Fatalf("error %v does not wrap ErrNotPublic", err)
			}
			if got := Public(a); got != c.public {
				t.Fatalf("Public(%s) = %v, want %v", a, got, c.public)
			}
		})
	}
	if Public(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
}

func TestControl_DialledAddress(t *testing.T) {
	ctl := Control(netip.MustParsePrefix("127.0.0.1/32"))
	cases := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "8.8.8.8:443", true},
		{"tcp4", "8.8.8.8:8080", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"tcp4", "127.0.0.1:80", true},          // allowed prefix
		{"tcp6", "[::ffff:127.0.0.1]:80", true}, // mapped form of the allowed prefix
		{"tcp4", "127.0.0.2:80", false},
		{"tcp6", "[fe80::1%lo]:80", false},
		{"tcp6", "[64:ff9b::a00:1]:443", false},
		{"udp4", "8.8.8.8:53", false},
		{"tcp4", "not-an-address", false},
	}
	for _, c := range cases {
		t.Run(c.network+" "+c.address, func(t *testing.T) {
			err := ctl(c.network, c.address, nil)
			if got := err == nil; got != c.ok {
				t.Fatalf("Control(%s, %s) = %v, want ok=%v", c.network, c.address, err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrNotPublic) {
				t.Fatalf("error %v does not wrap ErrNotPublic", err)
			}
		})
	}
}

func serve(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	s := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func TestClient_RefusesLoopback(t *testing.T) {
	var hits atomic.Int32
	s := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	cases := []struct {
		name   string
		client *http.Client
		url    string
		ok     bool
	}{
		{"guarded by ip", Client(0, false), s.URL, false},
		{"guarded by name resolving to loopback", Client(0, false), "http://localhost:" + port, false},
		{"allow private", Client(0, true), s.URL, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := hits.Load()
			resp, err := c.client.Get(c.url)
			if c.ok {
				if err != nil {
					t.Fatalf("Get = %v, want success", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("Get succeeded, want refusal")
			}
			if !errors.Is(err, ErrNotPublic) {
				t.Fatalf("Get = %v, want ErrNotPublic", err)
			}
			if got := hits.Load() - before; got != 0 {
				t.Fatalf("server saw %d requests, want 0", got)
			}
		})
	}
}

func TestClient_RefusesRedirectToPrivate(t *testing.T) {
	var inner atomic.Int32
	target := serve(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.Add(1)
		io.WriteString(w, "secret")
	}))
	front := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin", http.StatusFound)
	}))
	// 127.0.0.1 stands in for a public host: only it is let through.
	c := NewClient(Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	resp, err := c.Get(front.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("redirect to 127.0.0.2 was followed")
	}
	if !errors.Is(err, ErrNotPublic) {
		t.Fatalf("Get = %v, want ErrNotPublic", err)
	}
	if got := inner.Load(); got != 0 {
		t.Fatalf("redirect target saw %d requests, want 0", got)
	}
	// The same redirect is followed when private addresses are allowed.
	resp, err = NewClient(Options{AllowPrivate: true}).Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "secret" || inner.Load() != 1 {
		t.Fatalf("allow-private redirect got %q (%d hits), want the target's body", body, inner.Load())
	}
}

func TestClient_NoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	tr := Client(0, false).Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Fatal("guarded client uses a proxy; the check would see the proxy, not the destination")
	}
}
