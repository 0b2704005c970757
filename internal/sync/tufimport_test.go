package sync_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// tufBundle exports the vendor's repository as a TUF bundle for a
// receiver holding snapshot version since, with every artifact the
// workflow reports added whose bytes the vendor publishes.
func tufBundle(t testing.TB, v *tuftest.Vendor, since int64) []byte {
	t.Helper()
	return tufBundleAck(t, v, since, nil)
}

// tufBundleAck is tufBundle carrying a signed acknowledgement.
func tufBundleAck(t testing.TB, v *tuftest.Vendor, since int64, ack []byte) []byte {
	t.Helper()
	ctx := context.Background()
	read := func(_ context.Context, path string) ([]byte, error) {
		if b := v.Repo.Get(path); b != nil {
			return b, nil
		}
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	held, err := tuf.NewReceiverStore(ctx, read, since)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = bundle.ExportTUF(ctx, &buf, bundle.TUFExport{
		TenantID: v.TenantID, Since: since, Repo: tuftest.Fetcher{Repo: v.Repo}, Held: held,
		Select: func(_ context.Context, ts []tuf.Target, _ *tuf.Repository) ([]tuf.Target, error) {
			var out []tuf.Target
			seen := map[string]bool{}
			for _, tg := range ts {
				if v.Repo.Get(tuf.TargetPath(tg.Path, tg.SHA256)) != nil && !seen[tg.SHA256] && tg.Custom.Status == "ACTIVE" {
					seen[tg.SHA256] = true
					out = append(out, tg)
				}
			}
			return out, nil
		},
		Open: func(_ context.Context, tg tuf.Target) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(v.Repo.Get(tuf.TargetPath(tg.Path, tg.SHA256)))), nil
		},
		Now: func() time.Time { return time.Now() }, TempDir: t.TempDir(), Ack: ack,
	})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// entries lists a bundle's entry names.
func entries(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
}

// rewrite returns the bundle with entries passed through edit.
func rewrite(t *testing.T, b []byte, edit func(name string, data []byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		data = edit(h.Name, data)
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return out.Bytes()
}

// renameEntry returns the bundle with entry from renamed to.
func renameEntry(t *testing.T, b []byte, from, to string) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == from {
			h.Name = to
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.Copy(tw, tr)
	}
	tw.Close()
	return out.Bytes()
}

// mirrorState is what must not move when a bundle is refused.
type mirrorState struct {
	seq       int64
	served    string
	trustedTS string
	root      string
}

func snapshotOf(t *testing.T, r *tufRig) mirrorState {
	t.Helper()
	ctx := context.Background()
	ts, _ := r.st.TUFStore().Get(ctx, "metadata/timestamp.json")
	root, _ := r.st.TUFStore().Get(ctx, "metadata/root.json")
	return mirrorState{seq: heldSeqOf(t, r.st), served: string(r.served(t)), trustedTS: string(ts), root: string(root)}
}

