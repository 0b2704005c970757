package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Tool is the path of the program name (a client nobody here wrote, for
// an interop test). Missing, the test fails under CI=true (scripts/ci-deps.sh
// installs it there) and is skipped otherwise.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (scripts/ci-deps.sh installs it): %v", name, err)
	}
	t.Skipf("%s not installed: %v", name, err)
	return ""
}
