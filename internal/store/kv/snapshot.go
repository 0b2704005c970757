package kv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// rawValues returns the values of bucket (those whose key keep accepts,
// or all when keep is nil) in key order. They point into the
// transaction's memory: use them before it ends and do not modify them.
func rawValues(tx Tx, bucket []byte, keep func(k []byte) bool) [][]byte {
	var out [][]byte
	c := tx.Bucket(bucket).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if keep == nil || keep(k) {
			out = append(out, v)
		}
	}
	return out
}

// decodeParallel decodes raws on every core: decoding is most of the cost
// of gathering a large catalog, and the raw values are plain memory that
// needs no locking. The objects are allocated in one block.
func decodeParallel[T any](ctx context.Context, raws [][]byte, what []byte) ([]*T, error) {
	vals := make([]T, len(raws))
	out := make([]*T, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws)/512+1)
	chunk := (len(raws) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(raws))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if i%1024 == 0 {
					if err := ctx.Err(); err != nil {
						errs[w] = err
						return
					}
				}
				if err := json.Unmarshal(raws[i], &vals[i]); err != nil {
					errs[w] = fmt.Errorf("decode %s #%d: %w", what, i, err)
					return
				}
				out[i] = &vals[i]
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeAll decodes every value of bucket, in key order.
func decodeAll[T any](ctx context.Context, tx Tx, bucket []byte) ([]*T, error) {
	return decodeParallel[T](ctx, rawValues(tx, bucket, nil), bucket)
}

func loadGlobal(ctx context.Context, tx Tx) (*globalSet, error) {
	g := &globalSet{}
	var err error
	if g.products, err = decodeAll[catalog.Product](ctx, tx, bProducts); err != nil {
		return nil, err
	}
	if g.releases, err = decodeAll[catalog.Release](ctx, tx, bReleases); err != nil {
		return nil, err
	}
	if g.releaseArtifacts, err = decodeAll[catalog.ReleaseArtifact](ctx, tx, bRelArts); err != nil {
		return nil, err
	}
	// Referenced artifacts: one sequential scan beats a lookup per id.
	refs := make(map[string]bool, len(g.releaseArtifacts))
	for _, ra := range g.releaseArtifacts {
		refs[ra.ArtifactID] = true
	}
	raws := rawValues(tx, bArtifacts, func(k []byte) bool { return refs[string(k)] })
	if len(raws) != len(refs) {
		return nil, fmt.Errorf("release artifacts name %d artifacts, %d exist", len(refs), len(raws))
	}
	if g.artifacts, err = decodeParallel[catalog.Artifact](ctx, raws, bArtifacts); err != nil {
		return nil, err
	}
	if g.rollouts, err = decodeAll[catalog.Rollout](ctx, tx, bRollouts); err != nil {
		return nil, err
	}
	return g, nil
}

// copies returns pointers to fresh shallow copies of src (allocated in
// one block), so a builder that sets fields cannot alter the cache.
func copies[T any](src []*T) []*T {
	vals := make([]T, len(src))
	out := make([]*T, len(src))
	for i, p := range src {
		vals[i] = *p
		out[i] = &vals[i]
	}
	return out
}

