package tuf

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/update"
)

// normalise blanks what a TUF repository does not carry over from a
// schema-1 manifest and compacts the raw JSON fields.
func normalise(t *testing.T, m *snapshot.Manifest) *snapshot.Manifest {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out snapshot.Manifest
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	out.SnapshotID, out.Sequence, out.CreatedAt, out.ExpiresAt, out.Previous = "", 0, time.Time{}, time.Time{}, ""
	return &out
}

func TestBuilder_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		products, releases, perBin int
	}{
		{"no bins", 3, 10, 0},
		{"hashed bins", 2, 40, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: tc.perBin})
			want := view(tc.products, tc.releases, 2)
			// One release without artifacts travels in the product document.
			want.Releases = append(want.Releases, snapshot.Release{
				ReleaseID: "rel_zempty", ProductID: want.Products[0].ProductID, Channel: "beta", Version: "0.0.1",
				PublishedAt: snapshottest.Now, Status: "ACTIVE", Metadata: json.RawMessage(`{"notes":"x"}`), Artifacts: []snapshot.ReleaseArtifact{},
			})
			// Release metadata with a float and characters JSON escapes
			// takes the slow signing path of its bin.
			want.Releases[0].Metadata = json.RawMessage(`{"notes":"a<b & \u2028","x":1.5}`)
			f.build(want)
			c := f.client(NewMemStore(), f.rootData)
			if _, err := c.Update(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, err := c.Repository().Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if g, w := normalise(t, got), normalise(t, want); !reflect.DeepEqual(g, w) {
				gb, _ := json.Marshal(g)
				wb, _ := json.Marshal(w)
				t.Fatalf("manifest differs:\ngot  %.600s\nwant %.600s", gb, wb)
			}
			if _, err := update.New(got); err != nil {
				t.Fatalf("update engine refuses the assembled manifest: %v", err)
			}
		})
	}
}

func paths(files []File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	slices.Sort(out)
	return out
}

func TestBuilder_ChangeInProportion(t *testing.T) {
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 40, 1)
	f.build(m)

	t.Run("same view changes nothing", func(t *testing.T) {
		if files := f.build(m); len(files) != 0 {
			t.Fatalf("got %v, want no file", paths(files))
		}
	})
	t.Run("one release: one bin, snapshot, timestamp", func(t *testing.T) {
		addRelease(m, 1, 1)
		got := paths(f.build(m))
		if len(got) != 3 || !strings.HasPrefix(got[0], "metadata/") || !strings.Contains(got[0], "."+BinPrefix(m.Products[1].ProductID)+"-") ||
			!strings.HasSuffix(got[1], ".snapshot.json") || got[2] != "metadata/timestamp.json" {
			t.Fatalf("got %v, want one bin of product 2, the snapshot and the timestamp", got)
		}
	})
	t.Run("policy change: one document, targets, snapshot, timestamp", func(t *testing.T) {
		m.Policies[0].Priority++
		got := paths(f.build(m))
		want := 4
		if len(got) != want || !strings.HasPrefix(got[3], "targets/docs/") || !strings.HasSuffix(got[3], ".policies.json") {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("freshness refresh: the timestamp only", func(t *testing.T) {
		f.now = f.now.Add(time.Hour)
		got := f.refresh()
		if len(got) != 1 || got[0].Path != "metadata/timestamp.json" || len(got[0].Data) > 4<<10 {
			t.Fatalf("got %v (%d bytes)", paths(got), len(got[0].Data))
		}
	})
	t.Run("snapshot close to expiry is re-signed on refresh", func(t *testing.T) {
		f.now = f.now.Add(30*24*time.Hour - 2*time.Hour)
		got := paths(f.refresh())
		if len(got) != 2 || !strings.HasSuffix(got[0], ".snapshot.json") {
			t.Fatalf("got %v, want the snapshot and the timestamp", got)
		}
	})
}

func TestBuilder_SharedProducts(t *testing.T) {
	// Two tenants seeing the same product reference the same product
	// metadata; a release re-signs the product once.
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(1, 20, 1)
	f.build(m)
	other := *m
	other.TenantID, other.Tenant.TenantID = "ten_other", "ten_other"
	b2 := &Builder{TenantID: "ten_other", Products: f.products, Keys: f.builder.Keys}
	st2, files, err := b2.BuildTenant(ctx, nil, &other, f.now)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths(files) {
		if strings.Contains(p, ".p-") || strings.Contains(p, ".b-") {
			t.Fatalf("second tenant re-signed product metadata %s", p)
		}
	}
	addRelease(m, 0, 1)
	addRelease(&other, 0, 1)
	prodFiles := f.build(m)
	_, files2, err := b2.Build(ctx, st2, &other, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(files2); len(got) != 2 {
		t.Fatalf("second tenant after a shared release: got %v, want its snapshot and timestamp only", got)
	}
	if len(prodFiles) != 3 {
		t.Fatalf("first tenant: got %v", paths(prodFiles))
	}
}
