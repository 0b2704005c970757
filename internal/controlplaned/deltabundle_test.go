package controlplaned_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tuf"
)

// bundleMirror is a bundles-only mirror's state, cache and syncer.
type bundleMirror struct {
	c *cache.Cache
	s *sync.Syncer
}

func newBundleMirror(t *testing.T, cfg sync.Config) bundleMirror {
	t.Helper()
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return bundleMirror{c: c, s: sync.New(nil, st, c, cfg)}
}

// TestControlPlane_BundleDeltas: the real control plane, with its delta
// worker, exports --since bundles that carry the signed delta (as a TUF
// target) instead of a new artifact whose base the mirror holds; the
// mirror imports the bundle, rebuilds the artifact and holds the exact
// bytes. Without --since, or with --no-deltas, artifacts travel
// whole.
func TestControlPlane_BundleDeltas(t *testing.T) {
	dir, _ := newTUFDir(t, 1, 1, false)
	e := startTUF(t, dir)
	prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	e.must(t, err)
	v1 := randBytes(256 << 10)
	e.release(t, prod.ProductID, "1.0.0", v1)
	a := e.seedTenant(t, "a", prod.ProductID)
	ctx := context.Background()
	export := func(o controlplane.BundleOptions) ([]byte, *controlplane.BundleResult) {
		t.Helper()
		var buf bytes.Buffer
		o.TenantID = a.tenant
		res, err := e.app.ExportBundle(e.op, o, &buf)
		e.must(t, err)
		if res.SizeBytes != int64(buf.Len()) {
			t.Errorf("result says %d bytes, the bundle is %d", res.SizeBytes, buf.Len())
		}
		return buf.Bytes(), res
	}

	root, err := e.app.TUFRoot(e.op, a.tenant)
	e.must(t, err)
	tufm := newBundleMirror(t, sync.Config{TUF: &sync.TUFTrust{TenantID: a.tenant, Root: root}})

	fullTUF, _ := export(controlplane.BundleOptions{Format: controlplane.BundleTUF})
	rep, err := tufm.s.Import(ctx, bytes.NewReader(fullTUF), false)
	if err != nil || rep.Imported != 1 {
		t.Fatalf("TUF full import: %+v, %v", rep, err)
	}
	tufHeld := rep.Sequence

	// 1.1.0 changes one line; the daemon's worker builds the delta.
	v2 := bytes.Clone(v1)
	copy(v2[100<<10:], "a one-line change in 1.1.0")
	target2 := e.release(t, prod.ProductID, "1.1.0", v2)
	var job *deltajob.Job
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && job == nil; time.Sleep(20 * time.Millisecond) {
		rels, _, err := e.app.Releases(e.op, prod.ProductID, store.Page{})
		e.must(t, err)
		for _, r := range rels {
			if r.Version != "1.1.0" {
				continue
			}
			jobs, err := e.app.ReleaseDeltas(e.op, r.ReleaseID)
			e.must(t, err)
			if len(jobs) == 1 && jobs[0].State == deltajob.Done {
				job = jobs[0]
			}
		}
	}
	if job == nil || !job.Offered {
		t.Fatalf("no offered delta for 1.1.0: %+v", job)
	}
	_, err = e.app.BuildSnapshot(e.op, a.tenant)
	e.must(t, err)
	sha2 := job.ToSHA256

	t.Run("TUF: the bundle carries the delta as a target, the import rebuilds the artifact", func(t *testing.T) {
		b, res := export(controlplane.BundleOptions{Format: controlplane.BundleTUF, Since: tufHeld})
		names := tarNames(t, b)
		want := tuf.TargetPath(tuf.DeltaTarget(prod.ProductID, job.FromSHA256, job.ToSHA256), job.SHA256)
		if res.Deltas != 1 || res.SavedBytes != int64(len(v2))-job.SizeBytes {
			t.Errorf("result %+v, want one delta", res)
		}
		if !slices.Contains(names, want) || slices.Contains(names, tuf.TargetPath(target2, sha2)) {
			t.Errorf("entries %v, want %s and not the artifact", names, want)
		}
		rep, err := tufm.s.Import(ctx, bytes.NewReader(b), false)
		if err != nil || !rep.Changed || rep.Rebuilt != 1 {
			t.Fatalf("import: %+v, %v", rep, err)
		}
		if got, err := os.ReadFile(tufm.c.Path(sha2)); err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("the mirror holds %d bytes (%v), want 1.1.0's", len(got), err)
		}
	})
	t.Run("TUF: a corrupted delta is refused, nothing changed", func(t *testing.T) {
		m := newBundleMirror(t, sync.Config{TUF: &sync.TUFTrust{TenantID: a.tenant, Root: root}})
		if _, err := m.s.Import(ctx, bytes.NewReader(fullTUF), false); err != nil {
			t.Fatal(err)
		}
		b, _ := export(controlplane.BundleOptions{Format: controlplane.BundleTUF, Since: tufHeld})
		bad := rewriteTar(t, b, func(name string, body []byte) []byte {
			if strings.Contains(name, ".delta-") {
				body[len(body)/2] ^= 0x55
			}
			return body
		})
		_, err := m.s.Import(ctx, bytes.NewReader(bad), false)
		if err == nil || !strings.Contains(err.Error(), "--no-deltas") {
			t.Fatalf("import: %v, want a refusal naming --no-deltas", err)
		}
		if m.c.Has(sha2, int64(len(v2))) {
			t.Error("the mirror cached the artifact")
		}
		if rep, err := m.s.Import(ctx, bytes.NewReader(b), false); err != nil || rep.Rebuilt != 1 || rep.HeldSequence != tufHeld {
			t.Errorf("the genuine bundle after it: %+v, %v (want held v%d)", rep, err, tufHeld)
		}
	})
	t.Run("the control plane serves the delta as a TUF target", func(t *testing.T) {
		repo, err := e.app.TUFRepo(e.op, a.tenant)
		e.must(t, err)
		path := tuf.DeltaTarget(prod.ProductID, job.FromSHA256, job.ToSHA256)
		rc, err := repo.Target(ctx, path, job.SHA256)
		if err != nil {
			t.Fatalf("target %s: %v", path, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != job.SHA256 {
			t.Errorf("served %d bytes that are not the delta", len(got))
		}
		if _, err := repo.Target(ctx, path, sha2); err == nil {
			t.Error("served the delta target under another sha256")
		}
	})
	t.Run("whole artifacts without since or with no-deltas", func(t *testing.T) {
		for _, o := range []controlplane.BundleOptions{
			{Format: controlplane.BundleTUF}, {Format: controlplane.BundleTUF, Since: tufHeld, NoDeltas: true},
		} {
			b, res := export(o)
			if res.Deltas != 0 || slices.ContainsFunc(tarNames(t, b), func(n string) bool { return strings.Contains(n, ".delta-") }) {
				t.Errorf("%+v: %d deltas carried, want none", o, res.Deltas)
			}
		}
	})
}

// rewriteTar copies a tar, passing each entry's body through f.
func rewriteTar(t *testing.T, b []byte, f func(name string, body []byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(b)), tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body = f(h.Name, body)
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
