package update

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/update/updatetest"
)

// answers runs every query against a fresh engine for m and returns the
// response documents (or error messages), one per line.
func answers(t *testing.T, m *snapshot.Manifest, raws []string) string {
	t.Helper()
	e, err := New(m)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var out []byte
	for _, raw := range raws {
		var q Query
		if ParseRawQuery(raw, &q) != nil {
			continue
		}
		d, err := e.Check(&q, now)
		if err != nil {
			out = append(out, err.Error()...)
		} else {
			out = d.AppendJSON(out)
		}
		out = append(out, '\n')
	}
	return string(out)
}

// TestNew_OrderIndependent checks that the index answers the same whatever
// the order of the manifest's lists: snapshots keep them sorted by id (the
// fast path), other producers need not (a sorted permutation).
func TestNew_OrderIndependent(t *testing.T) {
	opts := updatetest.Options{Products: 3, Releases: 120, Policies: 8}
	raws := updatetest.Queries(opts, 1500, 11)
	want := answers(t, updatetest.Manifest(opts), raws)
	if !strings.Contains(want, `"update_available":true`) {
		t.Fatal("no query is offered an update: the comparison proves nothing")
	}
	shuffles := map[string]func(m *snapshot.Manifest, rng *rand.Rand){
		"releases": func(m *snapshot.Manifest, rng *rand.Rand) {
			rng.Shuffle(len(m.Releases), func(i, j int) { m.Releases[i], m.Releases[j] = m.Releases[j], m.Releases[i] })
		},
		"artifacts": func(m *snapshot.Manifest, rng *rand.Rand) {
			rng.Shuffle(len(m.Artifacts), func(i, j int) { m.Artifacts[i], m.Artifacts[j] = m.Artifacts[j], m.Artifacts[i] })
		},
		"releases reversed": func(m *snapshot.Manifest, _ *rand.Rand) { slices.Reverse(m.Releases) },
		"release artifacts": func(m *snapshot.Manifest, rng *rand.Rand) {
			for i := range m.Releases {
				a := m.Releases[i].Artifacts
				rng.Shuffle(len(a), func(i, j int) { a[i], a[j] = a[j], a[i] })
			}
		},
		"rollouts": func(m *snapshot.Manifest, _ *rand.Rand) { slices.Reverse(m.Rollouts) },
	}
	for name, shuffle := range shuffles {
		t.Run(name, func(t *testing.T) {
			m := updatetest.Manifest(opts)
			shuffle(m, rand.New(rand.NewPCG(1, 2)))
			if got := answers(t, m, raws); got != want {
				t.Errorf("answers differ from the sorted manifest's")
			}
		})
	}
}

func TestNew_DuplicateIDs(t *testing.T) {
	tests := []struct {
		name  string
		build func(*fixture)
		want  string
	}{
		{"artifact, sorted list", func(f *fixture) {
			f.m.Artifacts = append(f.m.Artifacts, f.m.Artifacts[len(f.m.Artifacts)-1])
		}, `artifact "b2-art-linux/x64/deb": duplicate id`},
		{"artifact, unsorted list", func(f *fixture) {
			f.m.Artifacts = append(f.m.Artifacts, f.m.Artifacts[0])
			slices.Reverse(f.m.Artifacts)
		}, `artifact "a1-art-linux/x64/deb": duplicate id`},
		{"release, sorted list", func(f *fixture) {
			f.release("b2", "prd_a", "beta", "2.0.0", "ACTIVE")
		}, `release "b2": duplicate id`},
		{"release, first in list order named", func(f *fixture) {
			f.release("b2", "prd_a", "beta", "2.0.0", "ACTIVE").release("a1", "prd_a", "stable", "1.0.1", "ACTIVE")
		}, `release "b2": duplicate id`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture().product("prd_a", "open").
				release("a1", "prd_a", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
				release("b2", "prd_a", "stable", "1.1.0", "ACTIVE", "linux/x64/deb")
			tc.build(f)
			_, err := New(f.m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestNew_ManyBlockedVersions covers the map lookup used beyond
// maxBlockedScan blocked versions: the same rules as the short scan.
func TestNew_ManyBlockedVersions(t *testing.T) {
	for _, extra := range []int{0, 2 * maxBlockedScan} {
		f := newFixture().product("prd_a", "open").
			release("r1", "prd_a", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
			release("r2", "prd_a", "stable", "1.1.0+b7", "ACTIVE", "linux/x64/deb").
			release("r3", "prd_a", "stable", "1.2.0", "ACTIVE", "linux/x64/deb").
			release("r4", "prd_a", "stable", "1.3.0", "ACTIVE", "linux/x64/deb").
			blocked("prd_a", "1.1.0").blocked("prd_a", "v1.3")
		for i := range extra {
			f.blocked("prd_a", "9.9."+itoa(i))
		}
		e := f.engine(t)
		for _, tc := range []struct{ version, want string }{
			{"0.9.0", "1.2.0"}, // 1.3.0 is blocked as v1.3
			{"1.0.0", "1.2.0"}, // 1.1.0+b7 is blocked as 1.1.0
			{"1.2.0", ""},
		} {
			d, err := e.Check(&Query{Product: "prd_a", Channel: "stable", Platform: "linux", Arch: "x64", Version: tc.version}, now)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if d.UpdateAvailable {
				got = d.Release.Version
			}
			if got != tc.want {
				t.Errorf("%d extra blocked, client %s: offered %q, want %q", extra, tc.version, got, tc.want)
			}
		}
	}
}

// TestMetadataOf_MatchesCompactObject checks the no-copy path against the
// general one.
func TestMetadataOf_MatchesCompactObject(t *testing.T) {
	for _, raw := range []string{
		`{}`, ``, `null`, `[1]`, `"x"`, `{"a":1}`, `{"a": 1}`, ` {"a":1}`, `{"a":"x y"}`, `{"a":"x\" y"}`,
		`{"a":"\\"}`, `{"a":"\\" , "b":2}`, `{"a":"\"","b" : 1}`, `{"a":[1,{"b":"c d"}]}`, `{bad`, `{"a":1}x`, `{"a":"\u2028"}`,
		"{\"a\":\"\t\"}", "{\n}", `{"a":"unterminated}`,
	} {
		t.Run(raw, func(t *testing.T) {
			got, want := metadataOf(json.RawMessage(raw)), compactObject(json.RawMessage(raw))
			if !bytes.Equal(got, want) {
				t.Errorf("metadataOf(%q) = %q, want %q", raw, got, want)
			}
		})
	}
}
