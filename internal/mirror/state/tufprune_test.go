package state

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// stateFetcher reads what the mirror serves at /tuf/: the served
// timestamp and the published files.
type stateFetcher struct{ st *State }

func (f stateFetcher) Fetch(_ context.Context, path string, _ int64) (io.ReadCloser, error) {
	var b []byte
	var err error
	if name, ok := strings.CutPrefix(path, "metadata/"); ok {
		b, err = f.st.TUFMetadata(name)
	} else {
		b, err = f.st.TUFDocument(path)
	}
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *State) tufFileNames(t *testing.T) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktTUFFiles).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPruneTUF_KeepsWhatServedVersionsNeed: after ten versions, each
// committed and pruned, the mirror holds the snapshots of its retained
// versions, every root, and what they name; a fresh client initialised
// with the first root syncs from what it serves.
func TestPruneTUF_KeepsWhatServedVersionsNeed(t *testing.T) {
	ctx := context.Background()
	st, err := Open(filepath.Join(t.TempDir(), "mirror.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := tuftest.NewVendor(t, "", 0)
	m := tuftest.View(2, 3, 1)
	v.Build(m)
	root1 := v.RootData
	if err := tuf.Init(ctx, st.TUFStore(), v.TenantID, v.RootData); err != nil {
		t.Fatal(err)
	}
	c := tuf.NewClient(v.TenantID, tuftest.Fetcher{Repo: v.Repo}, st.TUFStore(), tuf.ClientOptions{})
	deleted := 0
	for i := range 10 {
		if i > 0 {
			tuftest.AddRelease(m, i%2, i, fmt.Sprintf("2.%d.0", i))
			m.Policies[0].Priority = 100 + i // a tenant document changes too
			if i == 5 {
				v.RotateRootKey(0, 99)
			}
			v.Build(m)
		}
		if _, err := c.Update(ctx); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		man, err := c.Repository().Manifest()
		if err != nil {
			t.Fatal(err)
		}
		env, err := TUFEnvelope(man)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(Commit{Envelope: env, Manifest: man, Hash: fmt.Sprintf("tuf-%d", i), Now: v.Now, TUFTimestamp: v.Repo.Get("metadata/timestamp.json")}); err != nil {
			t.Fatal(err)
		}
		n, err := st.PruneTUF()
		if err != nil {
			t.Fatal(err)
		}
		deleted += n
	}
	if deleted == 0 {
		t.Fatal("nothing was pruned")
	}
	served, err := st.servedSnapshotVersion()
	if err != nil {
		t.Fatal(err)
	}
	roots, snapshots := 0, map[int64]bool{}
	for _, n := range st.tufFileNames(t) {
		switch ver, role := publishedVersion(n); role {
		case "root":
			roots++
		case "snapshot":
			snapshots[ver] = true
		}
	}
	t.Run("roots", func(t *testing.T) {
		if roots != 2 {
			t.Errorf("roots kept = %d, want 2 (every version)", roots)
		}
	})
	t.Run("snapshots", func(t *testing.T) {
		want := map[int64]bool{served: true, served - 1: true}
		if len(snapshots) != len(want) || !snapshots[served] || !snapshots[served-1] {
			t.Errorf("snapshot versions kept = %v, want %v (retain 2)", snapshots, want)
		}
	})
	t.Run("a fresh client syncs from what the mirror serves", func(t *testing.T) {
		cs := tuf.NewMemStore()
		if err := tuf.Init(ctx, cs, v.TenantID, root1); err != nil {
			t.Fatal(err)
		}
		fresh := tuf.NewClient(v.TenantID, stateFetcher{st}, cs, tuf.ClientOptions{})
		if _, err := fresh.Update(ctx); err != nil {
			t.Fatalf("update from the pruned mirror: %v", err)
		}
		got, err := fresh.Repository().Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Releases) != len(m.Releases) {
			t.Errorf("releases = %d, want %d", len(got.Releases), len(m.Releases))
		}
	})
}
