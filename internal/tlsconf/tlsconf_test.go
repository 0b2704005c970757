package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var serial atomic.Int64

// ca is a test certificate authority.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by c: a server
// certificate for 127.0.0.1 unless client.
func (c *ca) issue(t *testing.T, cn string, client bool) (certPEM, keyPEM []byte, serialNo int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serialNo = serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serialNo), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), serialNo
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	// Through a rename, as a careful operator (or cert-manager) would.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// env is a CA, a server certificate on disk and file paths.
type env struct {
	dir                string
	ca, evil           *ca
	certFile, keyFile  string
	caFile, evilCAFile string
	serial             int64
}

func newEnv(t *testing.T) *env {
	e := &env{dir: t.TempDir(), ca: newCA(t, "outpost test CA"), evil: newCA(t, "someone else's CA")}
	e.certFile, e.keyFile = filepath.Join(e.dir, "server.crt"), filepath.Join(e.dir, "server.key")
	e.caFile, e.evilCAFile = filepath.Join(e.dir, "ca.pem"), filepath.Join(e.dir, "evil.pem")
	write(t, e.caFile, e.ca.pem)
	write(t, e.evilCAFile, e.evil.pem)
	e.rotate(t)
	return e
}

// rotate writes a new server certificate and key and returns its serial.
func (e *env) rotate(t *testing.T) int64 {
	c, k, s := e.ca.issue(t, "127.0.0.1", false)
	write(t, e.keyFile, k)
	write(t, e.certFile, c)
	e.serial = s
	return s
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve runs an HTTPS server for cfg on 127.0.0.1 answering the verified
// client certificate's common name (or "anonymous").
func serve(t *testing.T, s *Server, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c := VerifiedClientCert(r); c != nil {
				io.WriteString(w, c.Subject.CommonName)
				return
			}
			io.WriteString(w, "anonymous")
		})
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(tls.NewListener(ln, s.Config))
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String() + "/"
}

// get makes one request on a new connection and returns the server
// certificate's serial and the body.
func get(t *testing.T, tc *tls.Config, url string) (int64, string, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), string(body), nil
}