func TestTUFImport_FullThenIncremental(t *testing.T) {
	r := newTUFRig(t, false)
	r.s = r.syncer(nil) // an air-gapped mirror: bundles only
	ctx := context.Background()

	full := tufBundle(t, r.v, 0)
	rep, err := r.s.Import(ctx, bytes.NewReader(full), false)
	if err != nil {
		t.Fatalf("full import: %v", err)
	}
	seq1 := snapV(r.v)
	if !rep.Changed || rep.Sequence != seq1 || rep.Imported != len(r.blobs) {
		t.Errorf("full: changed %v sequence %d imported %d, want true %d %d", rep.Changed, rep.Sequence, rep.Imported, seq1, len(r.blobs))
	}
	if got, want := r.served(t), r.v.Repo.Get("metadata/timestamp.json"); !bytes.Equal(got, want) {
		t.Error("served timestamp is not the vendor's")
	}
	h, err := r.st.Current()
	if err != nil || h == nil || h.Format != state.FormatTUF || len(h.Manifest.Releases) != len(r.m.Releases) {
		t.Fatalf("held after the full bundle: %+v %v", h, err)
	}
	for sum, data := range r.blobs {
		if !r.cache.Has(sum, int64(len(data))) {
			t.Errorf("artifact %s not cached", sum[:8])
		}
	}

	r.release(t, 1)
	inc := tufBundle(t, r.v, seq1)
	t.Logf("full bundle %d B, incremental (one release) %d B: %v", len(full), len(inc), entries(t, inc))

	t.Run("incremental carries only the change", func(t *testing.T) {
		var arts int
		for _, n := range entries(t, inc) {
			if strings.HasPrefix(n, "targets/") && !strings.Contains(n, "/docs/") && !strings.HasSuffix(n, ".product.json") {
				arts++
				if !strings.Contains(n, "ra_new001") {
					t.Errorf("carries an unchanged artifact %s", n)
				}
			}
		}
		if arts != 1 {
			t.Errorf("%d artifacts, want 1", arts)
		}
		if len(inc) >= len(full)/2 {
			t.Errorf("incremental %d B is not small next to the full %d B", len(inc), len(full))
		}
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		before := snapshotOf(t, r)
		rep, err := r.s.Import(ctx, bytes.NewReader(inc), true)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Changed || rep.Imported != 1 || !rep.DryRun {
			t.Errorf("dry run: changed %v imported %d, want true 1", rep.Changed, rep.Imported)
		}
		if after := snapshotOf(t, r); after != before {
			t.Error("the dry run changed the mirror's state")
		}
	})

	t.Run("incremental import", func(t *testing.T) {
		rep, err := r.s.Import(ctx, bytes.NewReader(inc), false)
		if err != nil {
			t.Fatal(err)
		}
		if want := snapV(r.v); !rep.Changed || rep.Sequence != want || rep.HeldSequence != seq1 || rep.Imported != 1 {
			t.Errorf("got changed %v seq %d held %d imported %d, want true %d %d 1", rep.Changed, rep.Sequence, rep.HeldSequence, rep.Imported, want, seq1)
		}
		if got, want := r.served(t), r.v.Repo.Get("metadata/timestamp.json"); !bytes.Equal(got, want) {
			t.Error("served timestamp is not the vendor's newest")
		}
	})

	t.Run("the same bundle again changes nothing", func(t *testing.T) {
		rep, err := r.s.Import(ctx, bytes.NewReader(inc), false)
		if err != nil || rep.Changed {
			t.Errorf("got changed %v, %v; want false, nil", rep.Changed, err)
		}
	})

	t.Run("an older bundle is refused as rollback", func(t *testing.T) {
		before := snapshotOf(t, r)
		_, err := r.s.Import(ctx, bytes.NewReader(full), false)
		if err == nil || !strings.Contains(err.Error(), "rollback") {
			t.Fatalf("got %v, want a rollback refusal", err)
		}
		if snapshotOf(t, r) != before {
			t.Error("the refused bundle changed the mirror's state")
		}
	})

	t.Run("a freshness-only bundle serves the new timestamp", func(t *testing.T) {
		r.v.Now = r.v.Now.Add(time.Minute)
		r.v.Refresh()
		fresh := tufBundle(t, r.v, snapV(r.v))
		if n := entries(t, fresh); len(n) > 5 {
			t.Errorf("freshness bundle carries %v", n)
		}
		rep, err := r.s.Import(ctx, bytes.NewReader(fresh), false)
		if err != nil || rep.Changed || !rep.Refreshed {
			t.Fatalf("got changed %v refreshed %v, %v; want false true", rep.Changed, rep.Refreshed, err)
		}
		if got, want := r.served(t), r.v.Repo.Get("metadata/timestamp.json"); !bytes.Equal(got, want) {
			t.Error("the fresher timestamp is not served")
		}
	})

	t.Run("a network sync continues from the imported state", func(t *testing.T) {
		r.release(t, 2)
		r.s = r.syncer(r.upstream(t))
		res, err := r.s.Once(ctx)
		if err != nil || !res.Changed || res.Downloaded != 1 {
			t.Errorf("got changed %v downloaded %d, %v; want true 1", res.Changed, res.Downloaded, err)
		}
	})
}

