package tufhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// interopClient is one unmodified TUF client, keeping its trusted state
// in a directory across runs: it refreshes from the server and downloads
// and verifies target into a file, returning the bytes.
type interopClient func(t *testing.T, target string) ([]byte, error)

// interopSequence runs the same sequence against a client: an artifact
// and a document; a new release and a root rotation, refreshed from the
// persisted state; tampered target bytes refused.
func interopSequence(t *testing.T, v *vendor, newClient func(t *testing.T, srv *httptest.Server) interopClient) {
	m := view(2, 30, 1)
	target, installer := withInstaller(m, 100_000)
	v.build(m)
	v.repo.Set(tuf.TargetPath(target, sumHex(installer)), installer)
	srv := v.serve(Options{})
	run := newClient(t, srv)

	t.Run("artifact and document", func(t *testing.T) {
		got, err := run(t, target)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, installer) {
			t.Fatalf("artifact: got %d bytes, want the %d of the installer", len(got), len(installer))
		}
		got, err = run(t, tuf.DocPolicies)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(got, []byte(m.Policies[0].PolicyID)) {
			t.Fatalf("policies document: got %.100s", got)
		}
	})
	t.Run("new release and root rotation, from the persisted state", func(t *testing.T) {
		v.rotateTimestampKey(77)
		addRelease(m, 0, 1)
		newTarget, newBytes := withInstaller(m, 5_000)
		v.build(m)
		v.repo.Set(tuf.TargetPath(newTarget, sumHex(newBytes)), newBytes)
		got, err := run(t, newTarget)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, newBytes) {
			t.Fatalf("new release's artifact: got %d bytes, want %d", len(got), len(newBytes))
		}
		if got, err := run(t, target); err != nil || !bytes.Equal(got, installer) {
			t.Fatalf("first artifact after the rotation: %d bytes, %v", len(got), err)
		}
	})
	t.Run("tampered target refused", func(t *testing.T) {
		p := tuf.TargetPath(target, sumHex(installer))
		evil := bytes.Clone(installer)
		evil[len(evil)/2] ^= 1
		v.repo.Set(p, evil)
		defer v.repo.Set(p, installer)
		got, err := run(t, target)
		if err == nil {
			t.Fatalf("tampered artifact accepted (%d bytes)", len(got))
		}
		if !strings.Contains(strings.ToLower(err.Error()), "hash") {
			t.Fatalf("refused for another reason than the hash: %v", err)
		}
	})
}

// TestInterop_TufJS runs the unmodified tuf-js updater
// (interop/tufjs/client.mjs) against the handler.
func TestInterop_TufJS(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "interop", "tufjs"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "tuf-js", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tuf-js interop needs node and interop/tufjs/node_modules (scripts/ci-deps.sh): %v", err)
		}
		t.Skipf("node or tuf-js missing (run scripts/ci-deps.sh): %v", err)
	}
	v := newVendor(t, tuf.ProductOptions{PerBin: 4})
	interopSequence(t, v, func(t *testing.T, srv *httptest.Server) interopClient {
		work := t.TempDir()
		rootFile := filepath.Join(work, "root.json")
		if err := os.WriteFile(rootFile, v.rootData, 0o600); err != nil {
			t.Fatal(err)
		}
		state := filepath.Join(work, "state")
		n := 0
		return func(t *testing.T, target string) ([]byte, error) {
			t.Helper()
			n++
			out := filepath.Join(work, "out", strings.ReplaceAll(target, "/", "_")+"-"+string(rune('a'+n)))
			if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"),
				"--root", rootFile, "--metadata-url", srv.URL+"/tuf/metadata", "--targets-url", srv.URL+"/tuf/targets",
				"--dir", state, "--target", target, "--out", out)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Logf("tuf-js: %v: %s", err, strings.TrimSpace(stderr.String()))
				return nil, errors.New(strings.TrimSpace(stderr.String()))
			}
			var res struct {
				Target string `json:"target"`
				Length int64  `json:"length"`
				SHA256 string `json:"sha256"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
				t.Fatalf("tuf-js output %q: %v", stdout.String(), err)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Target != target || res.Length != int64(len(data)) || res.SHA256 != sumHex(data) {
				t.Fatalf("tuf-js reported %+v for %d bytes", res, len(data))
			}
			// The trusted root it keeps is the newest the server has.
			held, err := os.ReadFile(filepath.Join(state, "metadata", "root.json"))
			if err != nil {
				t.Fatal(err)
			}
			if want := v.repo.Get(tuf.MetadataPath(metadata.ROOT, v.root.Signed.Version)); !bytes.Equal(held, want) {
				t.Fatalf("tuf-js holds another root than v%d", v.root.Signed.Version)
			}
			return data, nil
		}
	})
}

// TestInterop_GoTUFUpdaterOverHTTP runs the unmodified go-tuf v2 updater
// against the handler (gzip included: Go's transport asks for it).
func TestInterop_GoTUFUpdaterOverHTTP(t *testing.T) {
	v := newVendor(t, tuf.ProductOptions{PerBin: 4})
	interopSequence(t, v, func(t *testing.T, srv *httptest.Server) interopClient {
		work := t.TempDir()
		return func(t *testing.T, target string) ([]byte, error) {
			t.Helper()
			cfg, err := config.New(srv.URL+"/tuf/metadata", v.rootData)
			if err != nil {
				t.Fatal(err)
			}
			cfg.RemoteTargetsURL = srv.URL + "/tuf/targets"
			cfg.LocalMetadataDir = filepath.Join(work, "metadata")
			cfg.LocalTargetsDir = filepath.Join(work, "targets")
			u, err := updater.New(cfg)
			if err != nil {
				return nil, err
			}
			if err := u.Refresh(); err != nil {
				return nil, err
			}
			if got := u.GetTrustedMetadataSet().Root.Signed.Version; got != v.root.Signed.Version {
				t.Fatalf("go-tuf trusts root v%d, want v%d", got, v.root.Signed.Version)
			}
			info, err := u.GetTargetInfo(target)
			if err != nil {
				return nil, err
			}
			_, data, err := u.DownloadTarget(info, filepath.Join(work, "dl-"+strings.ReplaceAll(target, "/", "_")), "")
			return data, err
		}
	})
}
