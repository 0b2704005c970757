package kv

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// readAhead is a shared backend over bbolt whose write transactions
// record what a backend with a round trip per Get (PostgreSQL) would
// fetch: the Prefetch calls, and every Get of a key neither read ahead
// nor written before in the transaction (a round trip of its own).
type readAhead struct {
	Backend
	mu         sync.Mutex
	on         bool
	prefetches int
	misses     []string
}

func (b *readAhead) Update(ctx context.Context, fn func(Tx) error) error {
	return b.Backend.Update(ctx, func(tx Tx) error {
		return fn(&aheadTx{Tx: tx, b: b, known: map[string]bool{}})
	})
}

func (b *readAhead) UpdateShared(ctx context.Context, _ []BucketKey, fn func(Tx) error) error {
	return b.Update(ctx, fn)
}

// TryUpdateSolo runs the audit sequencer, unrecorded.
func (b *readAhead) TryUpdateSolo(ctx context.Context, fn func(Tx) error) (bool, error) {
	return true, b.Backend.Update(ctx, fn)
}

type aheadTx struct {
	Tx
	b     *readAhead
	known map[string]bool // bucket NUL key: read ahead or written
}

func (t *aheadTx) Prefetch(keys []BucketKey) {
	t.b.mu.Lock()
	t.b.prefetches++
	t.b.mu.Unlock()
	for _, k := range keys {
		t.known[string(k.Bucket)+"\x00"+string(k.Key)] = true
	}
}

func (t *aheadTx) Bucket(name []byte) Bucket {
	return aheadBucket{Bucket: t.Tx.Bucket(name), tx: t, name: string(name)}
}

type aheadBucket struct {
	Bucket
	tx   *aheadTx
	name string
}

func (b aheadBucket) Get(k []byte) []byte {
	if ck := b.name + "\x00" + string(k); !b.tx.known[ck] {
		b.tx.b.mu.Lock()
		if b.tx.b.on {
			b.tx.b.misses = append(b.tx.b.misses, fmt.Sprintf("%s %q", b.name, k))
		}
		b.tx.b.mu.Unlock()
		b.tx.known[ck] = true // the backend caches what it read
	}
	return b.Bucket.Get(k)
}

func (b aheadBucket) Put(k, v []byte) error {
	b.tx.known[b.name+"\x00"+string(k)] = true
	return b.Bucket.Put(k, v)
}

func (b aheadBucket) Delete(k []byte) error {
	b.tx.known[b.name+"\x00"+string(k)] = true
	return b.Bucket.Delete(k)
}

// record runs fn with recording on and returns the prefetches and
// misses of the transactions it ran.
func (b *readAhead) record(fn func()) (prefetches int, misses []string) {
	b.mu.Lock()
	b.on, b.prefetches, b.misses = true, 0, nil
	b.mu.Unlock()
	fn()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.on = false
	return b.prefetches, b.misses
}

