package main_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
)

// statusEvents reads the events part of GET /v1/status.
func statusEvents(t *testing.T, base, token string) *mirror.StatusEvents {
	t.Helper()
	code, body := call(t, "GET", base+"/v1/status", token, nil)
	if code != 200 {
		t.Fatalf("GET /v1/status = %d %s", code, body)
	}
	var st mirror.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Events == nil {
		t.Fatal("/v1/status has no events part")
	}
	return st.Events
}

// TestMirror_ClientEvents runs the real mirror and the real updatectl:
// check, download and install reports land in /v1/status aggregates and
// on /metrics, survive a restart, and leave in a signed return file.
func TestMirror_ClientEvents(t *testing.T) {
	bin := buildOnce(t)
	updatectl := testenv.Binary(t, "./cmd/updatectl")
	v := synctest.NewTUFVendor(t)
	root := v.WriteRoot(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "m")
	mirrorID := catalog.NewID(catalog.PrefixMirror)
	var initOut map[string]string
	json.Unmarshal([]byte(mustRun(t, bin, "init", "--data-dir", dir, "--tenant-id", v.TenantID, "--root-file", root,
		"--mirror-id", mirrorID, "--output", "json")), &initOut)
	config := filepath.Join(dir, "mirror.yaml")
	f, _ := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("client_tokens: [site-token]\nlog_level: warn\nevents:\n  max_batch_events: 50\n")
	f.Close()

	// Real ids: the mirror refuses events whose ids are not catalog ids.
	prd, rel, artID := catalog.NewID(catalog.PrefixProduct), catalog.NewID(catalog.PrefixRelease), catalog.NewID(catalog.PrefixArtifact)
	art := synctest.Art{ID: "art_ev", Data: synctest.Random(20 << 10)}
	m := v.Manifest(1, []synctest.Art{art})
	m.Products[0].ProductID, m.Releases[0].ProductID, m.Releases[0].ReleaseID = prd, prd, rel
	m.Artifacts[0].ArtifactID, m.Releases[0].Artifacts[0].ArtifactID = artID, artID
	v.Publish(m)
	bundleFile := filepath.Join(t.TempDir(), "b.tar")
	os.WriteFile(bundleFile, v.Bundle(t, 0), 0o600)
	mustRun(t, bin, "import", "--config", config, bundleFile)

	d := startDaemon(t, bin, config)
	stateDir := t.TempDir()
	updctl := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(updatectl, append(args, "--server", d.base, "--token", "site-token", "--state-dir", stateDir)...)
		cmd.Env = append(os.Environ(), "OUTPOST_NO_REPORT=false")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	query := []string{"--product", prd, "--version", "0.9.0", "--platform", "linux", "--arch", "x64"}

	if code, out := updctl(append([]string{"check"}, query...)...); code != 10 {
		t.Fatalf("check exit %d: %s", code, out)
	}
	if code, out := updctl(append([]string{"download", "--tuf-root", root, "--tenant", v.TenantID, "--out", t.TempDir()}, query...)...); code != 0 {
		t.Fatalf("download exit %d: %s", code, out)
	}
	if code, out := updctl("report", "install-failed", "--release", rel, "--product", prd, "--artifact", artID,
		"--from", "0.9.0", "--to", "1.0.0", "--error-code", "E_DISK_FULL", "--duration", "3s"); code != 0 {
		t.Fatalf("report install-failed exit %d: %s", code, out)
	}
	if code, out := updctl("report", "install-ok", "--release", rel, "--from", "0.9.0", "--to", "1.0.0"); code != 0 {
		t.Fatalf("report install-ok exit %d: %s", code, out)
	}
	if code, out := updctl(append([]string{"check", "--no-report"}, query...)...); code != 10 {
		t.Fatalf("check --no-report exit %d: %s", code, out)
	}

	want := map[string]int64{"check": 2, "download_ok": 1, "download_failed": 0, "install_ok": 1, "install_failed": 1}
	checkAggregates := func(t *testing.T, base string) {
		t.Helper()
		ev := statusEvents(t, base, "site-token")
		for k, n := range want {
			if got := ev.Totals[k]; got != n {
				t.Errorf("totals[%s] = %d, want %d", k, got, n)
			}
		}
		found := false
		for _, g := range ev.Aggregates {
			if g.ReleaseID == rel && g.Type == fleet.TypeInstallFailed {
				found = true
				if g.Count != 1 || g.ErrorCodes["E_DISK_FULL"] != 1 || g.DurationMSSum != 3000 {
					t.Errorf("install_failed aggregate = %+v, want count 1, E_DISK_FULL 1, 3000 ms", g)
				}
			}
		}
		if !found {
			t.Errorf("no install_failed aggregate for the release in %+v", ev.Aggregates)
		}
	}

	t.Run("aggregates on /v1/status and /metrics", func(t *testing.T) {
		checkAggregates(t, d.base)
		_, metrics := get(t, d.base+"/metrics")
		for _, line := range []string{`outpost_mirror_client_events_total{type="install_failed"} 1`, `outpost_mirror_client_events_total{type="check"} 2`} {
			if !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %q", line)
			}
		}
	})
	t.Run("client id is pseudonymous and private", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(stateDir, "client-id"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("client-id mode = %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("hostile batches", func(t *testing.T) {
		ev := `{"type":"check","client_id":"c-0123456789","time":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
		if code, _ := call(t, "POST", d.base+"/v1/events", "", strings.NewReader(`{"events":[`+ev+`]}`)); code != http.StatusUnauthorized {
			t.Errorf("no token = %d, want 401", code)
		}
		many := `{"events":[` + strings.Repeat(ev+",", 50) + ev + `]}`
		if code, body := call(t, "POST", d.base+"/v1/events", "site-token", strings.NewReader(many)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("51 events over a cap of 50 = %d %s, want 413", code, body)
		}
		if code, _ := call(t, "POST", d.base+"/v1/events", "site-token", strings.NewReader(`{"events":[`+strings.Repeat("x", 2<<20)+`]}`)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("a 2 MiB body = %d, want 413", code)
		}
		bad := `{"events":[{"type":"check","client_id":"alice@example.com","time":"` + time.Now().UTC().Format(time.RFC3339) + `"}]}`
		code, body := call(t, "POST", d.base+"/v1/events", "site-token", strings.NewReader(bad))
		if code != 200 || !strings.Contains(string(body), "client_id") {
			t.Errorf("an e-mail as client id = %d %s, want 200 with it rejected", code, body)
		}
	})
	t.Run("survive a restart", func(t *testing.T) {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
		d = startDaemon(t, bin, config)
		checkAggregates(t, d.base)
	})
	t.Run("signed return file", func(t *testing.T) {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
		out := filepath.Join(t.TempDir(), "report.jsonl")
		mustRun(t, bin, "report", "export", "--config", config, "--out", out)
		pubRaw, _ := base64.StdEncoding.DecodeString(initOut["public_key"])
		rf, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer rf.Close()
		// One envelope (outpost-return-v1) around the audit chain and the
		// fleet report; the fleet part verifies on its own too.
		var auditPart, fleetPart bytes.Buffer
		if _, err := returnfile.Split(rf, ed25519.PublicKey(pubRaw), returnfile.Options{MirrorID: mirrorID}, &auditPart, &fleetPart); err != nil {
			t.Fatalf("return file does not verify: %v", err)
		}
		if _, err := license.ReadAuditExport(&auditPart, ed25519.PublicKey(pubRaw), 1<<20); err != nil {
			t.Errorf("audit part does not verify: %v", err)
		}
		sum, err := fleet.VerifyReport(&fleetPart, ed25519.PublicKey(pubRaw), fleet.ReadOptions{MirrorID: mirrorID})
		if err != nil {
			t.Fatalf("return file does not verify: %v", err)
		}
		if got := fmt.Sprint(sum.Events); got != "5" {
			t.Errorf("return file holds %s events, want 5 (%+v)", got, sum)
		}
	})
}
