package controlplane

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/tuf"
)

// Retention is the policy for old snapshots and TUF metadata versions
// (docs/metadata.md, "Retention"), applied by Prune in housekeeping.
type Retention struct {
	// Keep is how many of a tenant's newest snapshots, and newest
	// versions of its TUF snapshot and targets roles, are always kept
	// (default 10; the newest is kept whatever the setting).
	Keep int
	// MirrorMaxAge bounds how long a mirror's last report pins older
	// snapshots: the snapshot a mirror reported within it, and every
	// newer one, are kept; a mirror silent for longer pins nothing
	// (default 30 days).
	MirrorMaxAge time.Duration
	// Disabled turns pruning off.
	Disabled bool
}

func (r *Retention) defaults() {
	if r.Keep <= 0 {
		r.Keep = 10
	}
	if r.MirrorMaxAge <= 0 {
		r.MirrorMaxAge = 30 * 24 * time.Hour
	}
}

// pruneBatch bounds one pruning transaction.
const pruneBatch = 256

// Pruned says what Prune deleted.
type Pruned struct {
	Snapshots   int `json:"snapshots"`    // schema 1 snapshots (record and envelope)
	TenantFiles int `json:"tenant_files"` // TUF files of tenants' own scopes
	SharedFiles int `json:"shared_files"` // TUF files of the shared product scope
}

// Prune applies the retention policy to every tenant, each step one
// bounded transaction: old snapshots past Keep and every mirror's pin,
// TUF snapshot and targets versions past Keep with the documents only
// they named, and shared product roles, bins and documents that no kept
// version of any tenant names. Roots are never pruned; nothing a current
// set names is either (the store refuses).
func (a *App) Prune(ctx context.Context) (Pruned, error) {
	var out Pruned
	r := a.cfg.Retention
	pr, ok := a.store.(store.Pruner)
	if r.Disabled || !ok {
		return out, nil
	}
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorSystem, ID: "retention"})
	err := a.eachTenant(ctx, func(t *catalog.Tenant) error {
		pins, err := a.mirrorPins(ctx, t.TenantID, r.MirrorMaxAge)
		if err != nil {
			return err
		}
		for {
			n, err := pr.PruneSnapshots(ctx, t.TenantID, r.Keep, pins, pruneBatch)
			out.Snapshots += n
			if err != nil {
				return fmt.Errorf("prune snapshots: %w", err)
			}
			if n < pruneBatch {
				return nil
			}
		}
	})
	if err != nil || a.tuf == nil {
		return out, err
	}
	// TUF: one pass with publishing held, so that no build makes a
	// product version current, then replaces it, between the pass that
	// finds what the tenants' kept versions name and the deletion.
	a.tuf.mu.Lock()
	defer a.tuf.mu.Unlock()
	shared := map[string]bool{} // shared files a kept tenant version names
	err = a.eachTenant(ctx, func(t *catalog.Tenant) error {
		n, err := a.pruneTenantTUF(ctx, pr, t.TenantID, r.Keep, shared)
		out.TenantFiles += n
		return err
	})
	if err != nil {
		return out, err
	}
	out.SharedFiles, err = a.pruneSharedTUF(ctx, pr, shared)
	return out, err
}

// eachTenant calls fn for every tenant, whatever its status.
func (a *App) eachTenant(ctx context.Context, fn func(t *catalog.Tenant) error) error {
	p := store.Page{Limit: store.MaxLimit}
	for {
		tenants, next, err := a.store.Tenants(ctx, p)
		if err != nil {
			return err
		}
		for _, t := range tenants {
			if err := fn(t); err != nil {
				return fmt.Errorf("tenant %s: %w", t.TenantID, err)
			}
		}
		if next == "" {
			return nil
		}
		p.Cursor = next
	}
}

// mirrorPins are the snapshots the tenant's mirrors last reported within
// maxAge.
func (a *App) mirrorPins(ctx context.Context, tenantID string, maxAge time.Duration) ([]string, error) {
	var pins []string
	cutoff := a.now().Add(-maxAge)
	p := store.Page{Limit: store.MaxLimit}
	for {
		ms, next, err := a.store.Mirrors(ctx, tenantID, p)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.LastSnapshotID != "" && m.LastSyncAt != nil && m.LastSyncAt.After(cutoff) {
				pins = append(pins, m.LastSnapshotID)
			}
		}
		if next == "" {
			return pins, nil
		}
		p.Cursor = next
	}
}

// versionOf parses "metadata/<v>.<role>.json" (0, "" when it is not).
func versionOf(name string) (int64, string) {
	rest, ok := strings.CutPrefix(name, tuf.MetadataDir+"/")
	if !ok {
		return 0, ""
	}
	vs, _, _ := strings.Cut(rest, ".")
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || v <= 0 {
		return 0, ""
	}
	return v, roleOfName(rest)
}