// decodeIndexed decodes the objects named by the index keys under pfx.
func decodeIndexed[T any](tx Tx, idx, bucket, pfx []byte) ([]*T, error) {
	if ix, ok := tx.(IndexReader); ok {
		raws, err := ix.Indexed(idx, bucket, pfx)
		if err != nil {
			return nil, err
		}
		out := make([]*T, 0, len(raws))
		for _, raw := range raws {
			t := new(T)
			if err := json.Unmarshal(raw, t); err != nil {
				return nil, fmt.Errorf("decode %s: %w", bucket, err)
			}
			out = append(out, t)
		}
		return out, nil
	}
	var out []*T
	data := tx.Bucket(bucket)
	c := tx.Bucket(idx).Cursor()
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		id := k[len(pfx):]
		raw := data.Get(id)
		if raw == nil {
			return nil, fmt.Errorf("index %s names missing %s %q", idx, bucket, id)
		}
		t := new(T)
		if err := json.Unmarshal(raw, t); err != nil {
			return nil, fmt.Errorf("decode %s %q: %w", bucket, id, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// lastSnapshotID returns the id of the tenant's newest snapshot, or nil.
func lastSnapshotID(tx Tx, tenantID string) []byte {
	pfx := prefix(tenantID)
	c := tx.Bucket(iSnapSeq).Cursor()
	k, _ := c.Seek(append(append([]byte(nil), pfx...), seqKey(math.MaxInt64)...))
	var v []byte
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, pfx) {
		return nil
	}
	return v
}

// gather reads everything a snapshot of t may draw on.
func (w *wtx) gather(t *catalog.Tenant) (*catalog.SnapshotInput, error) {
	tx := w.Tx
	in := &catalog.SnapshotInput{Tenant: t, Sequence: 1}
	if id := lastSnapshotID(tx, t.TenantID); id != nil {
		var last catalog.Snapshot
		if err := mustGet(tx, bSnapshots, "snapshot", string(id), &last); err != nil {
			return nil, err
		}
		in.Sequence, in.Previous = last.Sequence+1, last.Hash
	}
	var g *globalSet
	var err error
	fresh := !w.db.cache || len(w.ops) > 0
	if fresh {
		// No cache, or this transaction changed the catalog and the cache
		// does not show it yet.
		g, err = loadGlobal(w.ctx, tx)
	} else {
		g, err = w.db.cached(w.ctx, tx)
	}
	if err != nil {
		return nil, err
	}
	if fresh {
		in.Products, in.Releases, in.ReleaseArtifacts = g.products, g.releases, g.releaseArtifacts
		in.Artifacts, in.Rollouts = g.artifacts, g.rollouts
	} else {
		in.Products = copies(g.products)
		in.Releases = copies(g.releases)
		in.ReleaseArtifacts = copies(g.releaseArtifacts)
		in.Artifacts = copies(g.artifacts)
		in.Rollouts = copies(g.rollouts)
	}

	pfx := prefix(t.TenantID)
	if in.Policies, err = decodeIndexed[catalog.Policy](tx, iPolicyTenant, bPolicies, pfx); err != nil {
		return nil, err
	}
	if in.BlockedVersions, err = decodeIndexed[catalog.BlockedVersion](tx, iBlockedTenant, bBlocked, pfx); err != nil {
		return nil, err
	}
	if in.Entitlements, err = decodeIndexed[catalog.Entitlement](tx, iEntTenant, bEntitlements, pfx); err != nil {
		return nil, err
	}
	for _, e := range in.Entitlements {
		seats, err := decodeIndexed[catalog.SeatAssignment](tx, iSeatEnt, bSeats, prefix(e.EntitlementID))
		if err != nil {
			return nil, err
		}
		in.SeatAssignments = append(in.SeatAssignments, seats...)
	}
	slices.SortFunc(in.SeatAssignments, func(a, b *catalog.SeatAssignment) int {
		return strings.Compare(a.SeatAssignmentID, b.SeatAssignmentID)
	})
	mirrors, err := decodeIndexed[mirrorRecord](tx, iMirrorTenant, bMirrors, pfx)
	if err != nil {
		return nil, err
	}
	for _, m := range mirrors {
		in.Mirrors = append(in.Mirrors, m.mirror())
	}
	return in, nil
}

// CreateSnapshot gathers the tenant's input, lets build make the signed
// snapshot and stores it, all in one transaction.
func (db *Store) CreateSnapshot(ctx context.Context, tenantID string, build func(in *catalog.SnapshotInput) (*catalog.Snapshot, error)) (*catalog.Snapshot, error) {
	var s *catalog.Snapshot
	err := db.update(ctx, func(w *wtx) error {
		var t catalog.Tenant
		if err := mustGet(w.Tx, bTenants, "tenant", tenantID, &t); err != nil {
			return err
		}
		if t.Status == catalog.TenantDeleted {
			return catalog.Errorf(catalog.ECONFLICT, "tenant %s is deleted", tenantID)
		}
		in, err := w.gather(&t)
		if err != nil {
			return fmt.Errorf("gather snapshot input: %w", err)
		}
		s, err = build(in)
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("snapshot build returned nothing")
		}
		if s.TenantID != tenantID || s.Sequence != in.Sequence {
			return fmt.Errorf("snapshot build returned tenant %q sequence %d, want %q sequence %d", s.TenantID, s.Sequence, tenantID, in.Sequence)
		}
		if err := checkID("snapshot_id", s.SnapshotID); err != nil {
			return err
		}
		if len(s.Envelope) == 0 {
			return fmt.Errorf("snapshot build returned an empty envelope")
		}
		sum := sha256.Sum256(s.Envelope)
		hash := hex.EncodeToString(sum[:])
		if s.Hash != "" && s.Hash != hash {
			return fmt.Errorf("snapshot hash %s does not match its envelope (%s)", s.Hash, hash)
		}
		s.Hash = hash
		s.CreatedAt = orNow(s.CreatedAt, w.now)
		if err := w.insert(bSnapshots, "snapshot", s.SnapshotID, s); err != nil {
			return err
		}
		if err := w.Bucket(bEnvelopes).Put([]byte(s.SnapshotID), packEnvelope(s.Envelope)); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iSnapSeq, append(prefix(tenantID), seqKey(s.Sequence)...), s.SnapshotID); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iSnapTenant, key(tenantID, s.SnapshotID), ""); err != nil {
			return err
		}
		return w.event(tenantID, "snapshot.created", s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// loadSnapshot reads a snapshot with its envelope (copied out of the map).
func loadSnapshot(tx Tx, id string) (*catalog.Snapshot, error) {
	var s catalog.Snapshot
	if err := mustGet(tx, bSnapshots, "snapshot", id, &s); err != nil {
		return nil, err
	}
	env, err := unpackEnvelope(tx.Bucket(bEnvelopes).Get([]byte(id)))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	s.Envelope = env
	return &s, nil
}

// Snapshot returns one snapshot with its envelope.
func (db *Store) Snapshot(ctx context.Context, id string) (s *catalog.Snapshot, err error) {
	err = db.view(ctx, func(tx Tx) error {
		s, err = loadSnapshot(tx, id)
		return err
	})
	return s, err
}

// SnapshotBySequence returns a tenant's snapshot of that sequence.
func (db *Store) SnapshotBySequence(ctx context.Context, tenantID string, seq int64) (s *catalog.Snapshot, err error) {
	err = db.view(ctx, func(tx Tx) error {
		id := tx.Bucket(iSnapSeq).Get(append(prefix(tenantID), seqKey(seq)...))
		if id == nil {
			return catalog.NotFound("snapshot", fmt.Sprintf("%s#%d", tenantID, seq))
		}
		s, err = loadSnapshot(tx, string(id))
		return err
	})
	return s, err
}

// LatestSnapshot returns the tenant's newest snapshot.
func (db *Store) LatestSnapshot(ctx context.Context, tenantID string) (s *catalog.Snapshot, err error) {
	err = db.view(ctx, func(tx Tx) error {
		id := lastSnapshotID(tx, tenantID)
		if id == nil {
			return catalog.Errorf(catalog.ENOTFOUND, "tenant %q has no snapshot", tenantID)
		}
		s, err = loadSnapshot(tx, string(id))
		return err
	})
	return s, err
}

// LatestSnapshotHead returns the tenant's newest snapshot without its
// envelope.
func (db *Store) LatestSnapshotHead(ctx context.Context, tenantID string) (s *catalog.Snapshot, err error) {
	err = db.view(ctx, func(tx Tx) error {
		id := lastSnapshotID(tx, tenantID)
		if id == nil {
			return catalog.Errorf(catalog.ENOTFOUND, "tenant %q has no snapshot", tenantID)
		}
		s = new(catalog.Snapshot)
		return mustGet(tx, bSnapshots, "snapshot", string(id), s)
	})
	return s, err
}

// Snapshots lists a tenant's snapshots by id, without envelopes.
func (db *Store) Snapshots(ctx context.Context, tenantID string, p store.Page) (out []*catalog.Snapshot, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bTenants, "tenant", tenantID); err != nil {
			return err
		}
		out, next, err = listByIndex[catalog.Snapshot](tx, iSnapTenant, bSnapshots, prefix(tenantID), p)
		return err
	})
	return out, next, err
}