func TestTUFImport_Refused(t *testing.T) {
	r := newTUFRig(t, false)
	r.s = r.syncer(nil)
	ctx := context.Background()
	if _, err := r.s.Import(ctx, bytes.NewReader(tufBundle(t, r.v, 0)), false); err != nil {
		t.Fatal(err)
	}
	seq := snapV(r.v)
	r.release(t, 1)
	inc := tufBundle(t, r.v, seq)

	// A schema 1 bundle: the envelope first.
	var dsse bytes.Buffer
	w := tar.NewWriter(&dsse)
	w.WriteHeader(&tar.Header{Name: bundle.EnvelopeName, Size: 19, Mode: 0o644, Typeflag: tar.TypeReg})
	w.Write([]byte(`{"payloadType":"x"}`))
	w.Close()

	flip := func(match func(string) bool) []byte {
		hit := false
		b := rewrite(t, inc, func(name string, data []byte) []byte {
			if match(name) {
				hit = true
				data = append([]byte(nil), data...)
				data[len(data)/2] ^= 1
			}
			return data
		})
		if !hit {
			t.Fatal("no entry to tamper with")
		}
		return b
	}
	other := tuftest.NewVendor(t, "", 50) // the same tenant, other keys
	other.Build(tuftest.View(1, 1, 1))
	cases := []struct {
		name   string
		bundle []byte
		want   string
	}{
		{"schema 1 bundle", dsse.Bytes(), "schema 1 (DSSE) bundle"},
		{"tampered snapshot", flip(func(n string) bool { return strings.HasSuffix(n, ".snapshot.json") }), "snapshot"},
		{"tampered timestamp", flip(func(n string) bool { return n == "metadata/timestamp.json" }), "timestamp"},
		{"tampered role", flip(func(n string) bool { return strings.Contains(n, ".b-") || strings.Contains(n, ".p-") }), "role"},
		{"tampered artifact", flip(func(n string) bool { return strings.Contains(n, "ra_new001") }), "sha256"},
		{"wrong tenant in the manifest", rewrite(t, inc, func(name string, data []byte) []byte {
			if name == bundle.TUFManifestName {
				return bytes.Replace(data, []byte(r.v.TenantID), []byte("ten_other"), 1)
			}
			return data
		}), "tenant"},
		{"a repository signed by other keys", tufBundle(t, other, 0), "update"},
		{"a timestamp over its cap", rewrite(t, inc, func(name string, data []byte) []byte {
			if name == "metadata/timestamp.json" {
				return append(data, bytes.Repeat([]byte(" "), 16<<10)...)
			}
			return data
		}), "cap"},
		{"a path outside the layout", renameEntry(t, inc, "metadata/timestamp.json", "etc/timestamp.json"), "not under metadata/ or targets/"},
		{"a path leaving the directory", renameEntry(t, inc, "metadata/timestamp.json", "metadata/../../timestamp.json"), "invalid bundle"},
		{"empty", nil, "truncated"},
		{"truncated", inc[:len(inc)-2048], "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshotOf(t, r)
			_, err := r.s.Import(ctx, bytes.NewReader(tc.bundle), false)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want it to name %q", err, tc.want)
			}
			if snapshotOf(t, r) != before {
				t.Error("the refused bundle changed the mirror's state")
			}
		})
	}
	t.Run("the genuine bundle still imports", func(t *testing.T) {
		rep, err := r.s.Import(ctx, bytes.NewReader(inc), false)
		if err != nil || !rep.Changed {
			t.Fatalf("got changed %v, %v", rep.Changed, err)
		}
	})
}

// TestTUFImport_RootRotationsOffline: two root rotations (and a
// timestamp key rotated out) while the mirror is offline; one bundle
// catches it up, and a client of the mirror walks the chain from the
// first root, with no configuration edited.
func TestTUFImport_RootRotationsOffline(t *testing.T) {
	r := newTUFRig(t, false)
	r.s = r.syncer(nil)
	ctx := context.Background()
	if _, err := r.s.Import(ctx, bytes.NewReader(tufBundle(t, r.v, 0)), false); err != nil {
		t.Fatal(err)
	}
	seq := snapV(r.v)
	r.v.RotateRootKey(0, 210)
	r.v.RotateRootKey(1, 211)
	r.v.RotateTimestampKey(212)
	r.release(t, 1)
	b := tufBundle(t, r.v, seq)
	r.restart(t, nil)
	rep, err := r.s.Import(ctx, bytes.NewReader(b), false)
	if err != nil || !rep.Changed {
		t.Fatalf("import after the rotations: changed %v, %v", rep.Changed, err)
	}
	for v := 1; v <= 4; v++ {
		if _, err := r.st.TUFMetadata(fmt.Sprintf("%d.root.json", v)); err != nil {
			t.Errorf("root v%d not served: %v", v, err)
		}
	}
	// A client initialised with the first root, reading the mirror.
	store := tuf.NewMemStore()
	if err := tuf.Init(ctx, store, r.v.TenantID, r.v.RootData); err != nil {
		t.Fatal(err)
	}
	c := tuf.NewClient(r.v.TenantID, stateFetcher{r.st}, store, tuf.ClientOptions{})
	chg, err := c.Update(ctx)
	if err != nil {
		t.Fatalf("client through the mirror: %v", err)
	}
	if chg.RootVersion != 4 || chg.SnapshotVersion != snapV(r.v) {
		t.Errorf("client at root v%d snapshot v%d, want 4 and %d", chg.RootVersion, chg.SnapshotVersion, snapV(r.v))
	}
}

// stateFetcher reads what the mirror serves at /tuf/ from its state.
type stateFetcher struct{ st *state.State }

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

func TestTUFImport_Inbox(t *testing.T) {
	r := newTUFRig(t, false)
	r.s = r.syncer(nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme-1.tar"), tufBundle(t, r.v, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	in := &sync.Inbox{Dir: dir, Syncer: r.s}
	ctx := context.Background()
	n := 0
	for range 2 { // a file is taken once it is stable across two scans
		got, err := in.Scan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += got
	}
	if n != 1 {
		t.Fatalf("imported %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "done", "acme-1.tar")); err != nil {
		t.Errorf("not filed under done/: %v", err)
	}
	if got := heldSeqOf(t, r.st); got != snapV(r.v) {
		t.Errorf("held %d, want %d", got, snapV(r.v))
	}
}

func snapV(v *tuftest.Vendor) int64 {
	_, s, _ := v.State.Versions()
	return s
}
