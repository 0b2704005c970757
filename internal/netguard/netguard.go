// Package netguard keeps outbound fetches to URLs that someone else chose
// (EXTERNAL artifact URLs, webhooks) off the operator's own network: a
// destination must be a public address by the IANA special-purpose address
// registries, as maintained by code.dny.dev/ssrf.
//
// The check runs on the address actually dialled, after DNS resolution and
// for every redirect, as a net.Dialer Control function, so neither a DNS
// name that resolves to 10.0.0.1 nor a redirect to 127.0.0.1 gets through.
// Beyond the registries' IPv4 list (private, CGNAT 100.64.0.0/10,
// benchmarking 198.18.0.0/15, reserved 240.0.0.0/4, multicast, …), every
// IPv6 address outside 2000::/3 is refused (loopback, link-local, ULA,
// multicast, NAT64 64:ff9b::/96, IPv4-compatible ::a.b.c.d), as are 6to4
// 2002::/16 and the other special blocks inside it. An IPv4-mapped address
// (::ffff:a.b.c.d) is judged as the IPv4 address it carries.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// ErrNotPublic is wrapped by every refusal: the destination is not a
// public address.
var ErrNotPublic = errors.New("not a public address")

var guardian = ssrf.New(ssrf.WithAnyPort())

// Check returns nil when a is a public unicast address, otherwise an error
// wrapping ErrNotPublic that names the address and the registry block
// that excludes it.
func Check(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrNotPublic)
	}
	a = a.Unmap().WithZone("")
	if err := guardian.SafeAddr(a); err != nil {
		return fmt.Errorf("%w: %w", ErrNotPublic, err)
	}
	return nil
}

// Public reports whether a is a public unicast address (Check is nil).
func Public(a netip.Addr) bool { return Check(a) == nil }

// Options configures a guarded client.
type Options struct {
	// Timeout bounds each whole request, redirects included (0: none).
	Timeout time.Duration
	// AllowPrivate turns the address check off: for a site whose artifact
	// server is on its own network.
	AllowPrivate bool
	// Allow lists prefixes let through although not public (tests, or one
	// known internal host); checked before the registries.
	Allow []netip.Prefix
}

// Control returns a net.Dialer Control function that refuses non-TCP
// networks and every destination Check refuses, except those in allow.
func Control(allow ...netip.Prefix) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if network != "tcp4" && network != "tcp6" {
			return fmt.Errorf("%w: network %q is not tcp", ErrNotPublic, network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unexpected address %q", ErrNotPublic, address)
		}
		a := ap.Addr().Unmap()
		for _, p := range allow {
			if p.Contains(a) {
				return nil
			}
		}
		return Check(a)
	}
}

// NewClient returns an HTTP client whose every connection, redirects
// included, goes only to addresses the check lets through. It uses no
// proxy: the check must see the real destination.
func NewClient(o Options) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		d.Control = Control(o.Allow...)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: o.Timeout, Transport: tr}
}

// Client is NewClient with a timeout and the allowPrivate switch: a drop-in
// for the control plane's external artifact client.
func Client(timeout time.Duration, allowPrivate bool) *http.Client {
	return NewClient(Options{Timeout: timeout, AllowPrivate: allowPrivate})
}
