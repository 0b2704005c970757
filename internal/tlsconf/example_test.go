package tlsconf_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"

	"github.com/outpost/outpost/internal/tlsconf"
)

// A daemon serving HTTPS: the listener is wrapped, and Run keeps the
// certificate current until ctx ends (run it in the daemon's Group).
func Example_server() {
	ctx := context.Background()
	cfg := tlsconf.Config{CertFile: "/etc/outpost/tls.crt", KeyFile: "/etc/outpost/tls.key"}
	ln, err := net.Listen("tcp", "127.0.0.1:8440")
	if err != nil {
		return
	}
	if cfg.Enabled() {
		ts, err := tlsconf.NewServer(cfg, slog.Default())
		if err != nil {
			return
		}
		ln = tls.NewListener(ln, ts.Config)
		go ts.Run(ctx)
	}
	_ = (&http.Server{Handler: http.NotFoundHandler()}).Serve(ln)
}

// A client that trusts only the site's private CA.
func Example_client() {
	tc, err := tlsconf.NewClient(tlsconf.ClientConfig{CAFile: "/etc/outpost/site-ca.pem"}, slog.Default())
	if err != nil {
		return
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	_ = &http.Client{Transport: tr}
}
