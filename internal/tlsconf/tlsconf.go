// Package tlsconf builds the TLS configurations of Outpost's daemons and
// clients from files named in their configuration.
//
// A server serves the certificate in tls_cert_file / tls_key_file and
// reloads it, without a restart, on SIGHUP and when either file changes
// (polled: size, modification time and identity, so a rename or a
// Kubernetes-style symlink swap is seen). A new pair that does not load
// (unreadable, not PEM, key not matching the certificate) is logged and
// ignored: the last good pair keeps being served. Optionally the server
// asks for client certificates issued by a private CA (mTLS).
//
// A client trusts only the CA in its ca_file when one is given (a private
// CA pinned: certificates from public CAs are refused) and may present
// its own certificate for mTLS.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/wire"
)

// Client-certificate modes of a server.
const (
	ClientAuthNone     = "none"     // no client certificate asked for
	ClientAuthOptional = "optional" // verified when given; RequireClientCert guards routes
	ClientAuthRequire  = "require"  // every connection must present one
)

// DefaultReloadInterval is how often a server checks its files when
// Config.ReloadInterval is 0.
const DefaultReloadInterval = 30 * time.Second

// Config is the TLS part of a daemon's configuration; embed it with
// `mapstructure:",squash"`. TLS is on when CertFile is set.
type Config struct {
	CertFile string `mapstructure:"tls_cert_file"`
	KeyFile  string `mapstructure:"tls_key_file"`
	// ClientCAFile holds the PEM CA certificates client certificates must
	// chain to; required for ClientAuth optional or require.
	ClientCAFile string `mapstructure:"tls_client_ca_file"`
	// ClientAuth is none (default), optional or require.
	ClientAuth string `mapstructure:"tls_client_auth"`
	// ReloadInterval is how often the files are checked for a change
	// (default 30s; SIGHUP reloads at once).
	ReloadInterval time.Duration `mapstructure:"tls_reload_interval"`
}

// Enabled reports whether TLS is configured.
func (c Config) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Validate checks the configuration without reading the files.
func (c Config) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("tls: tls_cert_file and tls_key_file must be set together")
	}
	switch c.ClientAuth {
	case "", ClientAuthNone:
	case ClientAuthOptional, ClientAuthRequire:
		if c.ClientCAFile == "" {
			return fmt.Errorf("tls: tls_client_auth %s needs tls_client_ca_file", c.ClientAuth)
		}
	default:
		return fmt.Errorf("tls: tls_client_auth must be none, optional or require, not %q", c.ClientAuth)
	}
	if c.ClientCAFile != "" && !c.Enabled() {
		return errors.New("tls: tls_client_ca_file needs tls_cert_file and tls_key_file")
	}
	if c.ReloadInterval < 0 {
		return errors.New("tls: tls_reload_interval must not be negative")
	}
	return nil
}

// Server is a daemon's TLS side: Config goes to tls.NewListener (or
// http.Server.TLSConfig), and Run keeps the certificate current.
type Server struct {
	Config  *tls.Config
	KeyPair *KeyPair
	every   time.Duration
}

// NewServer loads the key pair and the client CA of c and returns the
// server TLS configuration (TLS 1.2 at least). A pair that does not load
// is an error here: a daemon does not start without its certificate.
func NewServer(c Config, log *slog.Logger) (*Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, errors.New("tls: no tls_cert_file configured")
	}
	kp, err := LoadKeyPair(c.CertFile, c.KeyFile, log)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.GetCertificate}
	if c.ClientAuth == ClientAuthOptional || c.ClientAuth == ClientAuthRequire {
		pool, err := LoadPool(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_client_ca_file: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if c.ClientAuth == ClientAuthRequire {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	every := c.ReloadInterval
	if every == 0 {
		every = DefaultReloadInterval
	}
	return &Server{Config: tc, KeyPair: kp, every: every}, nil
}

// Run reloads the certificate on SIGHUP and when its files change, until
// ctx ends; it returns ctx.Err().
func (s *Server) Run(ctx context.Context) error {
	hup, stop := NotifyHUP()
	defer stop()
	return s.KeyPair.Watch(ctx, s.every, hup)
}

// NotifyHUP relays SIGHUP to the returned channel until stop is called.
func NotifyHUP() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// KeyPair is a certificate and key loaded from two files, reloadable while
// it is being served.
type KeyPair struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	gen               atomic.Uint64

	mu    sync.Mutex // serialises reloads
	stamp stamp      // of the files last tried (loaded or not)
}

// stamp identifies the versions of the two files.
type stamp struct{ cert, key os.FileInfo }

func (s stamp) same(o stamp) bool {
	return sameFile(s.cert, o.cert) && sameFile(s.key, o.key)
}

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func statPair(certFile, keyFile string) stamp {
	var s stamp
	s.cert, _ = os.Stat(certFile)
	s.key, _ = os.Stat(keyFile)
	return s
}

// LoadKeyPair loads a PEM certificate (chain) and its key. log (nil:
// slog.Default) receives reload reports.
func LoadKeyPair(certFile, keyFile string, log *slog.Logger) (*KeyPair, error) {
	if log == nil {
		log = slog.Default()
	}
	k := &KeyPair{certFile: certFile, keyFile: keyFile, log: log}
	st := statPair(certFile, keyFile)
	c, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	k.stamp = st
	k.cert.Store(c)
	k.gen.Store(1)
	return k, nil
}

func load(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parse %s: %w", certFile, err)
		}
	}
	return &c, nil
}

