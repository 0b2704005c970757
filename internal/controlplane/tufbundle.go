package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// Bundle formats (BundleOptions.Format).
const (
	BundleTUF  = "tuf"  // the tenant's TUF repository files and artifacts: the only format
	BundleDSSE = "dsse" // schema 1, no longer exported: a request for it is refused naming the TUF way
)

// exportTUFBundle writes a TUF bundle: what a mirror holding snapshot
// version o.Since (its sequence in trust: tuf; 0 for none) lacks of the
// tenant's repository (every root version, the timestamp, the snapshot,
// the targets roles and documents that changed since), and the artifacts
// of the targets added or changed since, ACTIVE and in the mirror's
// channels. It runs the TUF client workflow from the receiver's state as
// it was at o.Since (tuf.ReceiverStore), so the bundle holds exactly what
// the receiver's own workflow fetches.
func (a *App) exportTUFBundle(ctx context.Context, o BundleOptions, w io.Writer) (*BundleResult, error) {
	if _, err := a.Tenant(ctx, o.TenantID); err != nil {
		return nil, err
	}
	if a.tuf == nil {
		return nil, ErrNoTUF
	}
	t := a.tuf
	if o.Since < 0 {
		return nil, catalog.Invalid("since", "must be a non-negative integer")
	}
	channels, err := a.bundleChannels(ctx, o)
	if err != nil {
		return nil, err
	}
	v, err := a.TUFVersions(ctx, o.TenantID)
	if err != nil {
		return nil, err
	}
	if v.Snapshot == 0 {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "tenant %s has no TUF repository yet: build a snapshot", o.TenantID)
	}
	if o.Since > v.Snapshot {
		return nil, catalog.Invalid("since", "snapshot version %d is newer than the tenant's (%d)", o.Since, v.Snapshot)
	}
	read := func(ctx context.Context, path string) ([]byte, error) {
		return t.file(ctx, tufScopeOf(o.TenantID, path), path)
	}
	held, err := tuf.NewReceiverStore(ctx, read, o.Since)
	if errors.Is(err, tuf.ErrNotFound) {
		return nil, catalog.Invalid("since", "tenant %s has no snapshot version %d (give the sequence the trust: tuf mirror holds)", o.TenantID, o.Since)
	}
	if err != nil {
		return nil, err
	}
	var ack []byte
	if o.MirrorID != "" {
		if ack, err = a.returnAckTUF(ctx, o.TenantID, o.MirrorID); err != nil {
			return nil, err
		}
	}
	repo := &TUFRepo{a: a, tenantID: o.TenantID}
	arts := map[string]string{} // target path → artifact id
	type carried struct {
		d    *snapshot.Delta
		key  string
		full int64
	}
	deltas := map[string]carried{} // delta target path → its delta
	cw := &countWriter{w: w}
	m, err := bundle.ExportTUF(ctx, cw, bundle.TUFExport{
		TenantID: o.TenantID, Since: o.Since, Repo: repoFetcher{repo}, Held: held, Now: a.now, Ack: ack,
		Select: func(ctx context.Context, added []tuf.Target, verified *tuf.Repository) ([]tuf.Target, error) {
			var base map[string]bool
			var listed []snapshot.Delta
			if o.Since > 0 && !o.NoDeltas && verified != nil {
				man, err := verified.Manifest()
				if err != nil {
					return nil, err
				}
				base, listed = heldTUFBases(man, added, channels), man.Deltas
			}
			var out []tuf.Target
			seen := map[string]bool{}
			for _, tg := range added {
				c := tg.Custom
				if c.Status != catalog.ReleaseActive || c.RevokedAt != nil || seen[tg.SHA256] ||
					(channels != nil && !slices.Contains(channels, c.Channel)) {
					continue
				}
				seen[tg.SHA256] = true
				d, key, err := a.bundleDelta(ctx, listed, tg.SHA256, base)
				if err != nil {
					return nil, err
				}
				if d != nil {
					dt := tuf.Target{Path: tuf.DeltaTarget(c.Product, d.FromSHA256, d.ToSHA256), Length: d.SizeBytes, SHA256: d.SHA256, Custom: c}
					deltas[dt.Path] = carried{d: d, key: key, full: tg.Length}
					out = append(out, dt)
					continue
				}
				// Missing bytes are found now, while an error can still
				// be answered.
				if err := a.checkStored(ctx, c.Artifact); err != nil {
					return nil, err
				}
				arts[tg.Path] = c.Artifact
				out = append(out, tg)
			}
			return out, nil
		},
		Open: func(ctx context.Context, tg tuf.Target) (io.ReadCloser, error) {
			if dc, ok := deltas[tg.Path]; ok {
				rc, _, err := a.blobs.Open(ctx, dc.key)
				if err != nil {
					return nil, fmt.Errorf("open delta %s: %w", dc.d.DeltaID, err)
				}
				return rc, nil
			}
			art, err := a.store.Artifact(ctx, arts[tg.Path])
			if err != nil {
				return nil, err
			}
			return a.openSource(ctx, art)
		},
	})
	if err != nil {
		return nil, err
	}
	res := &BundleResult{Format: BundleTUF, Sequence: m.SnapshotVersion, Artifacts: m.Artifacts, Files: m.Files}
	for _, dc := range deltas {
		res.addDelta(dc.d, dc.full)
	}
	res.finish(cw.n)
	return res, nil
}

