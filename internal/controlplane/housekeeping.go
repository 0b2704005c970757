package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// RefreshSnapshots builds a new snapshot for every active tenant whose
// latest one expires within before, so mirrors never go stale just because
// nobody published: an offline site keeps getting fresh signatures with
// every bundle or sync. Tenants with no snapshot yet are left alone (the
// vendor decides when a tenant goes live). It returns how many it built.
func (a *App) RefreshSnapshots(ctx context.Context, before time.Duration) (int, error) {
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorSystem, ID: "snapshot-refresh"})
	built := 0
	p := store.Page{Limit: store.MaxLimit}
	for {
		tenants, next, err := a.store.Tenants(ctx, p)
		if err != nil {
			return built, err
		}
		for _, t := range tenants {
			if t.Status != catalog.TenantActive {
				continue
			}
			head, err := a.store.LatestSnapshotHead(ctx, t.TenantID)
			if catalog.ErrorCode(err) == catalog.ENOTFOUND {
				continue
			}
			if err != nil {
				return built, err
			}
			if head.ExpiresAt.Sub(a.now()) > before {
				continue
			}
			snap, err := a.buildSnapshot(ctx, t.TenantID)
			if err != nil {
				return built, err
			}
			built++
			a.log.Info("snapshot refreshed before expiry", "tenant", t.TenantID, "sequence", snap.Sequence, "expires_at", snap.ExpiresAt)
		}
		if next == "" {
			return built, nil
		}
		p.Cursor = next
	}
}

