package tuf

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TenantKeys are the online keys of a tenant's top-level roles; every
// signer of a role signs it.
type TenantKeys struct {
	Targets   []Signer
	Snapshot  []Signer
	Timestamp []Signer
}

// TenantOptions are a tenant's metadata lifetimes.
type TenantOptions struct {
	// TimestampTTL is the validity of the timestamp (default 24h): short
	// for online sites, matched to the bundle cadence for air-gapped ones.
	TimestampTTL time.Duration
	// SnapshotTTL is the validity of the snapshot (default 30 days, and at
	// least 2*TimestampTTL).
	SnapshotTTL time.Duration
	// TargetsTTL is the validity of the top-level targets (default 365
	// days, and at least 2*SnapshotTTL).
	TargetsTTL time.Duration
}

func (o TenantOptions) withDefaults() TenantOptions {
	if o.TimestampTTL <= 0 {
		o.TimestampTTL = 24 * time.Hour
	}
	if o.SnapshotTTL <= 0 {
		o.SnapshotTTL = 30 * 24 * time.Hour
	}
	o.SnapshotTTL = max(o.SnapshotTTL, 2*o.TimestampTTL)
	if o.TargetsTTL <= 0 {
		o.TargetsTTL = 365 * 24 * time.Hour
	}
	o.TargetsTTL = max(o.TargetsTTL, 2*o.SnapshotTTL)
	return o
}

// Builder builds one tenant's repository from its view, re-signing only
// what changed. Products come from a shared ProductSet.
type Builder struct {
	TenantID string
	Products *ProductSet
	Keys     TenantKeys
	Options  TenantOptions
}

// State is the current metadata of one tenant's repository, as the
// builder left it (the previous state of the next build).
type State struct {
	TenantID  string
	targets   roleState
	docs      map[string]docState // by target path
	snapshot  roleState
	snapMeta  map[string]int64 // role name -> version, tombstones included
	timestamp roleState
	visible   []string // product ids delegated
	prodKeys  string   // the product key set delegated to
}

// Versions returns the versions of the tenant's top-level roles.
func (s *State) Versions() (targets, snap, timestamp int64) {
	if s == nil {
		return 0, 0, 0
	}
	return s.targets.version, s.snapshot.version, s.timestamp.version
}

// Files returns every current file of the tenant's own metadata and
// documents (the products' files come from ProductSet.Files).
func (s *State) Files() []File {
	out := []File{
		{Path: MetadataPath(metadata.TIMESTAMP, 0), Data: s.timestamp.data},
		{Path: MetadataPath(metadata.SNAPSHOT, s.snapshot.version), Data: s.snapshot.data},
		{Path: MetadataPath(metadata.TARGETS, s.targets.version), Data: s.targets.data},
	}
	for _, p := range slices.Sorted(maps.Keys(s.docs)) {
		d := s.docs[p]
		out = append(out, File{Path: TargetPath(d.path, d.sha256), Data: d.data})
	}
	return out
}

// Build updates every product of m in the shared set, then builds the
// tenant (BuildTenant). It returns the new state and the changed files,
// products' included. prev is nil for a tenant's first build.
func (b *Builder) Build(ctx context.Context, prev *State, m *snapshot.Manifest, now time.Time) (*State, []File, error) {
	byProduct := map[string][]snapshot.Release{}
	for _, r := range m.Releases {
		byProduct[r.ProductID] = append(byProduct[r.ProductID], r)
	}
	arts := make(map[string]*snapshot.Artifact, len(m.Artifacts))
	for i := range m.Artifacts {
		arts[m.Artifacts[i].ArtifactID] = &m.Artifacts[i]
	}
	// Deltas go with the product both their artifacts belong to.
	artProduct := map[string]string{}
	for _, r := range m.Releases {
		for _, ra := range r.Artifacts {
			artProduct[ra.ArtifactID] = r.ProductID
		}
	}
	deltas := map[string][]snapshot.Delta{}
	for _, d := range m.Deltas {
		if pid := artProduct[d.ToArtifactID]; pid != "" && artProduct[d.FromArtifactID] == pid {
			deltas[pid] = append(deltas[pid], d)
		}
	}
	var files []File
	for _, p := range m.Products {
		f, err := b.Products.UpdateWithDeltas(ctx, p, byProduct[p.ProductID], arts, deltas[p.ProductID], now)
		if err != nil {
			return nil, nil, fmt.Errorf("build %s: %w", b.TenantID, err)
		}
		files = append(files, f...)
	}
	st, tf, err := b.BuildTenant(ctx, prev, m, now)
	if err != nil {
		return nil, nil, err
	}
	return st, append(files, tf...), nil
}

