package controlplane

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// externalClient fetches EXTERNAL artifact URLs. Unless allowPrivate, it
// refuses to connect to loopback, private, link-local and other
// non-public addresses, checked on the address actually dialled (after DNS,
// and for every redirect), so an artifact URL cannot be used to probe the
// vendor's own network.
func externalClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("external url: unexpected address %q", address)
			}
			if !publicAddr(ap.Addr()) {
				return fmt.Errorf("external url: %s is not a public address (set allow_private_external_urls to fetch from it)", ap.Addr())
			}
			return nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	tr.Proxy = nil // the address check must see the real destination
	return &http.Client{Timeout: timeout, Transport: tr}
}

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(a) && // carrier-grade NAT
		!netip.MustParsePrefix("fc00::/7").Contains(a)
}