// heldTUFBases is the sha256 of every artifact a trust: tuf mirror
// holding the export's since version caches: the targets of m's ACTIVE
// releases in channels that the workflow did not find added or changed
// (so they were signed the same at since).
func heldTUFBases(m *snapshot.Manifest, added []tuf.Target, channels []string) map[string]bool {
	changed := map[string]bool{}
	for _, t := range added {
		changed[t.Path] = true
	}
	sha := map[string]string{}
	for _, art := range m.Artifacts {
		sha[art.ArtifactID] = art.SHA256
	}
	out := map[string]bool{}
	for _, rel := range m.Releases {
		if rel.Status != catalog.ReleaseActive || (channels != nil && !slices.Contains(channels, rel.Channel)) {
			continue
		}
		for _, ra := range rel.Artifacts {
			if !changed[tuf.ArtifactTarget(rel.ProductID, ra.ReleaseArtifactID)] && sha[ra.ArtifactID] != "" {
				out[sha[ra.ArtifactID]] = true
			}
		}
	}
	return out
}

// tufScopeOf is the store scope of a published path: the tenant's own
// roles and documents, or the shared products.
func tufScopeOf(tenantID, path string) string {
	if name, ok := strings.CutPrefix(path, tuf.MetadataDir+"/"); ok {
		switch roleOfName(name) {
		case metadata.ROOT, metadata.SNAPSHOT, metadata.TARGETS:
			return tenantID
		}
		if name == metadata.TIMESTAMP+".json" {
			return tenantID
		}
		return tufShared
	}
	if strings.HasPrefix(path, tuf.TargetsDir+"/"+tuf.DocsDir+"/") {
		return tenantID
	}
	return tufShared
}

// repoFetcher reads a tenant's repository (TUFRepo) by published path.
type repoFetcher struct{ r *TUFRepo }

func (f repoFetcher) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	if err := tuf.CheckPath(path); err != nil {
		return nil, err
	}
	if name, ok := strings.CutPrefix(path, tuf.MetadataDir+"/"); ok {
		b, err := f.r.Metadata(ctx, name)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader(string(b))), nil
	}
	rest, ok := strings.CutPrefix(path, tuf.TargetsDir+"/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 0 {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	sum, name, ok := strings.Cut(rest[i+1:], ".")
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	return f.r.Target(ctx, rest[:i+1]+name, sum)
}

// bundleChannels are the allowed channels of the bundle's mirror (nil:
// every channel).
func (a *App) bundleChannels(ctx context.Context, o BundleOptions) ([]string, error) {
	if o.MirrorID == "" {
		return nil, nil
	}
	mir, err := a.Mirror(ctx, o.MirrorID)
	if err != nil {
		return nil, err
	}
	if mir.TenantID != o.TenantID {
		return nil, catalog.NotFound("mirror", o.MirrorID)
	}
	return mir.AllowedChannels, nil
}
