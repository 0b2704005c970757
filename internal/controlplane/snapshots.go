package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/update"
)

// BuildSnapshot builds, signs and stores the next snapshot of a tenant.
// The store assigns the sequence inside its transaction, so concurrent
// builds never share one. A request while a build of the tenant runs
// joins the one follow-up build queued behind it (herd.go), which
// gathers the catalog after every write made before the request; beyond
// Config.MaxExpensive builds at once the answer is busy (503).
func (a *App) BuildSnapshot(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	if _, err := a.Tenant(ctx, tenantID); err != nil {
		return nil, err
	}
	return a.build(ctx, tenantID, false)
}

// buildSnapshot is BuildSnapshot for housekeeping: it waits for a slot.
func (a *App) buildSnapshot(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	return a.build(ctx, tenantID, true)
}

// doBuild builds one snapshot of the tenant: it stores the build record
// (sequence, times, and the view itself, unsigned: no site reads it) and
// publishes the view as the tenant's TUF repository, which is what
// mirrors and clients verify.
func (a *App) doBuild(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	signers := a.keys.Signers()
	if len(signers) == 0 {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "no active signing key: run `controlplane keys generate`")
	}
	now, ttl := a.now(), a.cfg.SnapshotTTL
	// Read before the store's transaction: the build callback must not
	// call the store.
	deltas, err := a.offeredDeltas(ctx)
	if err != nil {
		return nil, fmt.Errorf("list deltas: %w", err)
	}
	// The tenant's metadata names the keys that sign its online leases.
	leaseKeys := a.activeLeaseKeys(signers)
	var built *snapshot.Manifest
	snap, err := a.store.CreateSnapshot(ctx, tenantID, func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		if in.Tenant.Status != catalog.TenantActive {
			return nil, catalog.Errorf(catalog.ECONFLICT, "tenant %s is %s", tenantID, in.Tenant.Status)
		}
		id := catalog.NewID(catalog.PrefixSnapshot)
		m := snapshot.Build(in, snapshot.BuildOptions{SnapshotID: id, Now: now, TTL: ttl, Deltas: deltas, LeaseKeys: leaseKeys})
		rec, err := encodeBuildRecord(m)
		if err != nil {
			return nil, err
		}
		built = m
		sum := sha256.Sum256(rec)
		return &catalog.Snapshot{
			SnapshotID: id, TenantID: tenantID, Sequence: m.Sequence, CreatedAt: m.CreatedAt,
			ExpiresAt: m.ExpiresAt, Hash: hex.EncodeToString(sum[:]), Envelope: rec,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	// The same view, published as the tenant's TUF repository (tuf.go).
	// The record is already stored, so a failure here is logged; the next
	// build (or housekeeping's) publishes again from the current catalog.
	if err := a.publishTUF(ctx, built); err != nil {
		a.log.Error("publish tuf repository", "tenant", tenantID, "err", err)
	}
	return snap, nil
}

// Snapshots lists a tenant's snapshots without their envelopes.
func (a *App) Snapshots(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Snapshot, string, error) {
	return ofTenant(ctx, a, tenantID, pg, a.store.Snapshots)
}

// Snapshot returns a snapshot with its envelope exactly as stored.
func (a *App) Snapshot(ctx context.Context, id string) (*catalog.Snapshot, error) {
	return load(ctx, catalog.PrefixSnapshot, "snapshot", id, a.store.Snapshot, func(x *catalog.Snapshot) string { return x.TenantID })
}

// latestHead returns the tenant's newest snapshot without its envelope, or
// ENOTFOUND.
func (a *App) latestHead(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	snap, err := a.store.LatestSnapshotHead(ctx, tenantID)
	if catalog.ErrorCode(err) == catalog.ENOTFOUND {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "tenant has no snapshot yet")
	}
	return snap, err
}

// tenantView is what the service derives from a tenant's current
// published repository (or, before it has one, its latest build record):
// the manifest and which channels reference each artifact through an
// ACTIVE release. Rebuilt when a newer version appears.
type tenantView struct {
	// key names the version the view is of: "tuf:<snapshot version>",
	// or the build record's snapshot id (snap then holds it).
	key      string
	order    int64 // a newer view of the tenant has a larger one
	snap     *catalog.Snapshot
	channels map[string]map[string]bool // artifact_id -> channels
	// leaseKeys are the vendor keys the version names for online leases
	// (a TUF view; nil for a build record's).
	leaseKeys map[string]bool
	releases  map[string]struct{} // every release the snapshot lists
	deltas    map[string]bool     // every delta the snapshot lists
	engine    *update.Engine
}