// mirrorRecord keeps the credential fields catalog.Mirror leaves out of
// its JSON.
type mirrorRecord struct {
	catalog.Mirror
	StoredCredentialHash string `json:"credential_hash,omitempty"`
	StoredCredentialEnc  []byte `json:"credential_enc,omitempty"`
}

func (r *mirrorRecord) mirror() *catalog.Mirror {
	m := r.Mirror
	m.CredentialHash, m.CredentialEnc = r.StoredCredentialHash, r.StoredCredentialEnc
	return &m
}

func record(m *catalog.Mirror) *mirrorRecord {
	return &mirrorRecord{Mirror: *m, StoredCredentialHash: m.CredentialHash, StoredCredentialEnc: m.CredentialEnc}
}

var mirrorStatuses = []string{catalog.MirrorActive, catalog.MirrorInactive, catalog.MirrorError}

func checkMirror(m *catalog.Mirror) error {
	if m.Name != "" {
		if err := catalog.ValidateName("name", m.Name); err != nil {
			return err
		}
	}
	if err := catalog.ValidateEnum("status", m.Status, mirrorStatuses); err != nil {
		return err
	}
	if len(m.AllowedChannels) > 64 {
		return catalog.Invalid("allowed_channels", "at most 64 channels")
	}
	for _, ch := range m.AllowedChannels {
		if err := catalog.ValidateChannel("allowed_channels", ch); err != nil {
			return err
		}
	}
	if m.CredentialHash != "" {
		if err := catalog.ValidateSHA256("credential_hash", m.CredentialHash); err != nil {
			return err
		}
	}
	if len(m.VendorURL) > 2048 || len(m.PublicKey) > 256 || len(m.LastSyncError) > 4096 || len(m.CredentialEnc) > 4096 {
		return catalog.Invalid("mirror", "vendor_url, public_key, last_sync_error or credential is too long")
	}
	return checkText("last_snapshot_id", m.LastSnapshotID, false)
}

