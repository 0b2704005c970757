package update

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

var versionSeeds = []string{
	"1.2.3", "0.0.0", "1.2.3-rc.1", "1.2.3-rc.10", "1.2.3-rc.2", "1.2.3+b.1", "1.2.3-alpha+b", "1.2.3-0", "1.2.3-01",
	"1.2", "v1.2.3", "01.2.3", "1.2.3.4", "1.2.3-", "1.2.3+", "1.2.3-a..b", "1.2.3-a_b", "18446744073709551616.0.0",
	"1.2.3-18446744073709551616", "1.2.3-99999999999999999999999.1", "1.2.3-a.1", "1.2.3-a", "1.2.3-a.b.c", "1.2.3-1.a",
	"", ".", "..", "1..3", "1.2.-3", "1.2.3-+x", "1.2.3+x-y", "1.2.3-x+y+z", "1.2.3-é",
}

func TestParseVersion_MatchesSemver(t *testing.T) {
	for _, s := range versionSeeds {
		t.Run(s, func(t *testing.T) { checkAgainstSemver(t, s, "1.2.3-rc.1") })
	}
}

func TestVersion_CompareMatchesSemver(t *testing.T) {
	for _, a := range versionSeeds {
		for _, b := range versionSeeds {
			checkAgainstSemver(t, a, b)
		}
	}
}

// checkAgainstSemver asserts that parseVersion accepts exactly what
// semver.StrictNewVersion accepts and that compare agrees with
// semver.Compare.
func checkAgainstSemver(t *testing.T, a, b string) {
	t.Helper()
	va, okA := parseVersion(a)
	sa, errA := semver.StrictNewVersion(a)
	if okA != (errA == nil) {
		t.Fatalf("parseVersion(%q) ok=%v, semver err=%v", a, okA, errA)
	}
	vb, okB := parseVersion(b)
	sb, errB := semver.StrictNewVersion(b)
	if okB != (errB == nil) {
		t.Fatalf("parseVersion(%q) ok=%v, semver err=%v", b, okB, errB)
	}
	if !okA || !okB {
		return
	}
	if got, want := va.compare(vb), sa.Compare(sb); got != want {
		t.Fatalf("compare(%q, %q) = %d, semver says %d", a, b, got, want)
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range versionSeeds {
		f.Add(s, "1.2.3-rc.1")
	}
	f.Fuzz(checkAgainstSemver)
}