type engineCache struct {
	mu sync.Mutex
	m  map[string]*tenantView
}

// view returns the tenant's current view, rebuilding it if its published
// repository changed (tufView; the build record's envelope only for a
// tenant that has no repository yet). Concurrent callers share one
// assembly and one view (the pointer, never a copy); an assembly beyond
// the gate is busy.
func (a *App) view(ctx context.Context, tenantID string) (*tenantView, error) {
	if a.tuf != nil {
		v, err := a.tufView(ctx, tenantID)
		if !errors.Is(err, tuf.ErrNotFound) {
			return v, err
		}
	}
	head, err := a.latestHead(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if v := a.cachedView(tenantID, head.SnapshotID); v != nil {
		return v, nil
	}
	r, err := a.coalesce(ctx, "view\x00"+tenantID+"\x00"+head.SnapshotID, func(ctx context.Context) (any, error) {
		if v := a.cachedView(tenantID, head.SnapshotID); v != nil {
			return v, nil // a flight that just landed
		}
		release, err := a.enter(ctx, "requests", false)
		if err != nil {
			return nil, err
		}
		defer release()
		snap, err := a.latestSnapshot(ctx, tenantID, head)
		if err != nil {
			return nil, err
		}
		m, err := decodeEnvelope(snap.Envelope)
		if err != nil {
			return nil, fmt.Errorf("decode snapshot %s: %w", snap.SnapshotID, err)
		}
		return a.indexView(tenantID, snap.SnapshotID, snap.Sequence, snap, m)
	})
	if err != nil {
		return nil, err
	}
	return r.(*tenantView), nil
}

// tufView is the view of the tenant's current published TUF repository,
// assembled from the published files as a mirror assembles the version
// it holds (tuf.ErrNotFound: the tenant has no repository yet).
func (a *App) tufView(ctx context.Context, tenantID string) (*tenantView, error) {
	ts, err := a.tuf.file(ctx, tenantID, tuf.MetadataPath(metadata.TIMESTAMP, 0))
	if err != nil {
		return nil, err
	}
	md, err := metadata.Timestamp().FromBytes(ts)
	if err != nil {
		return nil, fmt.Errorf("tenant %s timestamp: %w", tenantID, err)
	}
	// Keyed by the snapshot version: a freshness refresh (a new timestamp
	// only) changes nothing the engine answers, so it keeps the view.
	sm := md.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, fmt.Errorf("tenant %s timestamp names no snapshot", tenantID)
	}
	key := "tuf:" + strconv.FormatInt(sm.Version, 10)
	if v := a.cachedView(tenantID, key); v != nil {
		return v, nil
	}
	r, err := a.coalesce(ctx, "view\x00"+tenantID+"\x00"+key, func(ctx context.Context) (any, error) {
		if v := a.cachedView(tenantID, key); v != nil {
			return v, nil // a flight that just landed
		}
		release, err := a.enter(ctx, "requests", false)
		if err != nil {
			return nil, err
		}
		defer release()
		m, err := tuf.AssemblePublished(ctx, tenantID, a.tuf.publishedRead(tenantID), ts, nil)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", tenantID, err)
		}
		return a.indexView(tenantID, key, sm.Version, nil, m)
	})
	if err != nil {
		return nil, err
	}
	return r.(*tenantView), nil
}

