package update

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestBucket_Behaviour(t *testing.T) {
	// The bucket is fixed by docs/conditions.md: other implementations
	// (and older snapshots) must agree, so pin a few values.
	tests := []struct {
		rollout, client string
	}{{"rol_1", "client-1"}, {"rol_1", "client-2"}, {"rol_2", "client-1"}, {"r", ""}}
	for _, tc := range tests {
		t.Run(tc.rollout+":"+tc.client, func(t *testing.T) {
			got := Bucket(tc.rollout, tc.client)
			if want := referenceBucket(tc.rollout, tc.client); got != want || got >= 10000 {
				t.Errorf("got %d, want %d", got, want)
			}
		})
	}
	long := string(make([]byte, 1000)) // past the stack buffer
	if got, want := Bucket("rol_1", long), referenceBucket("rol_1", long); got != want {
		t.Errorf("long client id: got %d, want %d", got, want)
	}
}

func TestThreshold_Behaviour(t *testing.T) {
	tests := []struct {
		pct  float64
		want uint64
	}{{0, 0}, {-1, 0}, {0.01, 1}, {0.29, 29}, {33.33, 3333}, {50, 5000}, {99.99, 9999}, {100, 10000}, {150, 10000}}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.pct), func(t *testing.T) {
			if got := threshold(tc.pct); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRollout_RaisingPercentageOnlyAdds checks, for many clients, that a
// client inside a rollout at p% is inside at every higher percentage, and
// that the share inside is within half a point of p.
func TestRollout_RaisingPercentageOnlyAdds(t *testing.T) {
	const n = 100_000
	rng := rand.New(rand.NewPCG(1, 2))
	clients := make([]string, n)
	for i := range clients {
		clients[i] = fmt.Sprintf("%016x-%d", rng.Uint64(), i)
	}
	for _, rollout := range []string{"rol_a", "rol_0000000000000000000000000b"} {
		buckets := make([]uint64, n)
		for i, c := range clients {
			buckets[i] = Bucket(rollout, c)
		}
		pcts := []float64{0, 0.5, 1, 5, 10, 25, 33.3, 50, 75, 90, 99, 100}
		for k, p := range pcts {
			t.Run(fmt.Sprintf("%s/%v%%", rollout, p), func(t *testing.T) {
				in := 0
				for i, b := range buckets {
					inside := b < threshold(p)
					if inside {
						in++
					}
					if k > 0 && b < threshold(pcts[k-1]) && !inside {
						t.Fatalf("client %s inside at %v%% but not at %v%%", clients[i], pcts[k-1], p)
					}
				}
				share := float64(in) * 100 / n
				if share < p-0.5 || share > p+0.5 {
					t.Errorf("share inside = %.3f%%, want %v±0.5", share, p)
				}
			})
		}
	}
}

// TestRollout_EngineMonotonic drives the engine: a client offered the
// rolled-out release at p% is still offered it at every higher p.
func TestRollout_EngineMonotonic(t *testing.T) {
	engines := map[float64]*Engine{}
	pcts := []float64{0, 10, 20, 50, 80, 100}
	for _, p := range pcts {
		f := newFixture().product("prd_r", "open").
			release("r1", "prd_r", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
			release("r2", "prd_r", "stable", "1.1.0", "ACTIVE", "linux/x64/deb").
			release("r3", "prd_r", "stable", "1.2.0", "ACTIVE", "linux/x64/deb").
			rollout("rol_m", "r3", p, "active")
		engines[p] = f.engine(t)
	}
	for i := range 2000 {
		query := Query{Product: "prd_r", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0", ClientID: fmt.Sprintf("c%d", i)}
		wasIn := false
		for _, p := range pcts {
			d, err := engines[p].Check(&query, now)
			if err != nil {
				t.Fatal(err)
			}
			in := d.Release.Version == "1.2.0"
			if !in && d.Release.Version != "1.1.0" {
				t.Fatalf("client %s at %v%%: offered %s", query.ClientID, p, d.Release.Version)
			}
			if wasIn && !in {
				t.Fatalf("client %s dropped out when raising to %v%%", query.ClientID, p)
			}
			wasIn = in
		}
	}
}

// TestRollout_LeftOutReason: a client left out of the only newer
// release's rollout is told so, not "no newer release"; one with nothing
// newer at all still gets "no newer release".
func TestRollout_LeftOutReason(t *testing.T) {
	e := newFixture().product("prd_r", "open").
		release("r1", "prd_r", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
		release("r2", "prd_r", "stable", "1.1.0", "ACTIVE", "linux/x64/deb").
		rollout("rol_z", "r2", 0, "active").engine(t)
	cases := []struct {
		name     string
		version  string
		clientID string
		want     string
	}{
		{"left out of the rollout", "1.0.0", "c1", ReasonNotInRollout},
		{"no client id is in no rollout", "1.0.0", "", ReasonNotInRollout},
		{"nothing newer", "1.1.0", "c1", ReasonUpToDate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Check(&Query{Product: "prd_r", Channel: "stable", Platform: "linux", Arch: "x64", Version: tc.version, ClientID: tc.clientID}, now)
			if err != nil {
				t.Fatal(err)
			}
			if d.UpdateAvailable || d.Reason != tc.want {
				t.Errorf("got available %v reason %q, want %q", d.UpdateAvailable, d.Reason, tc.want)
			}
		})
	}
}