// TestGroupedWrites_ReadAhead: grouped writes read every key they use
// ahead, in at most two round trips a batch, so that on PostgreSQL a
// batch does not wait for one round trip per read per call while it
// holds its snapshot (the shared licence writes: what the call names,
// then what depends on it, such as a released lease's subject and
// counter, an issue's tenant and current lease, a revoked seat's subject)
// or the write gate that every instance's writes wait for (the exclusive
// ones). Range reads (cursors) are not counted.
func TestGroupedWrites_ReadAhead(t *testing.T) {
	b := &readAhead{Backend: Bolt(openBuckets(t))}
	db := New(b, Options{})
	defer db.Close()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "t", Status: catalog.TenantActive}
	if err := db.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	var ents []string
	for _, mode := range []string{catalog.SeatsAutomatic, catalog.SeatsExplicit} {
		p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: mode}
		e := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
			Policy: []byte(fmt.Sprintf(`{"max_seats":10,"seat_assignment_mode":%q}`, mode)), StartsAt: time.Now().Add(-time.Hour)}
		for _, err := range []error{db.CreateProduct(ctx, p), db.CreateEntitlement(ctx, e)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		ents = append(ents, e.EntitlementID)
	}
	auto, explicit := ents[0], ents[1]
	lease := func(ent, subject string) *catalog.Lease {
		return &catalog.Lease{EntitlementID: ent, SubjectType: catalog.SubjectMachine, SubjectID: subject,
			IssuedAt: time.Now().UTC(), TokenHash: fmt.Sprintf("%x", sha256.Sum256([]byte(subject+time.Now().String())))}
	}
	// Warm: the first write rebuilds the counters once (ensureCounted).
	if _, err := db.AcquireLease(ctx, lease(auto, "warm")); err != nil {
		t.Fatal(err)
	}
	seat := &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: explicit,
		SubjectType: catalog.SubjectMachine, SubjectID: "m-explicit"}
	var held *catalog.Lease
	prd := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "admin"}
	if err := db.CreateProduct(ctx, prd); err != nil {
		t.Fatal(err)
	}
	rel := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: prd.ProductID, Channel: "stable", Version: "1.0.0"}
	if err := db.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	ent := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: prd.ProductID,
		Policy: []byte(`{"max_seats":1}`), StartsAt: time.Now().Add(-time.Hour)}
	art := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged,
		SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte("art"))), SizeBytes: 1, StoragePath: "a"}
	pol := &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: tn.TenantID, ProductID: prd.ProductID, Channel: "stable",
		Action: catalog.ActionNotify, Conditions: []byte(`{}`)}
	blk := &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: prd.ProductID, BlockedVersion: "0.9"}
	tok := &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleTenant, TenantID: tn.TenantID,
		Hash: fmt.Sprintf("%x", sha256.Sum256([]byte("tok")))}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"a lease", func() (err error) { held, err = db.AcquireLease(ctx, lease(auto, "m1")); return err }},
		{"a renewal", func() error { _, err := db.AcquireLease(ctx, lease(auto, "m1")); return err }},
		{"a lease released", func() error { _, err := db.ReleaseLease(ctx, held.LeaseID, "", true, time.Time{}); return err }},
		{"a seat assigned", func() error { return db.AssignSeat(ctx, seat) }},
		{"a lease in explicit mode", func() error { _, err := db.AcquireLease(ctx, lease(explicit, "m-explicit")); return err }},
		{"a seat revoked", func() error {
			_, err := db.RevokeSeat(ctx, explicit, seat.SeatAssignmentID, "", time.Time{})
			return err
		}},
		{"an Idempotency-Key reserved", func() error {
			held, err := db.ReserveIdempotency(ctx, "tok_x:lease", "h", "att-1", time.Now().Add(-time.Hour))
			if held != nil {
				return fmt.Errorf("reserve: held %+v", held)
			}
			return err
		}},
		{"a lease under it", func() error {
			_, err := db.AcquireLease(store.WithIdempotencyAttempt(ctx, "tok_x:lease", "att-1"), lease(auto, "m-keyed"))
			return err
		}},
		{"its answer", func() error {
			return db.CompleteIdempotency(ctx, "tok_x:lease", &store.IdempotencyRecord{RequestHash: "h", Attempt: "att-1", Status: 201, Body: []byte(`{}`)})
		}},
		// Exclusive writes.
		{"an entitlement", func() error { return db.CreateEntitlement(ctx, ent) }},
		{"an entitlement updated", func() error {
			_, err := db.UpdateEntitlement(ctx, ent.EntitlementID, func(e *catalog.Entitlement) error { e.Policy = []byte(`{"max_seats":2}`); return nil })
			return err
		}},
		{"a tenant updated", func() error {
			_, err := db.UpdateTenant(ctx, tn.TenantID, func(x *catalog.Tenant) error { x.Name = "renamed"; return nil })
			return err
		}},
		{"an artifact", func() error { return db.CreateArtifact(ctx, art) }},
		{"an artifact verified", func() error {
			_, err := db.SetArtifactStatus(ctx, art.ArtifactID, catalog.ArtifactVerified, nil)
			return err
		}},
		{"an artifact attached", func() error {
			return db.AttachArtifact(ctx, &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact),
				ReleaseID: rel.ReleaseID, ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "zip"})
		}},
		{"a rollout", func() error {
			return db.CreateRollout(ctx, &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: prd.ProductID,
				Channel: "stable", ReleaseID: rel.ReleaseID, Percentage: 10})
		}},
		{"a policy", func() error { return db.CreatePolicy(ctx, pol) }},
		{"a policy updated", func() error {
			_, err := db.UpdatePolicy(ctx, pol.PolicyID, func(x *catalog.Policy) error { x.Action = catalog.ActionDownload; return nil })
			return err
		}},
		{"a version blocked", func() error { return db.CreateBlockedVersion(ctx, blk) }},
		{"a version unblocked", func() error { return db.DeleteBlockedVersion(ctx, tn.TenantID, blk.BlocklistID) }},
		{"a release revoked", func() error { _, err := db.RevokeRelease(ctx, rel.ReleaseID, time.Time{}); return err }},
		{"a token", func() error { return db.CreateToken(ctx, tok) }},
		{"a token revoked", func() error { _, err := db.RevokeToken(ctx, tok.TokenID, "usr_test"); return err }},
		{"an answer kept", func() error {
			return db.PutIdempotency(ctx, "tok_x:key", &store.IdempotencyRecord{RequestHash: "h", Status: 201, Body: []byte(`{}`)})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			prefetches, misses := b.record(func() { err = c.call() })
			if err != nil {
				t.Fatal(err)
			}
			if len(misses) > 0 {
				t.Errorf("read without read-ahead (a round trip each): %v", misses)
			}
			if prefetches < 1 || prefetches > 2 {
				t.Errorf("%d read-ahead round trips, want 1 or 2", prefetches)
			}
		})
	}
}
