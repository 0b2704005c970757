package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/testenv"
)

// TestFaults_Clocks runs the mirror and updatectl built with -tags
// testclock, their clocks moved by OUTPOST_TEST_CLOCK_OFFSET, against a
// control plane on the real clock (docs/RELIABILITY.md, "Clocks").
func TestFaults_Clocks(t *testing.T) {
	if testing.Short() {
		t.Skip("faults: real daemons")
	}
	tl := buildTools(t)
	skewed := tl
	skewed.mirror = testenv.BinaryTags(t, "./cmd/mirror", "testclock")
	skewed.updatectl = testenv.BinaryTags(t, "./cmd/updatectl", "testclock")
	cp := newControlPlane(t, tl, nil)
	cp.serve()

	tenant := cp.cli("tenant", "create", "Clockco")
	product := cp.cli("product", "create", "Clockware", "--distribution", "licensed")
	f, _ := randomFile(t, t.TempDir(), "clock.tar.gz", 16<<10)
	cp.release(product, "2.0.0", f)
	root := cp.rootFile(tenant)
	m := newMirror(t, skewed, "clock", mirrorConfig{tenant: tenant, root: root, source: "none"})
	mirrorID, cred := cp.registerMirror(tenant, "clock", m.publicKey)
	var ent struct {
		EntitlementID string `json:"entitlement_id"`
	}
	cp.api("POST", "/v1/tenants/"+tenant+"/entitlements", cp.admin, map[string]any{
		"product_id": product, "policy_json": map[string]any{"max_seats": 10, "lease_ttl": "1h", "mirror_seats": map[string]int{mirrorID: 10}},
	}, &ent, http.StatusCreated)
	_, seq := cp.snapshot(tenant)
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})

	lease := func(t *testing.T, subject string) (int, string) {
		t.Helper()
		code, body := httpDo(t, "PUT", m.url+"/v1/leases/"+subject, "", map[string]any{"entitlement_id": ent.EntitlementID, "subject_type": "machine"}, nil)
		return code, string(body)
	}
	mirrorRun := func(t *testing.T, offset string) {
		t.Helper()
		m.serve("OUTPOST_TEST_CLOCK_OFFSET=" + offset) // stopped at the end of the test, at the latest
		m.waitSequence(seq)
	}

	t.Run("mirror 3 days behind: sync refused, says why", func(t *testing.T) {
		// The timestamp's signed time (x-outpost-signed-at) is 3 days
		// after the mirror's clock: the mirror refuses the metadata
		// (tuf.CheckClock), holds nothing, and names its clock.
		m.serve("OUTPOST_TEST_CLOCK_OFFSET=-72h")
		var st mirror.Status
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if m.proc.exited() {
				t.Fatalf("mirror exited; log:\n%s", m.proc.logTail())
			}
			if st = m.status(); st.LastSync != nil && !st.LastSync.OK {
				break
			}
		}
		code, body := lease(t, "host-behind")
		log, _ := os.ReadFile(m.proc.log)
		m.stop()
		if st.LastSync == nil || st.LastSync.OK || !strings.Contains(st.LastSync.Error, "set this machine's clock") {
			t.Fatalf("last sync %+v, want refused naming the clock", st.LastSync)
		}
		if st.Snapshot != nil {
			t.Errorf("the mirror holds snapshot %d, want nothing", st.Snapshot.Sequence)
		}
		if code != http.StatusServiceUnavailable {
			t.Errorf("lease = %d %s, want 503 (nothing held)", code, body)
		}
		for _, want := range []string{"TEST BUILD: this process's clock runs -72h0m0s", "set this machine's clock"} {
			if !strings.Contains(string(log), want) {
				t.Errorf("mirror log lacks %q", want)
			}
		}
		figure(t, "clock mirror -72h", "sync refused: %s; lease %d: %s", oneLineBody(st.LastSync.Error), code, oneLineBody(body))
	})

	var token string
	t.Run("mirror 2 hours ahead: issues, a right client refuses as not yet valid", func(t *testing.T) {
		mirrorRun(t, "2h")
		code, body := lease(t, "host-ahead")
		if code != http.StatusOK {
			t.Fatalf("lease = %d %s, want 200", code, body)
		}
		var la struct {
			Token     string    `json:"token"`
			IssuedAt  time.Time `json:"issued_at"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal([]byte(body), &la); err != nil {
			t.Fatal(err)
		}
		if d := time.Until(la.IssuedAt); d < 110*time.Minute || d > 130*time.Minute {
			t.Errorf("issued_at %s is %v from the real clock, want about +2h (the mirror's clock)", la.IssuedAt, d)
		}
		if term := la.ExpiresAt.Sub(la.IssuedAt); term > time.Hour {
			t.Errorf("term %v, want at most the 1h lease_ttl", term)
		}
		token = la.Token
		r := run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir()), tl.updatectl, "lease", "verify", token,
			"--server", m.url, "--tenant", tenant, "--tuf-root", root)
		if r.code != 3 || !strings.Contains(r.stderr, "issued in the future") {
			t.Fatalf("updatectl lease verify (real clock) = exit %d: %s, want 3 and issued in the future", r.code, r.stderr)
		}
		// A client whose clock is as far ahead accepts it.
		r = run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir(), "OUTPOST_TEST_CLOCK_OFFSET=2h"), skewed.updatectl, "lease", "verify", token,
			"--server", m.url, "--tenant", tenant, "--tuf-root", root)
		if r.code != 0 {
			t.Fatalf("updatectl lease verify (+2h) = exit %d: %s, want 0", r.code, r.stderr)
		}
		figure(t, "clock mirror +2h", "lease issued_at %s (+2h), term %v; real-clock client: exit 3 issued in the future; +2h client: valid",
			la.IssuedAt.Format(time.RFC3339), la.ExpiresAt.Sub(la.IssuedAt))
		m.stop()
	})

	t.Run("mirror 1 minute behind: syncs", func(t *testing.T) {
		// Within tuf.ClockSkew of the signing. (The entitlement's window,
		// which starts at its creation, is judged on this clock too, so
		// the client cases below run on a mirror with the real clock.)
		mirrorRun(t, "-1m")
		m.stop()
		figure(t, "clock mirror -1m", "synced sequence %d", seq)
	})

	t.Run("client 3 days behind: download refused, says why", func(t *testing.T) {
		mirrorRun(t, "0s") // kept running for the next cases
		out := t.TempDir()
		r := run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir(), "OUTPOST_TEST_CLOCK_OFFSET=-72h"), skewed.updatectl, "download",
			"--server", m.url, "--tenant", tenant, "--tuf-root", root, "--product", product, "--channel", "stable",
			"--platform", "linux", "--arch", "x64", "--version", "1.0.0", "--out", out)
		if r.code != 3 || !strings.Contains(r.stderr, "set this machine's clock") {
			t.Fatalf("updatectl download (-72h) = exit %d: %s%s, want 3 naming the clock", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "TEST BUILD") {
			t.Errorf("stderr lacks the test-build clock warning: %s", r.stderr)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("a refused download wrote %d files", len(entries))
		}
		figure(t, "clock client -72h", "download exit %d: %s", r.code, oneLineBody(r.stderr))
	})

	t.Run("client 2 minutes behind: downloads", func(t *testing.T) {
		r := run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir(), "OUTPOST_TEST_CLOCK_OFFSET=-2m"), skewed.updatectl, "download",
			"--server", m.url, "--tenant", tenant, "--tuf-root", root, "--product", product, "--channel", "stable",
			"--platform", "linux", "--arch", "x64", "--version", "1.0.0", "--out", t.TempDir())
		if r.code != 0 {
			t.Fatalf("updatectl download (-2m) = exit %d: %s, want 0", r.code, r.stderr)
		}
		figure(t, "clock client -2m", "download exit %d", r.code)
	})

	t.Run("client 31 days ahead: metadata expired", func(t *testing.T) {
		r := run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir(), "OUTPOST_TEST_CLOCK_OFFSET=744h"), skewed.updatectl, "download",
			"--server", m.url, "--tenant", tenant, "--tuf-root", root, "--product", product, "--channel", "stable",
			"--platform", "linux", "--arch", "x64", "--version", "1.0.0", "--out", t.TempDir())
		if r.code != 3 || !strings.Contains(r.stderr, "expired at") {
			t.Fatalf("updatectl download (+31d) = exit %d: %s%s, want 3 and expired", r.code, r.stdout, r.stderr)
		}
		figure(t, "clock client +31d", "download exit %d: %s", r.code, oneLineBody(r.stderr))
	})

	t.Run("a release build ignores the offset", func(t *testing.T) {
		r := run(t, baseEnv("OUTPOST_STATE_DIR="+t.TempDir(), "OUTPOST_TEST_CLOCK_OFFSET=-72h"), tl.updatectl, "download",
			"--server", m.url, "--tenant", tenant, "--tuf-root", root, "--product", product, "--channel", "stable",
			"--platform", "linux", "--arch", "x64", "--version", "1.0.0", "--out", t.TempDir())
		if r.code != 0 {
			t.Fatalf("updatectl download (release build, offset set) = exit %d: %s, want 0", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "ignored") {
			t.Errorf("stderr lacks the note that the offset is ignored: %s", r.stderr)
		}
	})
}

// oneLineBody shortens a body or stderr for a FIGURE line.
func oneLineBody(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
