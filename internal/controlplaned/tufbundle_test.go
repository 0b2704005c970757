package controlplaned_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
)

func tarNames(t *testing.T, b []byte) []string {
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

// TestControlPlane_TUFBundleExport: the real control plane exports TUF
// bundles (full, then --since the version a mirror holds) that a real
// trust: tuf mirror state imports; the incremental one carries only the
// change and the artifact the mirror lacks.
func TestControlPlane_TUFBundleExport(t *testing.T) {
	dir, _ := newTUFDir(t, 1, 1, false)
	e := startTUF(t, dir)
	prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	e.must(t, err)
	e.release(t, prod.ProductID, "1.0.0", randBytes(10<<10))
	a := e.seedTenant(t, "a", prod.ProductID)
	b := e.seedTenant(t, "b", prod.ProductID)
	root, err := e.app.TUFRoot(e.op, a.tenant)
	e.must(t, err)

	export := func(o controlplane.BundleOptions) ([]byte, *controlplane.BundleResult, error) {
		var buf bytes.Buffer
		o.Format = controlplane.BundleTUF
		res, err := e.app.ExportBundle(e.op, o, &buf)
		return buf.Bytes(), res, err
	}

	mdir := t.TempDir()
	st, err := state.Open(filepath.Join(mdir, "mirror.db"), 3)
	e.must(t, err)
	t.Cleanup(func() { st.Close() })
	c, err := cache.Open(mdir)
	e.must(t, err)
	s := sync.New(nil, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: a.tenant, Root: root}})
	ctx := context.Background()

	full, res, err := export(controlplane.BundleOptions{TenantID: a.tenant})
	e.must(t, err)
	if res.Format != controlplane.BundleTUF || res.Artifacts != 1 || res.Files < 5 {
		t.Errorf("full: %+v, want tuf, 1 artifact, at least 5 files", res)
	}
	rep, err := s.Import(ctx, bytes.NewReader(full), false)
	if err != nil || !rep.Changed || rep.Imported != 1 {
		t.Fatalf("import full: %+v, %v", rep, err)
	}
	held := rep.Sequence

	target2 := e.release(t, prod.ProductID, "1.1.0", randBytes(10<<10))
	_, err = e.app.BuildSnapshot(e.op, a.tenant)
	e.must(t, err)
	inc, res, err := export(controlplane.BundleOptions{TenantID: a.tenant, Since: held})
	e.must(t, err)
	names := tarNames(t, inc)
	t.Logf("full %d B; since v%d: %d B %v", len(full), held, len(inc), names)
	var arts []string
	for _, n := range names {
		if strings.HasPrefix(n, "targets/"+prod.ProductID+"/") && !strings.HasSuffix(n, ".product.json") {
			arts = append(arts, n)
		}
		if strings.HasPrefix(n, "targets/docs/") {
			t.Errorf("unchanged tenant document carried: %s", n)
		}
	}
	if len(arts) != 1 || !strings.HasSuffix(arts[0], "."+strings.TrimPrefix(target2, prod.ProductID+"/")) {
		t.Errorf("artifacts %v, want only %s's", arts, target2)
	}
	// No rotation since: no root (a receiver holds root v1 at least).
	if !slices.Contains(names, "metadata/timestamp.json") || slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".root.json") }) {
		t.Errorf("want the timestamp and no root: %v", names)
	}
	rep, err = s.Import(ctx, bytes.NewReader(inc), false)
	if err != nil || !rep.Changed || rep.Imported != 1 || rep.Sequence != res.Sequence {
		t.Fatalf("import since: %+v, %v (export %+v)", rep, err, res)
	}

	t.Run("refusals", func(t *testing.T) {
		mb, err := e.app.CreateMirror(e.op, b.tenant, controlplane.MirrorInput{AllowedChannels: []string{"stable"}})
		e.must(t, err)
		cases := []struct {
			name string
			o    controlplane.BundleOptions
			code string
		}{
			{"since newer than the tenant's", controlplane.BundleOptions{TenantID: a.tenant, Since: res.Sequence + 1}, catalog.EINVALID},
			{"negative since", controlplane.BundleOptions{TenantID: a.tenant, Since: -1}, catalog.EINVALID},
			{"another tenant's mirror", controlplane.BundleOptions{TenantID: a.tenant, MirrorID: mb.MirrorID}, catalog.ENOTFOUND},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := export(tc.o)
				if got := catalog.ErrorCode(err); got != tc.code {
					t.Errorf("got %v (%s), want %s", err, got, tc.code)
				}
			})
		}
		var buf bytes.Buffer
		_, err = e.app.ExportBundle(e.op, controlplane.BundleOptions{TenantID: a.tenant, Format: "zip"}, &buf)
		if catalog.ErrorCode(err) != catalog.EINVALID || buf.Len() != 0 {
			t.Errorf("format zip: %v, %d bytes written", err, buf.Len())
		}
	})

	t.Run("the format is TUF", func(t *testing.T) {
		// A mirror reports the version it holds after each sync
		// (tuf-<version>; a mirror still on schema 1 reported its
		// snapshot id): every bundle is TUF, and schema 1 is refused.
		report := func(t *testing.T, cred, id string) string {
			t.Helper()
			p, err := e.app.Authenticate(context.Background(), cred)
			e.must(t, err)
			m, err := e.app.ReportSync(controlplane.WithPrincipal(context.Background(), p), controlplane.SyncReport{LastSnapshotID: id})
			e.must(t, err)
			return m.MirrorID
		}
		snap, err := e.app.LatestSnapshotHead(e.op, a.tenant)
		e.must(t, err)
		dsseMirror, err := e.app.CreateMirror(e.op, a.tenant, controlplane.MirrorInput{AllowedChannels: []string{"stable"}})
		e.must(t, err)
		tufMirror, err := e.app.CreateMirror(e.op, a.tenant, controlplane.MirrorInput{AllowedChannels: []string{"stable"}})
		e.must(t, err)
		silent, err := e.app.CreateMirror(e.op, a.tenant, controlplane.MirrorInput{AllowedChannels: []string{"stable"}})
		e.must(t, err)
		report(t, dsseMirror.Credential, snap.SnapshotID)
		report(t, tufMirror.Credential, "tuf-3")
		cases := []struct {
			name string
			o    controlplane.BundleOptions
			want string // the format, by the bundle's first entry
		}{
			{"no mirror: tuf", controlplane.BundleOptions{TenantID: a.tenant}, "tuf"},
			{"a mirror that never reported: tuf", controlplane.BundleOptions{TenantID: a.tenant, MirrorID: silent.MirrorID}, "tuf"},
			{"a trust: tuf mirror: tuf", controlplane.BundleOptions{TenantID: a.tenant, MirrorID: tufMirror.MirrorID}, "tuf"},
			{"a mirror that last reported a schema 1 snapshot: tuf", controlplane.BundleOptions{TenantID: a.tenant, MirrorID: dsseMirror.MirrorID}, "tuf"},
			{"tuf asked for, whatever the mirror", controlplane.BundleOptions{TenantID: a.tenant, MirrorID: dsseMirror.MirrorID, Format: controlplane.BundleTUF}, "tuf"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var buf bytes.Buffer
				res, err := e.app.ExportBundle(e.op, tc.o, &buf)
				e.must(t, err)
				n := tarNames(t, buf.Bytes())
				got := ""
				switch {
				case len(n) > 0 && n[0] == bundle.EnvelopeName:
					got = "dsse"
				case len(n) > 0 && n[0] == bundle.TUFManifestName:
					got = "tuf"
				}
				if got != tc.want || res.Format != tc.want {
					t.Errorf("got %q (result %q, first entry %v), want %q", got, res.Format, n, tc.want)
				}
			})
		}
		t.Run("dsse asked for is refused", func(t *testing.T) {
			var buf bytes.Buffer
			_, err := e.app.ExportBundle(e.op, controlplane.BundleOptions{TenantID: a.tenant, Format: controlplane.BundleDSSE}, &buf)
			if catalog.ErrorCode(err) != catalog.EINVALID || !strings.Contains(err.Error(), "mirror init --root-file") || buf.Len() != 0 {
				t.Errorf("format dsse: %v, %d bytes written; want invalid naming mirror init --root-file", err, buf.Len())
			}
		})
		t.Run("a report that is neither is refused", func(t *testing.T) {
			p, err := e.app.Authenticate(context.Background(), silent.Credential)
			e.must(t, err)
			for _, id := range []string{"tuf-", "tuf-0", "tuf-01", "tuf-+1", "tuf-1x", "snap-1"} {
				_, err := e.app.ReportSync(controlplane.WithPrincipal(context.Background(), p), controlplane.SyncReport{LastSnapshotID: id})
				if got := catalog.ErrorCode(err); got != catalog.EINVALID {
					t.Errorf("%q: got %v, want %s", id, err, catalog.EINVALID)
				}
			}
		})
	})
}