// allNames lists every name of scope under pfx.
func allNames(ctx context.Context, pr store.Pruner, scope, pfx string) ([]string, error) {
	var out []string
	after := ""
	for {
		names, err := pr.TUFNames(ctx, scope, pfx, after, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, names...)
		if len(names) < 1000 {
			return out, nil
		}
		after = names[len(names)-1]
	}
}

// deleteAll deletes names of scope in bounded transactions (the store
// skips any a current set lists).
func deleteAll(ctx context.Context, pr store.Pruner, scope string, names []string) (int, error) {
	n := 0
	for len(names) > 0 {
		batch := names[:min(len(names), pruneBatch)]
		d, err := pr.DeleteTUFFiles(ctx, scope, batch)
		n += d
		if err != nil {
			return n, err
		}
		names = names[len(batch):]
	}
	return n, nil
}

// pruneTenantTUF deletes the tenant's TUF snapshot and targets versions
// older than its keep newest, and the documents no kept targets version
// names. It adds to shared the product files its kept snapshots name.
func (a *App) pruneTenantTUF(ctx context.Context, pr store.Pruner, tenantID string, keep int, shared map[string]bool) (int, error) {
	files := a.tuf.files
	current, err := files.TUFSet(ctx, tenantID, tufCurrent)
	if err != nil || current == nil {
		return 0, err
	}
	latest := map[string]int64{}
	keepDocs := map[string]bool{}
	for _, f := range current {
		if v, role := versionOf(f.Name); v > 0 {
			latest[role] = v
		} else if strings.HasPrefix(f.Name, tuf.TargetsDir+"/") {
			keepDocs[f.Name] = true
		}
	}
	names, err := allNames(ctx, pr, tenantID, tuf.MetadataDir+"/")
	if err != nil {
		return 0, err
	}
	var drop []string
	for _, name := range names {
		v, role := versionOf(name)
		if role != metadata.SNAPSHOT && role != metadata.TARGETS {
			continue // roots are never pruned; the timestamp is one file
		}
		if v > latest[role]-int64(keep) {
			if err := a.keptTenantFile(ctx, tenantID, name, role, keepDocs, shared); err != nil {
				return 0, err
			}
			continue
		}
		drop = append(drop, name)
	}
	docs, err := allNames(ctx, pr, tenantID, tuf.TargetsDir+"/")
	if err != nil {
		return 0, err
	}
	for _, d := range docs {
		if !keepDocs[d] {
			drop = append(drop, d)
		}
	}
	return deleteAll(ctx, pr, tenantID, drop)
}

// keptTenantFile notes what a kept snapshot or targets version names: a
// snapshot the product roles and bins at their versions (shared), a
// targets version its documents.
func (a *App) keptTenantFile(ctx context.Context, tenantID, name, role string, docs, shared map[string]bool) error {
	b, err := a.tuf.files.TUFFile(ctx, tenantID, name)
	if err != nil {
		return err
	}
	switch role {
	case metadata.SNAPSHOT:
		sn, err := metadata.Snapshot().FromBytes(b)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for n, mf := range sn.Signed.Meta {
			r := strings.TrimSuffix(n, ".json")
			if r != metadata.TARGETS {
				shared[tuf.MetadataPath(r, mf.Version)] = true
			}
		}
	case metadata.TARGETS:
		tg, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for path, tf := range tg.Signed.Targets {
			if h, ok := tf.Hashes["sha256"]; ok {
				docs[tuf.TargetPath(path, h.String())] = true
			}
		}
	}
	return nil
}

// pruneSharedTUF deletes the product roles, bins and product documents
// that no kept tenant version names and no product's current set lists.
// A product document is kept while a kept product role names it.
func (a *App) pruneSharedTUF(ctx context.Context, pr store.Pruner, keep map[string]bool) (int, error) {
	names, err := allNames(ctx, pr, tufShared, tuf.MetadataDir+"/")
	if err != nil {
		return 0, err
	}
	docs := map[string]bool{}
	var drop []string
	for _, name := range names {
		_, role := versionOf(name)
		if !keep[name] {
			drop = append(drop, name)
			continue
		}
		if !strings.HasPrefix(role, "p-") {
			continue
		}
		b, err := a.tuf.files.TUFFile(ctx, tufShared, name)
		if err != nil {
			return 0, err
		}
		tg, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		for path, tf := range tg.Signed.Targets {
			if h, ok := tf.Hashes["sha256"]; ok && strings.HasSuffix(path, "/product.json") {
				docs[tuf.TargetPath(path, h.String())] = true
			}
		}
	}
	all, err := allNames(ctx, pr, tufShared, tuf.TargetsDir+"/")
	if err != nil {
		return 0, err
	}
	for _, d := range all {
		if !docs[d] {
			drop = append(drop, d)
		}
	}
	return deleteAll(ctx, pr, tufShared, drop)
}