func client(t *testing.T, c ClientConfig) *tls.Config {
	t.Helper()
	tc, err := NewClient(c, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

func TestServer_RotationWithoutRestart(t *testing.T) {
	e := newEnv(t)
	s, err := NewServer(Config{CertFile: e.certFile, KeyFile: e.keyFile}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s, nil)
	tc := client(t, ClientConfig{CAFile: e.caFile})

	first := e.serial
	if got, _, err := get(t, tc, url); err != nil || got != first {
		t.Fatalf("first connection: serial %d, %v; want %d", got, err, first)
	}
	if changed, err := s.KeyPair.ReloadIfChanged(); changed || err != nil {
		t.Fatalf("ReloadIfChanged with no change = %v, %v; want false, nil", changed, err)
	}
	second := e.rotate(t)
	if changed, err := s.KeyPair.ReloadIfChanged(); !changed || err != nil {
		t.Fatalf("ReloadIfChanged after rotation = %v, %v; want true, nil", changed, err)
	}
	if got, _, err := get(t, tc, url); err != nil || got != second {
		t.Fatalf("after rotation: serial %d, %v; want %d", got, err, second)
	}
	if got := s.KeyPair.Generation(); got != 2 {
		t.Fatalf("Generation = %d, want 2", got)
	}
}

// waitGeneration waits (bounded) for the pair to reach generation n; the
// bound guards against a hang, it is not a performance assertion.
func waitGeneration(t *testing.T, kp *KeyPair, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for kp.Generation() < n {
		if time.Now().After(deadline) {
			t.Fatalf("generation stayed %d, want %d", kp.Generation(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServer_RunReloadsOnChangeAndSIGHUP(t *testing.T) {
	e := newEnv(t)
	s, err := NewServer(Config{CertFile: e.certFile, KeyFile: e.keyFile, ReloadInterval: 10 * time.Millisecond}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s, nil)
	tc := client(t, ClientConfig{CAFile: e.caFile})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	t.Run("file change", func(t *testing.T) {
		want := e.rotate(t)
		waitGeneration(t, s.KeyPair, 2)
		if got, _, err := get(t, tc, url); err != nil || got != want {
			t.Fatalf("serial %d, %v; want %d", got, err, want)
		}
	})
	t.Run("SIGHUP", func(t *testing.T) {
		// A watcher with no poll interval to speak of: only the signal can
		// reload it.
		kp, err := LoadKeyPair(e.certFile, e.keyFile, quiet())
		if err != nil {
			t.Fatal(err)
		}
		hup, stop := NotifyHUP()
		defer stop()
		hctx, hcancel := context.WithCancel(context.Background())
		defer hcancel()
		go kp.Watch(hctx, time.Hour, hup)
		want := e.rotate(t)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitGeneration(t, kp, 2)
		if got := kp.Leaf().SerialNumber.Int64(); got != want {
			t.Fatalf("serial after SIGHUP %d, want %d", got, want)
		}
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestServer_BadNewPairKeepsOld(t *testing.T) {
	e := newEnv(t)
	s, err := NewServer(Config{CertFile: e.certFile, KeyFile: e.keyFile}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s, nil)
	tc := client(t, ClientConfig{CAFile: e.caFile})
	good := e.serial
	goodCert, _ := os.ReadFile(e.certFile)
	otherCert, _, _ := e.ca.issue(t, "127.0.0.1", false)

	cases := []struct {
		name        string
		cert, key   []byte // nil: leave as is
		removeCert  bool
		wantMessage string
	}{
		{"garbage certificate", []byte("not a certificate"), nil, false, "certificate"},
		{"empty key", goodCert, []byte{}, false, "key"},
		{"key of another certificate", otherCert, nil, false, "private key does not match"},
		{"certificate removed", nil, nil, true, "no such file"},
	}
	keyBefore, _ := os.ReadFile(e.keyFile)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			write(t, e.keyFile, keyBefore)
			write(t, e.certFile, goodCert)
			s.KeyPair.ReloadIfChanged() // the restored good pair
			if c.cert != nil {
				write(t, e.certFile, c.cert)
			}
			if c.key != nil {
				write(t, e.keyFile, c.key)
			}
			if c.removeCert {
				os.Remove(e.certFile)
			}
			changed, err := s.KeyPair.ReloadIfChanged()
			if !changed || err == nil || !strings.Contains(err.Error(), c.wantMessage) {
				t.Fatalf("ReloadIfChanged = %v, %v; want true and an error mentioning %q", changed, err, c.wantMessage)
			}
			if err := s.KeyPair.Reload(); err == nil {
				t.Fatal("Reload (SIGHUP) of the bad pair succeeded")
			}
			if got, _, err := get(t, tc, url); err != nil || got != good {
				t.Fatalf("new connection: serial %d, %v; want the old %d", got, err, good)
			}
			// Not retried until the files change again.
			if changed, _ := s.KeyPair.ReloadIfChanged(); changed {
				t.Fatal("an unchanged bad pair was tried again")
			}
		})
	}
}

func TestNewServer_Refuses(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no cert", Config{}, "no tls_cert_file"},
		{"cert without key", Config{CertFile: e.certFile}, "together"},
		{"key without cert", Config{KeyFile: e.keyFile}, "together"},
		{"bad client auth", Config{CertFile: e.certFile, KeyFile: e.keyFile, ClientAuth: "maybe"}, "tls_client_auth"},
		{"require without CA", Config{CertFile: e.certFile, KeyFile: e.keyFile, ClientAuth: ClientAuthRequire}, "tls_client_ca_file"},
		{"missing files", Config{CertFile: e.certFile + ".x", KeyFile: e.keyFile}, "no such file"},
		{"CA file not PEM", Config{CertFile: e.certFile, KeyFile: e.keyFile, ClientAuth: ClientAuthOptional, ClientCAFile: e.keyFile}, "no PEM certificate"},
		{"swapped cert and key", Config{CertFile: e.keyFile, KeyFile: e.certFile}, "tls"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewServer(c.cfg, quiet())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewServer = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

func TestClient_PinnedCA(t *testing.T) {
	e := newEnv(t)
	s, err := NewServer(Config{CertFile: e.certFile, KeyFile: e.keyFile}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s, nil)
	cases := []struct {
		name string
		tc   *tls.Config
		ok   bool
	}{
		{"pinned CA", client(t, ClientConfig{CAFile: e.caFile}), true},
		{"wrong CA", client(t, ClientConfig{CAFile: e.evilCAFile}), false},
		{"system roots", client(t, ClientConfig{}), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := get(t, c.tc, url)
			if c.ok && err != nil {
				t.Fatalf("Get = %v, want success", err)
			}
			if !c.ok {
				var ua x509.UnknownAuthorityError
				if !errors.As(err, &ua) {
					t.Fatalf("Get = %v, want an unknown-authority error", err)
				}
			}
		})
	}
	if _, err := NewClient(ClientConfig{CAFile: e.keyFile}, quiet()); err == nil {
		t.Fatal("a CA file with no certificate was accepted")
	}
	if _, err := NewClient(ClientConfig{CertFile: e.certFile}, quiet()); err == nil {
		t.Fatal("a client certificate without a key was accepted")
	}
}

func TestServer_MutualTLS(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	clientFiles := func(c *ca, cn string) ClientConfig {
		cert, key, _ := c.issue(t, cn, true)
		cc := ClientConfig{CAFile: e.caFile, CertFile: filepath.Join(dir, cn+".crt"), KeyFile: filepath.Join(dir, cn+".key")}
		write(t, cc.CertFile, cert)
		write(t, cc.KeyFile, key)
		return cc
	}
	good := client(t, clientFiles(e.ca, "mir_good"))
	forged := client(t, clientFiles(e.evil, "mir_forged"))
	none := client(t, ClientConfig{CAFile: e.caFile})

	cases := []struct {
		mode     string
		guard    bool // RequireClientCert on the route
		tc       *tls.Config
		wantBody string // "": the request fails
	}{
		{ClientAuthRequire, false, good, "mir_good"},
		{ClientAuthRequire, false, none, ""},
		{ClientAuthRequire, false, forged, ""},
		{ClientAuthOptional, false, none, "anonymous"},
		{ClientAuthOptional, false, good, "mir_good"},
		{ClientAuthOptional, false, forged, ""},
		{ClientAuthOptional, true, none, "401"},
		{ClientAuthOptional, true, good, "mir_good"},
	}
	for _, c := range cases {
		name := c.mode
		if c.guard {
			name += " guarded route"
		}
		switch c.tc {
		case good:
			name += " good cert"
		case forged:
			name += " cert from another CA"
		default:
			name += " no cert"
		}
		t.Run(name, func(t *testing.T) {
			s, err := NewServer(Config{CertFile: e.certFile, KeyFile: e.keyFile, ClientAuth: c.mode, ClientCAFile: e.caFile}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			var h http.Handler
			if c.guard {
				h = RequireClientCert(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, VerifiedClientCert(r).Subject.CommonName)
				}))
			}
			url := serve(t, s, h)
			tr := &http.Transport{TLSClientConfig: c.tc, DisableKeepAlives: true}
			resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(url)
			if c.wantBody == "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d, want a refused handshake", resp.StatusCode)
				}
				// In TLS 1.3 the server judges the client's certificate
				// after the client considers the handshake done, so the
				// refusal can reach the client as the alert or as the
				// connection closed under its first write.
				refused := false
				for _, s := range []string{"tls: ", "closed network connection", "connection reset", "EOF", "broken pipe"} {
					refused = refused || strings.Contains(err.Error(), s)
				}
				if !refused {
					t.Fatalf("Get = %v, want a TLS refusal", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Get = %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			got := string(body)
			if c.wantBody == "401" {
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(got, `"code":"unauthorized"`) {
					t.Fatalf("answer %d %s, want 401 unauthorized", resp.StatusCode, got)
				}
				return
			}
			if got != c.wantBody {
				t.Fatalf("body %q, want %q", got, c.wantBody)
			}
		})
	}
}

func TestClient_CertificateRotates(t *testing.T) {
	e := newEnv(t)
	s, err := NewServer(Config{CertFile: e.certFile, KeyFile: e.keyFile, ClientAuth: ClientAuthRequire, ClientCAFile: e.caFile}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s, nil)
	cc := ClientConfig{CAFile: e.caFile, CertFile: filepath.Join(e.dir, "c.crt"), KeyFile: filepath.Join(e.dir, "c.key")}
	issue := func(cn string) {
		cert, key, _ := e.ca.issue(t, cn, true)
		write(t, cc.KeyFile, key)
		write(t, cc.CertFile, cert)
	}
	issue("mir_one")
	tc := client(t, cc)
	if _, body, err := get(t, tc, url); err != nil || body != "mir_one" {
		t.Fatalf("first: %q, %v", body, err)
	}
	issue("mir_two")
	if _, body, err := get(t, tc, url); err != nil || body != "mir_two" {
		t.Fatalf("after rotation: %q, %v; want mir_two", body, err)
	}
}