// BuildTenant builds the tenant's own metadata from its view m, taking
// the products of m.Products as they currently are in the shared set (it
// reads neither m.Releases nor m.Artifacts): the tenant documents, the
// top-level targets (documents + one delegation per visible product),
// the snapshot and the timestamp. Only what changed is re-signed, with a
// new version; a role close to expiry is re-signed too (Refresh).
func (b *Builder) BuildTenant(ctx context.Context, prev *State, m *snapshot.Manifest, now time.Time) (*State, []File, error) {
	if m.TenantID != b.TenantID || m.Tenant.TenantID != b.TenantID {
		return nil, nil, fmt.Errorf("build tenant %s: view is for tenant %q", b.TenantID, m.TenantID)
	}
	if prev != nil && prev.TenantID != b.TenantID {
		return nil, nil, fmt.Errorf("build tenant %s: previous state is for tenant %q", b.TenantID, prev.TenantID)
	}
	docs := map[string]docState{}
	all := map[string]any{
		DocTenant: m.Tenant, DocPolicies: m.Policies, DocBlockedVersions: m.BlockedVersions, DocRollouts: m.Rollouts,
		DocEntitlements: m.Entitlements, DocSeatAssignments: m.SeatAssignments, DocMirrorKeys: m.MirrorKeys,
	}
	if len(m.LeaseKeys) > 0 {
		all[DocLeaseKeys] = m.LeaseKeys
	}
	for path, v := range all {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, nil, fmt.Errorf("build tenant %s: %s: %w", b.TenantID, path, err)
		}
		docs[path] = newDoc(path, data)
	}
	visible := make([]string, 0, len(m.Products))
	for _, p := range m.Products {
		visible = append(visible, p.ProductID)
	}
	slices.Sort(visible)
	return b.build(ctx, prev, docs, visible, now, false)
}

// Refresh re-signs the timestamp only (and the snapshot and targets when
// they would expire before the new timestamp's successor): a freshness
// refresh of a few KiB.
func (b *Builder) Refresh(ctx context.Context, prev *State, now time.Time) (*State, []File, error) {
	if prev == nil {
		return nil, nil, errors.New("refresh: no previous state")
	}
	return b.build(ctx, prev, prev.docs, prev.visible, now, true)
}