// coalesce runs fn once for every concurrent caller of key. fn runs on a
// context detached from the first caller's cancellation (the others still
// want the answer); a caller whose own context ends stops waiting.
func (a *App) coalesce(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	detached := context.WithoutCancel(ctx)
	ch := a.flight.DoChan(key, func() (any, error) { return fn(detached) })
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (a *App) cachedView(tenantID, key string) *tenantView {
	a.engines.mu.Lock()
	defer a.engines.mu.Unlock()
	if v := a.engines.m[tenantID]; v != nil && v.key == key {
		return v
	}
	return nil
}

// latestSnapshot returns the tenant's snapshot named by head with its
// envelope. Concurrent callers share one load and one copy (the mirror's
// GET, view assembly, the TUF view); once the view holds it, it is read
// from there. Nothing else keeps it: a tenant that only mirrors read
// costs no memory between their syncs. Callers must not modify it.
func (a *App) latestSnapshot(ctx context.Context, tenantID string, head *catalog.Snapshot) (*catalog.Snapshot, error) {
	if v := a.cachedView(tenantID, head.SnapshotID); v != nil && v.snap != nil {
		return v.snap, nil
	}
	r, err := a.coalesce(ctx, "snap\x00"+tenantID+"\x00"+head.SnapshotID, func(ctx context.Context) (any, error) {
		a.count.loads.Add(1)
		return a.store.Snapshot(ctx, head.SnapshotID)
	})
	if err != nil {
		return nil, err
	}
	return r.(*catalog.Snapshot), nil
}

// indexView indexes the manifest m of the tenant's version key, and
// caches the view unless a newer one (by order) is cached.
func (a *App) indexView(tenantID, key string, order int64, snap *catalog.Snapshot, m *snapshot.Manifest) (*tenantView, error) {
	a.count.views.Add(1)
	v := &tenantView{key: key, order: order, snap: snap, channels: map[string]map[string]bool{}, releases: map[string]struct{}{}, deltas: map[string]bool{}}
	if snap == nil {
		v.leaseKeys = map[string]bool{}
		for _, k := range m.LeaseKeys {
			v.leaseKeys[k.KeyID] = true
		}
	}
	for _, d := range m.Deltas {
		v.deltas[d.DeltaID] = true
	}
	for _, rel := range m.Releases {
		v.releases[rel.ReleaseID] = struct{}{}
		if rel.Status != catalog.ReleaseActive {
			continue
		}
		for _, ra := range rel.Artifacts {
			if v.channels[ra.ArtifactID] == nil {
				v.channels[ra.ArtifactID] = map[string]bool{}
			}
			v.channels[ra.ArtifactID][rel.Channel] = true
		}
	}
	var err error
	if v.engine, err = update.New(m); err != nil {
		return nil, fmt.Errorf("index %s: %w", key, err)
	}
	a.engines.mu.Lock()
	if a.engines.m == nil {
		a.engines.m = map[string]*tenantView{}
	}
	if old := a.engines.m[tenantID]; old == nil || (old.snap == nil) != (snap == nil) || old.order <= order {
		a.engines.m[tenantID] = v
	}
	a.engines.mu.Unlock()
	return v, nil
}

// UpdateEngine returns the update engine over the calling tenant's latest
// snapshot: the transport mounts update.Handle on it, as the mirror does.
func (a *App) UpdateEngine(ctx context.Context) (*update.Engine, error) {
	p := principal(ctx)
	if p.Role != catalog.RoleTenant {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "update checks need a tenant token")
	}
	v, err := a.view(ctx, p.TenantID)
	if err != nil {
		return nil, err
	}
	return v.engine, nil
}

// BuildRecordType is the payload type of a build record: the view a
// build made, unsigned (the control plane's own record; what sites
// verify is the TUF repository). Records stored before it are schema 1
// DSSE envelopes, with the same payload field.
const BuildRecordType = "application/vnd.outpost.build-record+json"

// buildRecord is the stored form of a build record (and of a schema 1
// envelope, whose signatures are ignored).
type buildRecord struct {
	PayloadType string `json:"payloadType"`
	Payload     []byte `json:"payload"`
}

func encodeBuildRecord(m *snapshot.Manifest) ([]byte, error) {
	p, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode build record: %w", err)
	}
	return json.Marshal(buildRecord{PayloadType: BuildRecordType, Payload: p})
}

// decodeEnvelope reads the view of a stored build record.
func decodeEnvelope(env []byte) (*snapshot.Manifest, error) {
	var e buildRecord
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, err
	}
	var m snapshot.Manifest
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// BundleOptions selects what an offline bundle carries.
type BundleOptions struct {
	TenantID string
	Since    int64 // leave out artifacts snapshot Since already referenced (0: none)
	// MirrorID: only the artifacts of this mirror's allowed_channels ("" for
	// all), and the vendor's signed acknowledgement of its return files.
	MirrorID string
	// Format is BundleTUF, BundleDSSE (schema 1, deprecated) or "": the
	// format of the mirror MirrorID names when its last sync report says
	// which (bundleFormat), else BundleTUF.
	// For BundleTUF, Since is the TUF snapshot version the mirror holds
	// (its sequence in trust: tuf), and the bundle leaves out every
	// repository file and artifact that version already had.
	Format string
	// NoDeltas carries every artifact whole. By default, with Since, an
	// artifact the mirror lacks travels as the smallest signed delta to
	// it from an artifact the mirror holds (listed in Since, in its
	// channels), and the import rebuilds it (docs/deltas.md).
	NoDeltas bool
}