// SweepOrphanBlobs deletes artifact bytes that no artifact record names:
// what a crash between storing an upload and recording it leaves behind.
// Only objects older than olderThan go, so an upload finishing right now is
// never taken. It returns how many it deleted.
func (a *App) SweepOrphanBlobs(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := a.now().Add(-olderThan)
	var orphans []string
	err := a.blobs.List(ctx, artifactPrefix, func(i blob.Info) error {
		if i.ModTime.After(cutoff) {
			return nil
		}
		id := strings.TrimPrefix(i.Key, artifactPrefix)
		if !catalog.ValidID(catalog.PrefixArtifact, id) {
			return nil // not ours to judge
		}
		_, err := a.store.Artifact(ctx, id)
		switch catalog.ErrorCode(err) {
		case "":
		case catalog.ENOTFOUND:
			orphans = append(orphans, i.Key)
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range orphans {
		if err := a.blobs.Delete(ctx, key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ExpireIdempotency forgets remembered answers older than ttl.
func (a *App) ExpireIdempotency(ctx context.Context, ttl time.Duration) (int, error) {
	return a.store.ExpireIdempotency(ctx, a.now().Add(-ttl))
}

// LeaseSweepLimit bounds the expired leases one housekeeping round takes
// out of the active sets (store.SweepExpiredLeases works in transactions
// of 1,000; admission frees an expired lease's seat without it).
const LeaseSweepLimit = 100_000

// SweepExpiredLeases takes the leases expired by now out of every
// entitlement's active set, at most LeaseSweepLimit per call
// (housekeeping).
func (a *App) SweepExpiredLeases(ctx context.Context) (int, error) {
	return a.store.SweepExpiredLeases(ctx, a.now(), LeaseSweepLimit)
}

// Remembered is the first answer to a request made with an idempotency
// key.
type Remembered struct {
	RequestHash string
	Status      int
	Body        []byte
	Pending     bool // reserved by an attempt still running: no answer yet
	Committed   bool // pending, but its attempt committed a write: never rerun
}

func idempotencyAD(key string) string { return "idempotency:" + key }

// Remembered returns the answer remembered for key (already scoped to its
// caller), or ENOTFOUND.
func (a *App) Remembered(ctx context.Context, key string) (*Remembered, error) {
	rec, err := a.store.Idempotency(ctx, key)
	if err != nil {
		return nil, err
	}
	body, err := a.openRemembered(key, rec.Body)
	if err != nil {
		return nil, err
	}
	return &Remembered{RequestHash: rec.RequestHash, Status: rec.Status, Body: body}, nil
}

// openRemembered decrypts a remembered answer. Records written before
// answers were sealed hold plain JSON, which random ciphertext never is.
func (a *App) openRemembered(key string, stored []byte) ([]byte, error) {
	if a.secrets != nil {
		if body, err := a.secrets.Open(idempotencyAD(key), stored); err == nil {
			return body, nil
		}
	}
	if json.Valid(stored) {
		return stored, nil
	}
	return nil, fmt.Errorf("idempotency record %q does not decrypt with the data-encryption key", key)
}

// Remember keeps an answer for key, sealed (answers carry secrets shown
// once: tokens, credentials). Without a data-encryption key nothing is
// remembered.
func (a *App) Remember(ctx context.Context, key string, r Remembered) error {
	if a.secrets == nil {
		return nil
	}
	sealed, err := a.secrets.Seal(idempotencyAD(key), r.Body)
	if err != nil {
		return fmt.Errorf("seal idempotency record: %w", err)
	}
	return a.store.PutIdempotency(ctx, key, &store.IdempotencyRecord{
		RequestHash: r.RequestHash, Status: r.Status, Body: sealed, CreatedAt: a.now(),
	})
}

// ReserveIdempotencyKey reserves key (already scoped to its caller) for a
// request with requestHash before the request runs, across every instance
// on the store. It returns (nil, nil) when the key is now reserved (it was
// free, or held by a reservation older than stale: a crashed attempt);
// otherwise the record that holds it, with Pending set while another
// attempt is running. Without a data-encryption key nothing is remembered,
// so nothing is reserved either.
//
// attempt names this attempt: run the request with
// store.WithIdempotencyAttempt(ctx, key, attempt), so that its writes
// check the reservation is still its own and mark it Committed in their
// own transaction (a committed reservation is never taken over).
func (a *App) ReserveIdempotencyKey(ctx context.Context, key, requestHash, attempt string, stale time.Duration) (*Remembered, error) {
	if a.secrets == nil {
		return nil, nil
	}
	rec, err := a.store.ReserveIdempotency(ctx, key, requestHash, attempt, a.now().Add(-stale))
	if err != nil || rec == nil {
		return nil, err
	}
	if rec.Pending() {
		return &Remembered{RequestHash: rec.RequestHash, Pending: true, Committed: rec.Committed}, nil
	}
	body, err := a.openRemembered(key, rec.Body)
	if err != nil {
		return nil, err
	}
	return &Remembered{RequestHash: rec.RequestHash, Status: rec.Status, Body: body}, nil
}

// CompleteIdempotencyKey stores the answer in place of the reservation
// ReserveIdempotencyKey made for attempt, sealed.
func (a *App) CompleteIdempotencyKey(ctx context.Context, key, attempt string, r Remembered) error {
	if a.secrets == nil {
		return nil
	}
	sealed, err := a.secrets.Seal(idempotencyAD(key), r.Body)
	if err != nil {
		return fmt.Errorf("seal idempotency record: %w", err)
	}
	return a.store.CompleteIdempotency(ctx, key, &store.IdempotencyRecord{
		RequestHash: r.RequestHash, Attempt: attempt, Status: r.Status, Body: sealed, CreatedAt: a.now(),
	})
}

// ReleaseIdempotencyKey drops the reservation of key by attempt, so a
// retry of a failed request runs, unless the request committed a write.
func (a *App) ReleaseIdempotencyKey(ctx context.Context, key, attempt string) error {
	if a.secrets == nil {
		return nil
	}
	return a.store.ReleaseIdempotency(ctx, key, attempt)
}

// Backuper is a store that can write a consistent copy of itself while
// serving (bbolt: a read transaction's WriteTo).
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Backup writes a consistent copy of the catalog to w.
func (a *App) Backup(ctx context.Context, w io.Writer) (int64, error) {
	b, ok := a.store.(Backuper)
	if !ok {
		return 0, catalog.Errorf(catalog.EUNAVAILABLE, "this store cannot make online backups (use its own tools, e.g. pg_dump)")
	}
	return b.Backup(ctx, w)
}

// Ready reports whether the service can serve: its store answers and a
// signing key is active.
func (a *App) Ready(ctx context.Context) error {
	if _, _, err := a.store.Tenants(ctx, store.Page{Limit: 1}); err != nil {
		return catalog.Errorf(catalog.EUNAVAILABLE, "store unavailable")
	}
	if len(a.keys.Signers()) == 0 {
		return catalog.Errorf(catalog.EUNAVAILABLE, "no active signing key")
	}
	return nil
}

// AuditCheck is the outcome of VerifyAudit.
type AuditCheck struct {
	Verified int64  `json:"verified"`  // events whose links hold
	HeadHash string `json:"head_hash"` // the last event's hash when the chain holds
}

// VerifyAudit walks the whole audit chain. A broken link is returned as
// *audit.BrokenLinkError (with the check up to it).
func (a *App) VerifyAudit(ctx context.Context) (*AuditCheck, error) {
	var v audit.Verifier
	err := a.store.WalkAudit(ctx, v.Next)
	res := &AuditCheck{Verified: v.Count()}
	if err != nil {
		return res, err
	}
	if h := v.Head(); h != nil {
		res.HeadHash = h.Hash
	}
	return res, nil
}
