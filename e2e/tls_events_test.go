package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror"
)

// siteCA writes a private CA and a server certificate for 127.0.0.1 into
// dir and returns the CA file, the certificate, its key, and a client
// trusting the CA.
func siteCA(t *testing.T, dir string) (caFile, certFile, keyFile string, hc *http.Client) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e site CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mirror.site.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "site-ca.pem"), filepath.Join(dir, "mirror.crt"), filepath.Join(dir, "mirror.key.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return caFile, certFile, keyFile, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestE2E_TLSAndClientEvents: the control plane publishes; a mirror
// synced from it serves HTTPS with a site CA; updatectl pinning the CA
// downloads and verifies, reports check/download/install events that the
// mirror aggregates on /v1/status; without the CA updatectl is refused.
func TestE2E_TLSAndClientEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	tenant := cp.cli("tenant", "create", "Initech")
	product := cp.cli("product", "create", "Outpost TLS Demo", "--distribution", "open")
	file, _ := randomFile(t, t.TempDir(), "demo-2.0.0.tar.gz", 200<<10)
	rel, art := cp.release(product, "2.0.0", file)
	_, seq := cp.snapshot(tenant)

	root := cp.rootFile(tenant)
	m := newMirror(t, tl, "tls", mirrorConfig{tenant: tenant, root: root, source: "none"})
	_, cred := cp.registerMirror(tenant, "site-tls", m.publicKey)
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})
	caFile, certFile, keyFile, hc := siteCA(t, t.TempDir())
	f, err := os.OpenFile(m.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "tls_cert_file: %q\ntls_key_file: %q\nclient_tokens: [site-token]\n", certFile, keyFile)
	f.Close()
	m.url = "https://" + m.addr
	m.proc = startProc(t, m.name, filepath.Join(m.dir, "serve.log"), baseEnv(), tl.mirror, "serve", "--config", m.config)

	status := func() mirror.Status {
		t.Helper()
		req, _ := http.NewRequest("GET", m.url+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer site-token")
		resp, err := hc.Do(req)
		if err != nil {
			return mirror.Status{}
		}
		defer resp.Body.Close()
		var st mirror.Status
		json.NewDecoder(resp.Body).Decode(&st)
		return st
	}
	deadline := time.Now().Add(30 * time.Second)
	for st := status(); st.Snapshot == nil || st.Snapshot.Sequence != seq; st = status() {
		if m.proc.exited() || time.Now().After(deadline) {
			t.Fatalf("mirror did not serve sequence %d over HTTPS; log:\n%s", seq, m.proc.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}

	stateDir := t.TempDir()
	updatectl := func(args ...string) result {
		return run(t, baseEnv("OUTPOST_SERVER="+m.url, "OUTPOST_TOKEN=site-token", "OUTPOST_STATE_DIR="+stateDir), tl.updatectl, args...)
	}
	query := []string{"--product", product, "--channel", "stable", "--platform", "linux", "--arch", "x64", "--version", "1.0.0"}

	t.Run("without the site CA", func(t *testing.T) {
		r := updatectl(append([]string{"check"}, query...)...)
		if r.code != 5 || !strings.Contains(r.stderr, "not signed by a trusted CA") {
			t.Errorf("check without --ca-file: exit %d, stderr %q; want 5 naming the untrusted CA", r.code, r.stderr)
		}
	})
	t.Run("download over HTTPS, then report the install", func(t *testing.T) {
		r := updatectl(append([]string{"download", "--ca-file", caFile, "--tenant", tenant, "--tuf-root", root, "--out", t.TempDir()}, query...)...)
		if r.code != 0 {
			t.Fatalf("download: exit %d: %s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "event report") {
			t.Errorf("download's event report failed: %s", r.stderr)
		}
		r = updatectl("report", "install-ok", "--ca-file", caFile, "--release", rel, "--artifact", art, "--product", product,
			"--from", "1.0.0", "--to", "2.0.0", "--duration", "12s")
		if r.code != 0 {
			t.Fatalf("report install-ok: exit %d: %s", r.code, r.stderr)
		}
		ev := status().Events
		if ev == nil {
			t.Fatal("/v1/status has no events part")
		}
		for typ, want := range map[string]int64{"check": 1, "download_ok": 1, "install_ok": 1} {
			if got := ev.Totals[typ]; got != want {
				t.Errorf("totals[%s] = %d, want %d", typ, got, want)
			}
		}
		found := false
		for _, g := range ev.Aggregates {
			if g.ReleaseID == rel && g.Type == "install_ok" && g.Count == 1 && g.DurationMSSum == 12000 {
				found = true
			}
		}
		if !found {
			t.Errorf("no install_ok aggregate for %s in %+v", rel, ev.Aggregates)
		}
	})
}