// CreateMirror registers a mirror of an existing tenant.
func (db *Store) CreateMirror(ctx context.Context, m *catalog.Mirror) error {
	if err := checkID("mirror_id", m.MirrorID); err != nil {
		return err
	}
	if m.Status == "" {
		m.Status = catalog.MirrorActive
	}
	if m.AllowedChannels == nil {
		m.AllowedChannels = []string{}
	}
	if err := checkMirror(m); err != nil {
		return err
	}
	return db.update(ctx, func(w *wtx) error {
		if err := liveTenant(w.Tx, m.TenantID); err != nil {
			return err
		}
		if m.CredentialHash != "" && w.Bucket(iMirrorCred).Get([]byte(m.CredentialHash)) != nil {
			return catalog.Errorf(catalog.ECONFLICT, "a mirror with this credential already exists")
		}
		m.CreatedAt = orNow(m.CreatedAt, w.now)
		m.UpdatedAt = m.CreatedAt
		if err := w.insert(bMirrors, "mirror", m.MirrorID, record(m)); err != nil {
			return err
		}
		if m.CredentialHash != "" {
			if err := putIdx(w.Tx, iMirrorCred, []byte(m.CredentialHash), m.MirrorID); err != nil {
				return err
			}
		}
		if err := putIdx(w.Tx, iMirrorTenant, key(m.TenantID, m.MirrorID), ""); err != nil {
			return err
		}
		return w.event(m.TenantID, "mirror.created", m)
	})
}