func (b *Builder) build(ctx context.Context, prev *State, docs map[string]docState, visible []string, now time.Time, forceTimestamp bool) (*State, []File, error) {
	o := b.Options.withDefaults()
	now = now.UTC().Truncate(time.Second)
	if prev == nil {
		prev = &State{TenantID: b.TenantID}
	}
	next := &State{TenantID: b.TenantID, docs: docs, visible: visible, targets: prev.targets, snapshot: prev.snapshot, timestamp: prev.timestamp}
	var files []File
	for _, p := range slices.Sorted(maps.Keys(docs)) {
		if d := docs[p]; prev.docs[p].sha256 != d.sha256 {
			files = append(files, File{Path: TargetPath(d.path, d.sha256), Data: d.data})
		}
	}

	// Top-level targets: the documents and a delegation per product.
	own := make([]entry, 0, len(docs))
	for _, p := range slices.Sorted(maps.Keys(docs)) {
		own = append(own, docs[p].entry())
	}
	pkeys, pids, pthreshold, pset := b.Products.delegation()
	next.prodKeys = pset
	delegationChanged := !slices.Equal(prev.visible, visible) || (len(visible) > 0 && prev.prodKeys != pset)
	if prev.targets.version == 0 || delegationChanged || !slices.Equal(prev.targets.entries, own) || prev.targets.expires.Before(now.Add(o.SnapshotTTL)) {
		t := metadata.Targets(now.Add(o.TargetsTTL))
		t.Signed.Version = prev.targets.version + 1
		t.Signed.UnrecognizedFields = map[string]any{TenantField: b.TenantID}
		for _, e := range own {
			tf, err := e.targetFile()
			if err != nil {
				return nil, nil, err
			}
			t.Signed.Targets[e.path] = tf
		}
		del := &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{}}
		if len(visible) > 0 {
			del.Keys = pkeys
		}
		for _, pid := range visible {
			del.Roles = append(del.Roles, metadata.DelegatedRole{
				Name: ProductRole(pid), KeyIDs: pids, Threshold: pthreshold,
				Terminating: true, Paths: []string{pid + "/*"},
			})
		}
		t.Signed.Delegations = del
		if err := sign(ctx, t, b.Keys.Targets...); err != nil {
			return nil, nil, fmt.Errorf("build tenant %s: targets: %w", b.TenantID, err)
		}
		data, err := encode(t)
		if err != nil {
			return nil, nil, err
		}
		next.targets = roleState{name: metadata.TARGETS, version: t.Signed.Version, expires: t.Signed.Expires, entries: own, data: data}
		files = append(files, File{Path: MetadataPath(metadata.TARGETS, next.targets.version), Data: data})
	}

	// Snapshot: every targets role's version; roles no longer delegated
	// stay listed at their last version (TUF forbids removing them).
	meta := maps.Clone(prev.snapMeta)
	if meta == nil {
		meta = map[string]int64{}
	}
	meta[metadata.TARGETS] = next.targets.version
	for _, pid := range visible {
		roles := b.Products.Roles(pid)
		if roles == nil {
			return nil, nil, fmt.Errorf("build tenant %s: product %s is not in the product set", b.TenantID, pid)
		}
		for _, r := range roles {
			meta[r.Role] = r.Version
		}
	}
	next.snapMeta = meta
	snapChanged := prev.snapshot.version == 0 || !maps.Equal(prev.snapMeta, meta) || prev.snapshot.expires.Before(now.Add(o.TimestampTTL))
	if snapChanged {
		version, expires := prev.snapshot.version+1, now.Add(o.SnapshotTTL)
		var data []byte
		var err error
		if canon, ok := fastSnapshot(version, expires, b.TenantID, meta); ok {
			data, err = envelope(ctx, canon, b.Keys.Snapshot)
		} else {
			s := metadata.Snapshot(expires)
			s.Signed.Version = version
			s.Signed.UnrecognizedFields = map[string]any{TenantField: b.TenantID}
			s.Signed.Meta = make(map[string]*metadata.MetaFiles, len(meta))
			for role, v := range meta {
				s.Signed.Meta[role+".json"] = &metadata.MetaFiles{Version: v}
			}
			if err = sign(ctx, s, b.Keys.Snapshot...); err == nil {
				data, err = encode(s)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("build tenant %s: snapshot: %w", b.TenantID, err)
		}
		next.snapshot = roleState{name: metadata.SNAPSHOT, version: version, expires: expires, data: data}
		files = append(files, File{Path: MetadataPath(metadata.SNAPSHOT, next.snapshot.version), Data: data})
	}

	// Timestamp: when the snapshot changed, on a refresh, or when half of
	// its validity has passed; it carries the time it was signed
	// (SignedAtField, for the clock rule CheckClock).
	if snapChanged || forceTimestamp || prev.timestamp.version == 0 || prev.timestamp.expires.Before(now.Add(o.TimestampTTL/2)) {
		version, expires := prev.timestamp.version+1, now.Add(o.TimestampTTL)
		h := sha256.Sum256(next.snapshot.data)
		var data []byte
		var err error
		if canon, ok := fastTimestamp(version, expires, now, b.TenantID, next.snapshot.version, int64(len(next.snapshot.data)), h[:]); ok {
			data, err = envelope(ctx, canon, b.Keys.Timestamp)
		} else {
			ts := metadata.Timestamp(expires)
			ts.Signed.Version = version
			ts.Signed.UnrecognizedFields = map[string]any{TenantField: b.TenantID, SignedAtField: now.Format(time.RFC3339)}
			ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": {
				Version: next.snapshot.version, Length: int64(len(next.snapshot.data)), Hashes: metadata.Hashes{"sha256": h[:]},
			}}
			if err = sign(ctx, ts, b.Keys.Timestamp...); err == nil {
				data, err = encode(ts)
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("build tenant %s: timestamp: %w", b.TenantID, err)
		}
		next.timestamp = roleState{name: metadata.TIMESTAMP, version: version, expires: expires, data: data}
		files = append(files, File{Path: MetadataPath(metadata.TIMESTAMP, 0), Data: data})
	}
	return next, files, nil
}
