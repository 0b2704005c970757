package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Deps returns the import paths pkg depends on, directly or not, without
// its tests (`go list -deps`): for tests that hold a package to the
// layering of docs/architecture.md.
func Deps(t testing.TB, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v %s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// ForbidDeps fails t for each dependency of pkg that starts with one of
// the forbidden prefixes.
func ForbidDeps(t testing.TB, pkg string, forbidden ...string) {
	t.Helper()
	deps := Deps(t, pkg)
	if len(deps) < 2 {
		t.Fatalf("go list -deps %s listed %d packages; the listing is broken", pkg, len(deps))
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("%s depends on %s (forbidden: %s)", pkg, d, f)
			}
		}
	}
}