// Reload loads the files again. On failure the error is logged and
// returned, and the pair in service is kept.
func (k *KeyPair) Reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reload(statPair(k.certFile, k.keyFile))
}

// reload is Reload with k.mu held and the files' stamp taken before
// reading them.
func (k *KeyPair) reload(st stamp) error {
	k.stamp = st
	c, err := load(k.certFile, k.keyFile)
	if err != nil {
		k.log.Warn("tls: new certificate not loaded; still serving the previous one",
			"err", err, "serial", k.Leaf().SerialNumber.String())
		return err
	}
	k.cert.Store(c)
	k.gen.Add(1)
	k.log.Info("tls: certificate loaded", "cert_file", k.certFile, "subject", c.Leaf.Subject.String(),
		"serial", c.Leaf.SerialNumber.String(), "not_after", c.Leaf.NotAfter)
	if time.Now().After(c.Leaf.NotAfter) {
		k.log.Warn("tls: the loaded certificate has expired", "not_after", c.Leaf.NotAfter)
	}
	return nil
}

// ReloadIfChanged reloads when either file changed since it was last
// tried. A failed pair is tried again only after another change.
func (k *KeyPair) ReloadIfChanged() (changed bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := statPair(k.certFile, k.keyFile)
	if st.same(k.stamp) {
		return false, nil
	}
	return true, k.reload(st)
}

// Watch reloads the pair on every value from hup (may be nil) and when its
// files change, checked every interval, until ctx ends; it returns
// ctx.Err().
func (k *KeyPair) Watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal) error {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hup:
			k.log.Info("tls: SIGHUP: reloading the certificate")
			_ = k.Reload()
		case <-t.C:
			_, _ = k.ReloadIfChanged()
		}
	}
}

// Leaf is the certificate in service.
func (k *KeyPair) Leaf() *x509.Certificate { return k.cert.Load().Leaf }

// Generation counts successful loads (1 after LoadKeyPair).
func (k *KeyPair) Generation() uint64 { return k.gen.Load() }

// GetCertificate serves the pair in service (tls.Config.GetCertificate).
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cert.Load(), nil
}

// GetClientCertificate presents the pair as a client certificate
// (tls.Config.GetClientCertificate), reloading it first if its files
// changed: a client has no poll loop of its own.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	_, _ = k.ReloadIfChanged()
	return k.cert.Load(), nil
}

// LoadPool reads PEM CA certificates from file into a new pool holding
// only them.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ClientConfig is the TLS part of a client's configuration (the mirror's
// sync client, updatectl, the client package).
type ClientConfig struct {
	// CAFile pins the CA certificates (PEM) a server must chain to; the
	// system roots are not used when it is set.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a client certificate for mTLS.
	CertFile string `mapstructure:"tls_client_cert_file"`
	KeyFile  string `mapstructure:"tls_client_key_file"`
}

// NewClient returns a client TLS configuration (TLS 1.2 at least) for c:
// with CAFile only that CA is trusted; with CertFile and KeyFile the
// client presents that certificate, reloaded when its files change.
func NewClient(c ClientConfig, log *slog.Logger) (*tls.Config, error) {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("tls: tls_client_cert_file and tls_client_key_file must be set together")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := LoadPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		kp, err := LoadKeyPair(c.CertFile, c.KeyFile, log)
		if err != nil {
			return nil, err
		}
		tc.GetClientCertificate = kp.GetClientCertificate
	}
	return tc, nil
}

// VerifiedClientCert is the client certificate r's connection presented
// and the server verified against its client CA, or nil.
func VerifiedClientCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// RequireClientCert answers 401 unauthorized, in the one error shape, to a
// request whose connection presented no verified client certificate, and
// passes the others to next: for routes that need mTLS on a server whose
// ClientAuth is optional.
func RequireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if VerifiedClientCert(r) == nil {
			wire.WriteError(w, r, nil, catalog.Errorf(catalog.EUNAUTHORIZED, "a client certificate issued by the configured CA is required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
