package e2e

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// TestSystemd_InstallStepsWorkVerbatim runs the install steps written in
// configs/outpost-*.service, as root, against a temporary root directory
// (every /etc, /var/lib and /usr/local path moved under it), with the
// unprivileged user nobody standing in for the service user, then starts
// the unit's ExecStart the way systemd would (as that user, with
// STATE_DIRECTORY and CONFIGURATION_DIRECTORY set) and waits for the
// daemon to answer. Only useradd and systemctl are not run.
func TestSystemd_InstallStepsWorkVerbatim(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the install steps need root (CI runs as root)")
		}
		t.Skip("the install steps need root")
	}
	tl := buildTools(t)
	repo := testenv.RepoRoot(t)
	// The tenant's root.json the vendor handed over, readable by the
	// service user.
	const mirrorTenant = "ten_01JD0000000000000000000000"
	rootDir, err := os.MkdirTemp("", "outpost-tenant-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rootDir) })
	rootFile := filepath.Join(rootDir, "root.json")
	if err := os.Chmod(rootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootFile, tuftest.NewVendor(t, mirrorTenant, 1).RootData, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		unit, user, binary, built, stateDir, health string
		placeholders                                []string
	}{
		{"outpost-controlplane.service", "outpost", "controlplane", tl.controlplane, "/var/lib/outpost/controlplane", "/readyz", nil},
		{"outpost-mirror.service", "outpost-mirror", "mirror", tl.mirror, "/var/lib/outpost-mirror", "/healthz",
			[]string{"TENANT", mirrorTenant, "ROOT_JSON", rootFile, " [--vendor-url URL --credential CRED]", ""}},
	}
	for _, c := range cases {
		t.Run(c.unit, func(t *testing.T) {
			root, err := os.MkdirTemp("", "outpost-root-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(root) })
			if err := os.Chmod(root, 0o755); err != nil { // nobody must traverse it
				t.Fatal(err)
			}
			for _, d := range []string{"usr/local/bin", "etc/systemd/system", "var/lib", "bin", "configs"} {
				os.MkdirAll(filepath.Join(root, d), 0o755)
			}
			// The repository's bin/ and configs/ as the steps name them.
			copyTo(t, c.built, filepath.Join(root, "bin", c.binary))
			copyTo(t, filepath.Join(repo, "configs", "controlplane.yaml"), filepath.Join(root, "configs", "controlplane.yaml"))
			copyTo(t, filepath.Join(repo, "configs", c.unit), filepath.Join(root, "configs", c.unit))

			steps, execStart := unitSteps(t, filepath.Join(repo, "configs", c.unit))
			moved := func(s string) string {
				for _, p := range []string{"/usr/local/bin/", "/etc/", "/var/lib/"} {
					s = strings.ReplaceAll(s, " "+p, " "+filepath.Join(root, p)+"/")
				}
				s = strings.ReplaceAll(s, "-o "+c.user+" -g "+c.user, "-o nobody -g nogroup")
				s = strings.ReplaceAll(s, "runuser -u "+c.user+" --", "runuser -u nobody --")
				for i := 0; i+1 < len(c.placeholders); i += 2 {
					s = strings.ReplaceAll(s, c.placeholders[i], c.placeholders[i+1])
				}
				return s
			}
			env := append(os.Environ(), "PATH="+filepath.Join(root, "usr/local/bin")+":"+os.Getenv("PATH"))
			for _, step := range steps {
				if strings.HasPrefix(step, "useradd ") || strings.HasPrefix(step, "systemctl ") {
					continue
				}
				cmd := exec.Command("bash", "-euc", moved(step))
				cmd.Dir, cmd.Env = root, env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("step %q failed: %v\n%s", step, err, out)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "etc/systemd/system", c.unit)); err != nil {
				t.Errorf("the unit was not installed: %v", err)
			}

			addr := testenv.FreePort(t)
			start := strings.NewReplacer(
				"${STATE_DIRECTORY}", filepath.Join(root, c.stateDir),
				"${CONFIGURATION_DIRECTORY}", filepath.Join(root, "etc/outpost"),
				"/usr/local/bin/", filepath.Join(root, "usr/local/bin")+"/",
			).Replace(execStart)
			// As systemd would: the binary itself, as the service user.
			args := strings.Fields(start)
			d := exec.Command(args[0], args[1:]...)
			d.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
			d.Env = append(env, "OUTPOST_LISTEN="+addr)
			var logb strings.Builder
			d.Stdout, d.Stderr = &logb, &logb
			if err := d.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Process.Kill(); d.Wait() })
			deadline := time.Now().Add(20 * time.Second)
			for {
				r, err := http.Get("http://" + addr + c.health)
				if err == nil {
					r.Body.Close()
					if r.StatusCode == http.StatusOK {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s did not answer %s as the unit starts it (%s):\n%s", c.binary, c.health, start, logb.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// unitSteps reads the install commands from a unit's header comment
// ("#   cmd" lines) and its ExecStart.
func unitSteps(t *testing.T, path string) (steps []string, execStart string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if cmd, ok := strings.CutPrefix(line, "#   "); ok {
			if i := strings.Index(cmd, "   #"); i >= 0 {
				cmd = cmd[:i]
			}
			steps = append(steps, strings.TrimSpace(cmd))
		}
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = v
		}
	}
	if len(steps) == 0 || execStart == "" {
		t.Fatalf("%s: no install steps or no ExecStart", path)
	}
	return steps, execStart
}

func copyTo(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v %s", from, to, err, out)
	}
	os.Chmod(to, 0o755)
}
