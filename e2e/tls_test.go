package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tlsSetup runs the README's TLS setup commands verbatim in a new
// directory and returns it.
func tlsSetup(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	a, b := strings.Index(s, "<!-- tls-setup -->"), strings.Index(s, "<!-- /tls-setup -->")
	if a < 0 || b < a {
		t.Fatal("README.md has no <!-- tls-setup --> block")
	}
	block := s[a:b]
	block = block[strings.Index(block, "```sh")+len("```sh") : strings.LastIndex(block, "```")]
	dir := t.TempDir()
	cmd := exec.Command("sh", "-e", "-c", block)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README TLS setup: %v\n%s", err, out)
	}
	return dir
}

func pinnedClient(t *testing.T, dir string, cert bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool}
	if cert {
		kp, err := tls.LoadX509KeyPair(filepath.Join(dir, "mirror.crt"), filepath.Join(dir, "mirror.key"))
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
}

// servedSerial is the serial of the certificate the server presents.
func servedSerial(t *testing.T, hc *http.Client, url string) *big.Int {
	t.Helper()
	resp, err := hc.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber
}

// TestTLS_ControlPlane serves the control plane over HTTPS with the
// README's certificates: the CLI with --ca-file works, without it it
// refuses the private CA, the mirror routes need the mirror's client
// certificate besides its credential, and a new certificate is served
// after SIGHUP without a restart.
func TestTLS_ControlPlane(t *testing.T) {
	tl := buildTools(t)
	dir := tlsSetup(t)
	cp := newControlPlane(t, tl, nil)
	cp.url = "https://" + cp.addr
	env := append(append([]string{}, cp.env...),
		"OUTPOST_TLS_CERT_FILE="+filepath.Join(dir, "controlplane.crt"),
		"OUTPOST_TLS_KEY_FILE="+filepath.Join(dir, "controlplane.key"),
		"OUTPOST_MIRROR_CLIENT_CA_FILE="+filepath.Join(dir, "ca.crt"))
	cp.proc = startProc(t, "controlplane", filepath.Join(cp.dir, "serve.log"), env, tl.controlplane, "serve", "--data-dir", cp.dir, "--listen", cp.addr)
	hc := pinnedClient(t, dir, false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if cp.proc.exited() {
			t.Fatalf("controlplane exited; log:\n%s", cp.proc.logTail())
		}
		resp, err := hc.Get(cp.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS readyz within 20s: %v; log:\n%s", err, cp.proc.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}

	cli := append(append([]string{}, cp.env...), "OUTPOST_SERVER="+cp.url, "OUTPOST_TOKEN="+cp.admin)
	tenant := mustRun(t, cli, tl.controlplane, "tenant", "create", "acme", "--ca-file", filepath.Join(dir, "ca.crt"))
	if !strings.HasPrefix(tenant, "ten_") {
		t.Fatalf("tenant create over TLS printed %q", tenant)
	}
	if r := run(t, cli, tl.controlplane, "tenant", "list"); r.code == 0 || !strings.Contains(r.stderr, "certificate") || !strings.Contains(r.stderr, "pin its CA with --ca-file (or OUTPOST_CA_FILE)") {
		t.Fatalf("CLI without --ca-file: exit %d %q, want a certificate error naming --ca-file", r.code, r.stderr)
	}
	if resp, err := http.Get("http://" + cp.addr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}

	t.Run("mirror routes need the client certificate and the credential", func(t *testing.T) {
		var created struct{ Credential string }
		json.Unmarshal([]byte(mustRun(t, cli, tl.controlplane, "mirror", "create", "--tenant", tenant, "--name", "site-a", "--ca-file", filepath.Join(dir, "ca.crt"), "-o", "json")), &created)
		credential := created.Credential
		call := func(hc *http.Client, token string) int {
			req, _ := http.NewRequest("GET", cp.url+"/v1/mirror/self", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := call(hc, credential); got != http.StatusUnauthorized {
			t.Fatalf("credential without a client certificate: %d, want 401", got)
		}
		withCert := pinnedClient(t, dir, true)
		if got := call(withCert, ""); got != http.StatusUnauthorized {
			t.Fatalf("client certificate without the credential: %d, want 401", got)
		}
		if got := call(withCert, credential); got != http.StatusOK {
			t.Fatalf("client certificate and credential: %d, want 200", got)
		}
	})

	t.Run("certificate rotates on SIGHUP", func(t *testing.T) {
		before := servedSerial(t, hc, cp.url)
		cmd := exec.Command("sh", "-e", "-c", `openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=controlplane.example.internal" -keyout new.key -out new.csr
openssl x509 -req -in new.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile controlplane.ext -out new.crt
mv new.key controlplane.key && mv new.crt controlplane.crt`)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("new certificate: %v\n%s", err, out)
		}
		if err := cp.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			hc.CloseIdleConnections()
			if servedSerial(t, hc, cp.url).Cmp(before) != 0 {
				break
			}
			if cp.proc.exited() {
				t.Fatalf("controlplane exited on SIGHUP; log:\n%s", cp.proc.logTail())
			}
			if time.Now().After(deadline) {
				t.Fatalf("the old certificate is still served 20s after SIGHUP; log:\n%s", cp.proc.logTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
