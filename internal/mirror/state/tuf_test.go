package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"

	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

func TestTUFStore_PersistsAndPublishes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mirror.db")
	st, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := tuftest.NewVendor(t, "", 0)
	m := tuftest.View(2, 3, 1)
	v.Build(m)
	if err := tuf.Init(ctx, st.TUFStore(), v.TenantID, v.RootData); err != nil {
		t.Fatal(err)
	}
	c := tuf.NewClient(v.TenantID, tuftest.Fetcher{Repo: v.Repo}, st.TUFStore(), tuf.ClientOptions{})
	ch, err := c.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("published names hold the verified bytes", func(t *testing.T) {
		for _, name := range []string{"1.root.json", "1.snapshot.json", "1.targets.json"} {
			got, err := st.TUFMetadata(name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if want := v.Repo.Get("metadata/" + name); string(got) != string(want) {
				t.Errorf("%s: served bytes differ from the published ones", name)
			}
		}
		for _, d := range ch.Documents {
			want := c.Repository().Docs[d]
			got, err := st.TUFDocument(tuf.TargetPath(d, sumHex(want)))
			if err != nil || string(got) != string(want) {
				t.Errorf("document %s: got %d bytes, err %v", d, len(got), err)
			}
		}
	})

	t.Run("no timestamp is served before a commit", func(t *testing.T) {
		if _, err := st.TUFMetadata("timestamp.json"); !errors.Is(err, tuf.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
		if err := st.ServeTUFTimestamp(1, []byte("{}")); err == nil {
			t.Fatal("serving a timestamp with nothing held: got nil error")
		}
	})

	t.Run("commit serves the timestamp in the same transaction", func(t *testing.T) {
		repo := c.Repository()
		man, err := repo.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		env, err := TUFEnvelope(man)
		if err != nil {
			t.Fatal(err)
		}
		ts := v.Repo.Get("metadata/timestamp.json")
		if err := st.Commit(Commit{Envelope: env, Manifest: man, Hash: "tuf", Now: v.Now, TUFTimestamp: ts}); err != nil {
			t.Fatal(err)
		}
		got, err := st.TUFMetadata("timestamp.json")
		if err != nil || string(got) != string(ts) {
			t.Fatalf("served timestamp: %v", err)
		}
		h, err := st.Current()
		if err != nil {
			t.Fatal(err)
		}
		if h.Format != FormatTUF || h.Sequence != repo.Snapshot.Signed.Version || len(h.Manifest.Releases) != len(man.Releases) {
			t.Errorf("held: format %q sequence %d releases %d, want tuf %d %d", h.Format, h.Sequence, len(h.Manifest.Releases), repo.Snapshot.Signed.Version, len(man.Releases))
		}
		if err := st.ServeTUFTimestamp(h.Sequence+1, ts); err == nil {
			t.Error("a timestamp for a version not held: got nil error")
		}
	})

	t.Run("a restart loads the trusted state", func(t *testing.T) {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st2, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		c2 := tuf.NewClient(v.TenantID, tuftest.Fetcher{Repo: v.Repo}, st2.TUFStore(), tuf.ClientOptions{})
		repo, err := c2.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := repo.Snapshot.Signed.Version, c.Repository().Snapshot.Signed.Version; got != want {
			t.Errorf("snapshot version after restart: got %d, want %d", got, want)
		}
		// A version committed with the older envelope of the whole
		// manifest (a mirror.db written before references) still loads.
		h, err := st2.Current()
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := c.Repository().Manifest(); h == nil || !reflect.DeepEqual(h.Manifest, want) {
			t.Error("held manifest after restart differs from the committed one")
		}
	})
}

func TestTUFStore_RefusesUnknownNames(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "mirror.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{"other/x.json", "metadata/a/b.json", "metadata/x.txt"} {
		if err := st.TUFStore().Put(context.Background(), name, []byte(`{"signed":{"version":1}}`)); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
	if err := st.TUFStore().Put(context.Background(), "metadata/targets.json", []byte(`{"signed":{"version":0}}`)); err == nil {
		t.Error("version 0: got nil error")
	}
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestCommit_TUFByReference: a TUF commit stores a reference to the
// version, not its content; the manifest is served from memory, and
// after a restart assembled again from the published files, for the held
// version and for an older retained one alike.
func TestCommit_TUFByReference(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mirror.db")
	st, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	v := tuftest.NewVendor(t, "", 0)
	m := tuftest.View(3, 20, 1)
	v.Build(m)
	if err := tuf.Init(ctx, st.TUFStore(), v.TenantID, v.RootData); err != nil {
		t.Fatal(err)
	}
	c := tuf.NewClient(v.TenantID, tuftest.Fetcher{Repo: v.Repo}, st.TUFStore(), tuf.ClientOptions{Now: func() time.Time { return v.Now }})
	var a tuf.Assembler
	want := map[int64]*snapshot.Manifest{}
	commit := func(t *testing.T) *snapshot.Manifest {
		t.Helper()
		if _, err := c.Update(ctx); err != nil {
			t.Fatal(err)
		}
		man, err := a.Manifest(c.Repository())
		if err != nil {
			t.Fatal(err)
		}
		ts, err := st.TUFStore().Get(ctx, "metadata/timestamp.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(Commit{Manifest: man, Hash: "tuf-" + sumHex(ts), Now: v.Now, TUFTimestamp: ts}); err != nil {
			t.Fatal(err)
		}
		want[man.Sequence] = man
		return man
	}
	first := commit(t)

	t.Run("the commit holds a reference, the manifest stays in memory", func(t *testing.T) {
		h, err := st.Current()
		if err != nil {
			t.Fatal(err)
		}
		if h.Manifest != first {
			t.Error("the held manifest was decoded again, want the committed one")
		}
		if len(h.Envelope) > 4<<10 {
			t.Errorf("held envelope %d B, want a reference of a few hundred", len(h.Envelope))
		}
	})
	tuftest.AddRelease(m, 1, 1, "9.0.1")
	v.Now = v.Now.Add(time.Second)
	v.Build(m)
	second := commit(t)

	t.Run("after a restart the versions are assembled from the published files", func(t *testing.T) {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if st, err = Open(path, 0); err != nil {
			t.Fatal(err)
		}
		h, err := st.Current()
		if err != nil {
			t.Fatal(err)
		}
		if h.Manifest == second || !reflect.DeepEqual(h.Manifest, second) {
			t.Fatalf("held manifest after a restart differs from the committed one")
		}
		if again, err := st.Current(); err != nil || again.Manifest != h.Manifest {
			t.Errorf("the read-back manifest is assembled again on every read (err %v)", err)
		}
		hs, err := st.Retained()
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 2 {
			t.Fatalf("%d retained, want 2", len(hs))
		}
		for _, h := range hs {
			if !reflect.DeepEqual(h.Manifest, want[h.Sequence]) {
				t.Errorf("retained version %d: manifest differs from the committed one", h.Sequence)
			}
		}
		full, err := st.BySnapshotID(first.SnapshotID)
		if err != nil || !reflect.DeepEqual(full.Manifest, first) {
			t.Fatalf("BySnapshotID(%s): %v", first.SnapshotID, err)
		}
		// What GET /v1/snapshots/{id} serves: the stored envelope and
		// record, the manifest not decoded.
		env, err := st.EnvelopeBySnapshotID(first.SnapshotID)
		if err != nil || env.Manifest != nil || !bytes.Equal(env.Envelope, full.Envelope) || !reflect.DeepEqual(env.Record, full.Record) {
			t.Errorf("EnvelopeBySnapshotID(%s) = %+v, %v; want BySnapshotID's envelope and record without the manifest", first.SnapshotID, env, err)
		}
		if _, err := st.EnvelopeBySnapshotID("snp_unknown"); !errors.Is(err, ErrNotFound) {
			t.Errorf("EnvelopeBySnapshotID(unknown) = %v, want ErrNotFound", err)
		}
		again, err := st.Retained()
		if err != nil {
			t.Fatal(err)
		}
		for i := range again {
			if again[i].Manifest != hs[i].Manifest {
				t.Errorf("retained version %d assembled again on the next read (the GC's), want it kept", hs[i].Sequence)
			}
		}
	})
}
