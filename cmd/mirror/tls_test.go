package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
)

// testCA is a private certificate authority for a test site.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    []byte
	serial int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test site CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 100}
}

// issue writes a server certificate for 127.0.0.1 and its key to
// certFile and keyFile (each through a rename) and returns its serial.
func (c *testCA) issue(t *testing.T, certFile, keyFile string) int64 {
	t.Helper()
	return c.issueFor(t, certFile, keyFile, x509.ExtKeyUsageServerAuth)
}

func (c *testCA) issueFor(t *testing.T, certFile, keyFile string, usage x509.ExtKeyUsage) int64 {
	t.Helper()
	c.serial++
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(c.serial), Subject: pkix.Name{CommonName: "mirror.site.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writeAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	writeAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return c.serial
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (c *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// servedSerial is the serial of the certificate addr serves, verified
// against the CA.
func (c *testCA) servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: c.pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("tls dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// startHTTPS starts the real binary with config and waits until it
// answers over HTTPS (trusting ca).
func startHTTPS(t *testing.T, bin, config string, ca *testCA, certs ...tls.Certificate) (*exec.Cmd, string) {
	t.Helper()
	addr := testenv.FreePort(t)
	cmd := exec.Command(bin, "serve", "--config", config, "--listen", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), Certificates: certs}}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get("https://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return cmd, addr
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("mirror did not start serving HTTPS")
	return nil, ""
}

// TestMirror_TLS runs the mirror over HTTPS with a private CA: updatectl
// pinning the CA gets its answer and one without it is refused with a
// clear message; a rotated certificate is served after SIGHUP, without a
// restart; a second mirror syncs from the first over HTTPS with ca_file.
func TestMirror_TLS(t *testing.T) {
	bin := buildOnce(t)
	updatectl := testenv.Binary(t, "./cmd/updatectl")
	v := synctest.NewTUFVendor(t)
	ca := newTestCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "site-ca.pem")
	os.WriteFile(caFile, ca.pem, 0o600)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := ca.issue(t, certFile, keyFile)

	// The first mirror holds a snapshot from a bundle and serves HTTPS;
	// the file poll is slow so that only SIGHUP can explain a reload.
	dataA := filepath.Join(dir, "a")
	cfgA := filepath.Join(dir, "a.yaml")
	os.WriteFile(cfgA, []byte(trustConfig(t, dataA, v)+fmt.Sprintf("source: none\nlog_level: warn\n"+
		"tls_cert_file: %q\ntls_key_file: %q\ntls_reload_interval: 1h\n", certFile, keyFile)), 0o600)
	art := synctest.Art{ID: "art_tls", Data: synctest.Random(48 << 10)}
	v.Publish(v.Manifest(1, []synctest.Art{art}))
	bundleFile := filepath.Join(dir, "one.tar")
	os.WriteFile(bundleFile, v.Bundle(t, 0), 0o600)
	mustRun(t, bin, "import", "--config", cfgA, bundleFile)
	cmdA, addrA := startHTTPS(t, bin, cfgA, ca)

	check := func(extra ...string) (int, string) {
		args := append([]string{"check", "--server", "https://" + addrA, "--product", "prd_1", "--version", "0.0.1",
			"--platform", "linux", "--arch", "x64"}, extra...)
		cmd := exec.Command(updatectl, args...)
		cmd.Env = append(os.Environ(), "OUTPOST_CA_FILE=", "OUTPOST_NO_REPORT=true")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	}

	t.Run("updatectl pinning the site CA", func(t *testing.T) {
		if code, stderr := check("--ca-file", caFile); code != 10 {
			t.Errorf("check exit = %d (stderr %q), want 10 (update available)", code, stderr)
		}
	})
	t.Run("updatectl without the CA", func(t *testing.T) {
		code, stderr := check()
		if code != 5 {
			t.Errorf("check exit = %d, want 5 (network)", code)
		}
		if !strings.Contains(stderr, "not signed by a trusted CA") || !strings.Contains(stderr, "--ca-file") {
			t.Errorf("stderr = %q, want a clear message naming --ca-file", stderr)
		}
	})
	t.Run("plain HTTP to the HTTPS port is refused", func(t *testing.T) {
		resp, err := http.Get("http://" + addrA + "/healthz")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("the HTTPS port answered plain HTTP with 200")
			}
		}
	})
	t.Run("mirror status --server over HTTPS", func(t *testing.T) {
		out := mustRun(t, bin, "status", "--server", "https://"+addrA, "--ca-file", caFile, "--output", "json")
		if !strings.Contains(out, `"sequence": 1`) {
			t.Errorf("status --server = %s", out)
		}
	})
	t.Run("rotated certificate after SIGHUP", func(t *testing.T) {
		if got := ca.servedSerial(t, addrA); got != first {
			t.Fatalf("served serial %d, want %d", got, first)
		}
		second := ca.issue(t, certFile, keyFile)
		if err := cmdA.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for ca.servedSerial(t, addrA) != second {
			if time.Now().After(deadline) {
				t.Fatalf("still serving serial %d after SIGHUP, want %d", ca.servedSerial(t, addrA), second)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if cmdA.ProcessState != nil {
			t.Fatal("the mirror exited on SIGHUP")
		}
	})
	t.Run("a mirror syncing from an upstream mirror over HTTPS", func(t *testing.T) {
		dataB := filepath.Join(dir, "b")
		cfgB := filepath.Join(dir, "b.yaml")
		os.WriteFile(cfgB, []byte(trustConfig(t, dataB, v)+fmt.Sprintf("source: upstream\n"+
			"upstream_url: %q\nca_file: %q\nsync_interval: 1s\nretry_max_elapsed: 5s\nlog_level: warn\n",
			"https://"+addrA, caFile)), 0o600)
		b := startDaemon(t, bin, cfgB)
		deadline := time.Now().Add(20 * time.Second)
		for b.check(t) != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the downstream mirror did not sync sequence 1 over HTTPS")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("mTLS: a mirror requiring client certificates", func(t *testing.T) {
		// Mirror C holds the same snapshot and requires a client
		// certificate from the site CA; D presents one, E does not.
		dataC := filepath.Join(dir, "c")
		cfgC := filepath.Join(dir, "c.yaml")
		os.WriteFile(cfgC, []byte(trustConfig(t, dataC, v)+fmt.Sprintf("source: none\nlog_level: error\n"+
			"tls_cert_file: %q\ntls_key_file: %q\ntls_client_auth: require\ntls_client_ca_file: %q\n",
			certFile, keyFile, caFile)), 0o600)
		mustRun(t, bin, "import", "--config", cfgC, bundleFile)
		clientCert, clientKey := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
		ca.issueFor(t, clientCert, clientKey, x509.ExtKeyUsageClientAuth)
		pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
		if err != nil {
			t.Fatal(err)
		}
		_, addrC := startHTTPS(t, bin, cfgC, ca, pair)

		downstream := func(name, extra string) *daemon {
			data := filepath.Join(dir, name)
			cfg := filepath.Join(dir, name+".yaml")
			os.WriteFile(cfg, []byte(trustConfig(t, data, v)+fmt.Sprintf("source: upstream\n"+
				"upstream_url: %q\nca_file: %q\nsync_interval: 1s\nretry_max_elapsed: 2s\nlog_level: error\n%s",
				"https://"+addrC, caFile, extra)), 0o600)
			return startDaemon(t, bin, cfg)
		}
		e := downstream("e", "")
		d := downstream("d", fmt.Sprintf("tls_client_cert_file: %q\ntls_client_key_file: %q\n", clientCert, clientKey))
		deadline := time.Now().Add(20 * time.Second)
		for d.check(t) != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the mirror with a client certificate did not sync over mTLS")
			}
			time.Sleep(50 * time.Millisecond)
		}
		var last struct {
			LastSync *struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			} `json:"last_sync"`
		}
		for last.LastSync == nil {
			if time.Now().After(deadline) {
				t.Fatal("the mirror without a client certificate recorded no sync attempt")
			}
			time.Sleep(50 * time.Millisecond)
			_, body := get(t, e.base+"/v1/status")
			json.Unmarshal([]byte(body), &last)
		}
		if last.LastSync.OK || e.check(t) != 0 {
			t.Errorf("the mirror without a client certificate synced: %+v", last.LastSync)
		}
	})
}
