package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
)

// TestMirror_ClientInterop: clients nobody here wrote against the mirror
// binary. curl asks update checks and downloads an artifact whole and by
// range, several requests on one keep-alive connection (the mirror's own
// HTTP loop answers those, net/http the others); aria2c downloads it in
// parallel segments and checks its sha256.
func TestMirror_ClientInterop(t *testing.T) {
	curl := testenv.Tool(t, "curl")
	aria2c := testenv.Tool(t, "aria2c")
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	big := synctest.Art{ID: "art_big", Data: synctest.Random(5<<20 + 12345)}
	config, _ := importedSite(t, bin, v, synctest.Art{ID: "art_old", Data: []byte("the first release")}, big)
	d := startDaemon(t, bin, config)
	sum := sha256.Sum256(big.Data)
	want := hex.EncodeToString(sum[:])
	auth := "Authorization: Bearer site-token"
	check := d.base + "/v1/updates/check?product=prd_1&channel=stable&platform=linux&arch=x64&version=1.0.0"
	art := d.base + "/v1/artifacts/" + big.ID

	run := func(t *testing.T, name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
		}
		return out
	}

	t.Run("curl update checks on one connection", func(t *testing.T) {
		// Three URLs in one curl run share a keep-alive connection; -w
		// prints how many connections each transfer opened.
		out := run(t, curl, "-sS", "--fail-with-body", "-H", auth, "-w", "\n%{http_code} %{num_connects}\n", check, check, check)
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) != 6 {
			t.Fatalf("curl printed %q", out)
		}
		for i := 0; i < 6; i += 2 {
			var a struct {
				UpdateAvailable bool `json:"update_available"`
				Artifact        struct {
					ArtifactID string `json:"artifact_id"`
				} `json:"artifact"`
			}
			if err := json.Unmarshal([]byte(lines[i]), &a); err != nil || !a.UpdateAvailable || a.Artifact.ArtifactID != big.ID {
				t.Errorf("answer %d: %s (%v); want an update to %s", i/2, lines[i], err, big.ID)
			}
			want := "200 0"
			if i == 0 {
				want = "200 1"
			}
			if lines[i+1] != want {
				t.Errorf("transfer %d: code and new connections %q, want %q", i/2, lines[i+1], want)
			}
		}
	})
	t.Run("curl without the token", func(t *testing.T) {
		out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", check).Output()
		if err != nil || string(out) != "401" {
			t.Errorf("curl without a token: %q %v, want 401", out, err)
		}
	})
	t.Run("curl whole and by range", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "whole")
		run(t, curl, "-sS", "--fail", "-H", auth, "-o", out, art)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, big.Data) {
			t.Errorf("whole download: %d bytes, not the artifact's %d", len(got), len(big.Data))
		}
		part := run(t, curl, "-sS", "--fail", "-H", auth, "-r", "1000-1999", art)
		if !bytes.Equal(part, big.Data[1000:2000]) {
			t.Errorf("range 1000-1999: %d bytes, not the artifact's", len(part))
		}
		tail := run(t, curl, "-sS", "--fail", "-H", auth, "-r", "-100", art)
		if !bytes.Equal(tail, big.Data[len(big.Data)-100:]) {
			t.Errorf("last 100 bytes: %d bytes, not the artifact's", len(tail))
		}
	})
	t.Run("aria2c in segments", func(t *testing.T) {
		out := t.TempDir()
		run(t, aria2c, "--quiet=true", "--allow-overwrite=true", "-x", "6", "-s", "6", "-k", "1M",
			"--header", auth, "--checksum", "sha-256="+want, "-d", out, "-o", "big.bin", art)
		got, err := os.ReadFile(filepath.Join(out, "big.bin"))
		if err != nil || !bytes.Equal(got, big.Data) {
			t.Errorf("aria2c download: %d bytes (%v), want the artifact's %d", len(got), err, len(big.Data))
		}
	})
	t.Run("answered by the mirror's own loop", func(t *testing.T) {
		// The plain requests above (update checks, whole and single-range
		// downloads) took the Front, not net/http.
		resp, err := http.Get(d.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var n float64
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "outpost_mirror_front_answers_total "); ok {
				n, _ = strconv.ParseFloat(v, 64)
			}
		}
		if n < 6 {
			t.Errorf("outpost_mirror_front_answers_total = %v, want at least 6", n)
		}
	})
}