func getMirror(tx Tx, id string) (*catalog.Mirror, error) {
	var r mirrorRecord
	if err := mustGet(tx, bMirrors, "mirror", id, &r); err != nil {
		return nil, err
	}
	return r.mirror(), nil
}

// Mirror returns one mirror, credential fields included.
func (db *Store) Mirror(ctx context.Context, id string) (m *catalog.Mirror, err error) {
	err = db.view(ctx, func(tx Tx) error {
		m, err = getMirror(tx, id)
		return err
	})
	return m, err
}

// MirrorByCredentialHash returns the mirror authenticated by hash.
func (db *Store) MirrorByCredentialHash(ctx context.Context, hash string) (m *catalog.Mirror, err error) {
	err = db.view(ctx, func(tx Tx) error {
		id := tx.Bucket(iMirrorCred).Get([]byte(hash))
		if hash == "" || id == nil {
			return catalog.Errorf(catalog.ENOTFOUND, "mirror not found")
		}
		m, err = getMirror(tx, string(id))
		return err
	})
	return m, err
}

// Mirrors lists a tenant's mirrors by id.
func (db *Store) Mirrors(ctx context.Context, tenantID string, p store.Page) (out []*catalog.Mirror, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bTenants, "tenant", tenantID); err != nil {
			return err
		}
		recs, n, err := listByIndex[mirrorRecord](tx, iMirrorTenant, bMirrors, prefix(tenantID), p)
		if err != nil {
			return err
		}
		for _, r := range recs {
			out = append(out, r.mirror())
		}
		next = n
		return nil
	})
	return out, next, err
}

// UpdateMirror applies fn to a copy; mirror_id, tenant_id and created_at
// cannot change, and a new credential hash is re-indexed.
func (db *Store) UpdateMirror(ctx context.Context, id string, fn func(*catalog.Mirror) error) (*catalog.Mirror, error) {
	var cur *catalog.Mirror
	err := db.update(ctx, func(w *wtx) error {
		old, err := getMirror(w.Tx, id)
		if err != nil {
			return err
		}
		if cur, err = getMirror(w.Tx, id); err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		switch {
		case cur.MirrorID != old.MirrorID:
			return immutable("mirror_id")
		case cur.TenantID != old.TenantID:
			return immutable("tenant_id")
		case !cur.CreatedAt.Equal(old.CreatedAt):
			return immutable("created_at")
		}
		if cur.AllowedChannels == nil {
			cur.AllowedChannels = []string{}
		}
		if err := checkMirror(cur); err != nil {
			return err
		}
		if cur.CredentialHash != old.CredentialHash {
			idx := w.Bucket(iMirrorCred)
			if cur.CredentialHash != "" {
				if other := idx.Get([]byte(cur.CredentialHash)); other != nil {
					return catalog.Errorf(catalog.ECONFLICT, "a mirror with this credential already exists")
				}
				if err := idx.Put([]byte(cur.CredentialHash), []byte(id)); err != nil {
					return err
				}
			}
			if old.CredentialHash != "" {
				if err := idx.Delete([]byte(old.CredentialHash)); err != nil {
					return err
				}
			}
		}
		if cur.LastSyncAt != nil {
			t := cur.LastSyncAt.UTC()
			cur.LastSyncAt = &t
		}
		cur.UpdatedAt = w.now
		if err := w.put(bMirrors, []byte(id), record(cur)); err != nil {
			return err
		}
		return w.event(cur.TenantID, "mirror.updated", cur)
	})
	if err != nil {
		return nil, err
	}
	return cur, nil
}