// BundleResult says what an exported bundle holds.
type BundleResult struct {
	Format    string `json:"format,omitempty"`
	Sequence  int64  `json:"sequence"`
	Artifacts int    `json:"artifacts"`       // artifact entries, deltas included
	Files     int    `json:"files,omitempty"` // TUF: repository files (metadata and documents)
	// SizeBytes is the bundle's size as written.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	// Deltas is how many artifacts travel as a delta; DeltaBytes their
	// deltas' bytes, ReplacedBytes the whole artifacts' bytes, and
	// SavedBytes the difference (SavedPercent of what the bundle would
	// weigh without deltas).
	Deltas        int     `json:"deltas,omitempty"`
	DeltaBytes    int64   `json:"delta_bytes,omitempty"`
	ReplacedBytes int64   `json:"replaced_bytes,omitempty"`
	SavedBytes    int64   `json:"saved_bytes,omitempty"`
	SavedPercent  float64 `json:"saved_percent,omitempty"`
}

// addDelta counts one artifact carried as delta d.
func (r *BundleResult) addDelta(d *snapshot.Delta, full int64) {
	r.Deltas++
	r.DeltaBytes += d.SizeBytes
	r.ReplacedBytes += full
	r.SavedBytes += full - d.SizeBytes
}

// finish records the bundle's size and the share the deltas saved.
func (r *BundleResult) finish(size int64) {
	r.SizeBytes = size
	if r.SavedBytes > 0 && size+r.SavedBytes > 0 {
		r.SavedPercent = math.Round(float64(r.SavedBytes)/float64(size+r.SavedBytes)*10000) / 100
	}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ExportBundle writes the tenant's latest snapshot and every artifact of
// its ACTIVE releases (in the mirror's channels) that snapshot o.Since
// lacked to w, a tar stream. Every check that can fail on bad input runs
// before the first byte is written, so a transport can still answer an
// error; after it, a failure can only cut the stream (the mirror rejects
// a truncated tar). Memory stays flat: artifacts stream one at a time.
func (a *App) ExportBundle(ctx context.Context, o BundleOptions, w io.Writer) (*BundleResult, error) {
	switch o.Format {
	case "", BundleTUF:
		return a.exportTUFBundle(ctx, o, w)
	case BundleDSSE:
		return nil, catalog.Invalid("format", "schema 1 (dsse) bundles are no longer exported: every mirror runs TUF; re-initialise a schema 1 mirror with the tenant's root (mirror init --root-file ROOT --force) and export a TUF bundle")
	default:
		return nil, catalog.Invalid("format", "must be %s (or empty)", BundleTUF)
	}
}

// bundleDelta is the smallest signed delta among deltas to toSHA from an
// artifact in held whose bytes the blob store holds, and its blob key;
// nil when there is none.
func (a *App) bundleDelta(ctx context.Context, deltas []snapshot.Delta, toSHA string, held map[string]bool) (*snapshot.Delta, string, error) {
	if a.deltas == nil || len(held) == 0 {
		return nil, "", nil
	}
	var best *snapshot.Delta
	key := ""
	for i, d := range deltas {
		if d.ToSHA256 != toSHA || !held[d.FromSHA256] || (best != nil && d.SizeBytes >= best.SizeBytes) {
			continue
		}
		j, err := a.deltas.Job(ctx, d.DeltaID)
		if catalog.ErrorCode(err) == catalog.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if j.State != deltajob.Done || !j.Offered || j.SHA256 != d.SHA256 || j.SizeBytes != d.SizeBytes {
			continue
		}
		if _, err := a.blobs.Stat(ctx, j.BlobKey); errors.Is(err, blob.ErrNotFound) {
			continue // carried whole
		} else if err != nil {
			return nil, "", fmt.Errorf("delta %s: %w", d.DeltaID, err)
		}
		best, key = &deltas[i], j.BlobKey
	}
	return best, key, nil
}

// checkStored fails clearly when a managed artifact's bytes are not in
// the blob store.
func (a *App) checkStored(ctx context.Context, id string) error {
	art, err := a.store.Artifact(ctx, id)
	if err != nil {
		return err
	}
	if art.SourceType != catalog.SourceManaged {
		return nil
	}
	if _, err := a.blobs.Stat(ctx, art.StoragePath); errors.Is(err, blob.ErrNotFound) {
		return catalog.Errorf(catalog.EUNAVAILABLE, "artifact %s (sha256 %s): its bytes are missing from the blob store (%s): restore the blob store from the backup (README, Backups) or upload the file again", id, art.SHA256, art.StoragePath)
	} else if err != nil {
		return fmt.Errorf("artifact %s: %w", id, err)
	}
	return nil
}
