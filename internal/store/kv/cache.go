package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/outpost/outpost/internal/catalog"
)

// The vendor-wide catalog (products, releases, release artifacts, their
// artifacts, rollouts) is most of every snapshot input, and decoding it
// is most of the cost of a build (about a second for 100,000
// releases). So it is decoded once per process, in the background from
// New, and then kept current: every committed write to its buckets is
// applied to it in place, never by dropping it. Only with Options.Cache:
// a backend that other processes write to (postgres) cannot keep it.
//
// Concurrency: db.mu is held across every read-write transaction (the
// backend serializes them anyway) and the cache update after its commit, so a
// reader inside a write transaction always sees the cache of the
// committed state before it. Changes are applied only after the
// backend reports the commit, so a rolled-back transaction leaves no trace.
// Cached objects are never modified: a change replaces the pointer.

// globalSet is the vendor-wide part of every snapshot input; each list is
// sorted by id (key order).
type globalSet struct {
	products         []*catalog.Product
	releases         []*catalog.Release
	releaseArtifacts []*catalog.ReleaseArtifact
	artifacts        []*catalog.Artifact // those release artifacts reference
	rollouts         []*catalog.Rollout
}

// cacheOp is one committed-to-be write to a cached bucket: the object as
// it was stored (decoded back from its bytes, so it equals what a fresh
// load would read).
type cacheOp struct {
	bucket string
	obj    any
}

// warmer is the background load started by New.
type warmer struct {
	cancel context.CancelFunc
	done   chan struct{}
	gen    uint64     // db.gen when the load started
	g      *globalSet // nil when the load failed or was cancelled
}

// globalBucket reports whether a write to bucket changes the globalSet.
func globalBucket(b []byte) bool {
	switch string(b) {
	case string(bProducts), string(bReleases), string(bRelArts), string(bArtifacts), string(bRollouts):
		return true
	}
	return false
}

// startWarm decodes the vendor-wide catalog in the background so that the
// first snapshot build of the process finds it ready.
func (db *Store) startWarm() {
	ctx, cancel := context.WithCancel(context.Background())
	w := &warmer{cancel: cancel, done: make(chan struct{}), gen: db.gen.Load()}
	db.warm = w
	go func() {
		defer close(w.done)
		_ = db.b.View(ctx, func(tx Tx) error {
			g, err := loadGlobal(ctx, tx)
			if err == nil {
				w.g = g
			}
			return nil
		})
	}()
}

// adoptWarm takes the background load's result when it reflects the
// current state; with wait it first waits for the load to finish. The
// caller holds db.mu.
func (db *Store) adoptWarm(wait bool) {
	w := db.warm
	if w == nil {
		return
	}
	if wait {
		<-w.done
	} else {
		select {
		case <-w.done:
		default:
			return
		}
	}
	db.warm = nil
	if db.global == nil && w.g != nil && w.gen == db.gen.Load() {
		db.global = w.g
	}
}

// stopWarm cancels the background load and waits for it. The caller holds
// db.mu.
func (db *Store) stopWarm() {
	if db.warm != nil {
		db.warm.cancel()
		<-db.warm.done
		db.warm = nil
	}
}

// DropCache forgets the cache (for benchmarks that measure a cold build
// and for writes that bypass the store).
func (db *Store) DropCache() {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.stopWarm()
	db.global = nil
}

// cached returns the cache, loading it in tx when absent. The caller holds
// db.mu and tx has written nothing to the cached buckets.
func (db *Store) cached(ctx context.Context, tx Tx) (*globalSet, error) {
	db.adoptWarm(true)
	if db.global == nil {
		g, err := loadGlobal(ctx, tx)
		if err != nil {
			return nil, err
		}
		db.global = g
	}
	return db.global, nil
}

// note records a write to a cached bucket, to be applied after commit.
// For a release artifact it also records its artifact as read in tx,
// since the cache holds only referenced artifacts.
func (w *wtx) note(bucket []byte, raw []byte) error {
	obj, err := decodeCached(bucket, raw)
	if err != nil {
		return err
	}
	w.ops = append(w.ops, cacheOp{bucket: string(bucket), obj: obj})
	if ra, ok := obj.(*catalog.ReleaseArtifact); ok {
		araw := w.Bucket(bArtifacts).Get([]byte(ra.ArtifactID))
		if araw == nil {
			return fmt.Errorf("release artifact %s names missing artifact %q", ra.ReleaseArtifactID, ra.ArtifactID)
		}
		a := new(catalog.Artifact)
		if err := json.Unmarshal(araw, a); err != nil {
			return fmt.Errorf("decode artifact %q: %w", ra.ArtifactID, err)
		}
		w.ops = append(w.ops, cacheOp{bucket: refArtifact, obj: a})
	}
	return nil
}

// refArtifact marks an artifact that a new release artifact references:
// it is added to the cache if absent (a plain artifact write only
// replaces one already there).
const refArtifact = "\x00referenced artifact"

func decodeCached(bucket, raw []byte) (any, error) {
	var obj any
	switch string(bucket) {
	case string(bProducts):
		obj = new(catalog.Product)
	case string(bReleases):
		obj = new(catalog.Release)
	case string(bRelArts):
		obj = new(catalog.ReleaseArtifact)
	case string(bArtifacts):
		obj = new(catalog.Artifact)
	case string(bRollouts):
		obj = new(catalog.Rollout)
	default:
		return nil, fmt.Errorf("bucket %s is not cached", bucket)
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", bucket, err)
	}
	return obj, nil
}

// applyCache brings the cache up to date after a transaction with ops
// committed. The caller holds db.mu.
func (db *Store) applyCache(ops []cacheOp) {
	if len(ops) == 0 {
		return
	}
	db.adoptWarm(false) // a finished load shows the state before ops
	db.gen.Add(1)
	g := db.global
	if g == nil {
		return
	}
	for _, op := range ops {
		switch v := op.obj.(type) {
		case *catalog.Product:
			g.products = upsert(g.products, v, func(p *catalog.Product) string { return p.ProductID }, true)
		case *catalog.Release:
			g.releases = upsert(g.releases, v, func(r *catalog.Release) string { return r.ReleaseID }, true)
		case *catalog.ReleaseArtifact:
			g.releaseArtifacts = upsert(g.releaseArtifacts, v, func(r *catalog.ReleaseArtifact) string { return r.ReleaseArtifactID }, true)
		case *catalog.Artifact:
			// A referenced artifact is added when absent; any other
			// artifact write only replaces a cached one.
			g.artifacts = upsert(g.artifacts, v, func(a *catalog.Artifact) string { return a.ArtifactID }, op.bucket == refArtifact)
		case *catalog.Rollout:
			g.rollouts = upsert(g.rollouts, v, func(r *catalog.Rollout) string { return r.RolloutID }, true)
		}
	}
}

// invalidate drops the cache after a commit that failed: what the file
// holds is then uncertain. The caller holds db.mu.
func (db *Store) invalidate() {
	db.gen.Add(1)
	db.global = nil
}

// upsert replaces the element with v's id in the sorted list, or inserts
// v in order when insert is set.
func upsert[T any](list []*T, v *T, id func(*T) string, insert bool) []*T {
	i, found := slices.BinarySearchFunc(list, id(v), func(e *T, k string) int { return strings.Compare(id(e), k) })
	switch {
	case found:
		list[i] = v
	case insert:
		list = slices.Insert(list, i, v)
	}
	return list
}
