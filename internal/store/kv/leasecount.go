package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// Lease and seat counters. Admission needs two numbers per entitlement:
// the leases holding a seat (unreleased, unexpired) and, in explicit mode,
// the seats assigned. Both are kept as counters written in the same
// transaction as the change they count, so an issuance reads two keys
// instead of decoding every active lease, and a crash can never leave a
// counter out of step with the leases (the transaction commits whole or
// not at all).
//
// The active set of an entitlement is the leases named by idx_lease_active
// (subject → lease id). Each of them has exactly one entry in
// idx_lease_expiry, keyed entitlement \0 expires_at (8 bytes big-endian
// unix nanoseconds) lease id, whose value is the subject key, and
// lease_counts[entitlement] is their number. A lease leaves the set when
// it is released or, once expired, when its expiry entry is popped:
// lazily, by the next admission on the same entitlement (popExpired, which
// reads only the entries due), or by the periodic sweep (SweepExpiredLeases).
// The index leads with the entitlement, not with the time, because the
// hot path pops one entitlement's due entries; the sweep walks the
// entitlements that have a counter.
//
// Counts are "as of the latest time popped": a request whose clock is
// behind an earlier one's (several instances with skewed clocks) sees
// leases that expired between the two as already free.
var (
	bLeaseCounts = []byte("lease_counts") // entitlement -> leaseCount (16 bytes)
	bSeatCounts  = []byte("seat_counts")  // entitlement -> assigned seats (8 bytes BE)
	iLeaseExpiry = []byte("idx_lease_expiry")

	// kLeaseCounted marks the counters and the expiry index complete
	// (rebuilt once from the leases of a store written before they existed).
	kLeaseCounted = []byte("lease_counters_v1")
)

// expiryNanos is t as the index's 8 big-endian bytes: unix nanoseconds,
// clamped to the range that sorts correctly (1970..2262).
func expiryNanos(t time.Time) uint64 {
	t = t.UTC()
	switch {
	case t.Year() < 1970:
		return 0
	case t.Year() >= 2262: // past UnixNano's range
		return 1<<63 - 1
	}
	return uint64(t.UnixNano())
}

// expiryKey is the idx_lease_expiry key of a lease of entitlement ent
// expiring at exp.
func expiryKey(ent string, exp time.Time, leaseID string) []byte {
	k := make([]byte, 0, len(ent)+1+8+len(leaseID))
	k = append(k, ent...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, expiryNanos(exp))
	return append(k, leaseID...)
}

// getCount reads a counter (0 when absent).
func getCount(b Bucket, ent string) (int64, error) {
	v := b.Get([]byte(ent))
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(v)), nil
	}
	return 0, fmt.Errorf("counter %q: %d bytes, want 8", ent, len(v))
}

// addCount adds d to a counter; a counter that reaches 0 is deleted, so
// the sweep walks only entitlements with leases out.
func addCount(b Bucket, ent string, d int64) error {
	n, err := getCount(b, ent)
	if err != nil {
		return err
	}
	n += d
	switch {
	case n < 0:
		return fmt.Errorf("counter %q would be %d", ent, n)
	case n == 0:
		return b.Delete([]byte(ent))
	}
	return b.Put([]byte(ent), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// leaseCount is an entitlement's lease_counts value: its active set's
// size and a lower bound of their expiries (16 bytes big-endian), so an
// admission reads the expiry index only when something may be due.
type leaseCount struct {
	n      int64
	minExp uint64 // every active lease expires at or after this
}

const noExpiry = 1<<64 - 1

func readLeaseCount(tx Tx, ent string) (leaseCount, error) {
	v := tx.Bucket(bLeaseCounts).Get([]byte(ent))
	switch len(v) {
	case 0:
		return leaseCount{minExp: noExpiry}, nil
	case 16:
		return leaseCount{n: int64(binary.BigEndian.Uint64(v)), minExp: binary.BigEndian.Uint64(v[8:])}, nil
	}
	return leaseCount{}, fmt.Errorf("lease counter %q: %d bytes, want 16", ent, len(v))
}

// writeLeaseCount stores c; a count of 0 is deleted, so the sweep walks
// only entitlements with leases out.
func writeLeaseCount(tx Tx, ent string, c leaseCount) error {
	switch {
	case c.n < 0:
		return fmt.Errorf("lease counter %q would be %d", ent, c.n)
	case c.n == 0:
		return tx.Bucket(bLeaseCounts).Delete([]byte(ent))
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(c.n))
	return tx.Bucket(bLeaseCounts).Put([]byte(ent), binary.BigEndian.AppendUint64(v, c.minExp))
}

// enterActive adds lease l (not in the set) to its entitlement's active
// set under subject key subj.
func enterActive(tx Tx, l *catalog.Lease, subj []byte) error {
	if err := tx.Bucket(iLeaseActive).Put(subj, []byte(l.LeaseID)); err != nil {
		return err
	}
	if err := tx.Bucket(iLeaseExpiry).Put(expiryKey(l.EntitlementID, l.ExpiresAt, l.LeaseID), subj); err != nil {
		return err
	}
	c, err := readLeaseCount(tx, l.EntitlementID)
	if err != nil {
		return err
	}
	c.n++
	c.minExp = min(c.minExp, expiryNanos(l.ExpiresAt))
	return writeLeaseCount(tx, l.EntitlementID, c)
}

// leaveActive removes lease l, stored with expiry oldExp, from the active
// set if it is in it (the subject index names it); false if it was not.
func leaveActive(tx Tx, l *catalog.Lease, oldExp time.Time) (bool, error) {
	active := tx.Bucket(iLeaseActive)
	subj := license.SubjectKey(l.EntitlementID, l.SubjectType, l.SubjectID)
	if string(active.Get(subj)) != l.LeaseID {
		return false, nil
	}
	if err := active.Delete(subj); err != nil {
		return false, err
	}
	if err := tx.Bucket(iLeaseExpiry).Delete(expiryKey(l.EntitlementID, oldExp, l.LeaseID)); err != nil {
		return false, err
	}
	c, err := readLeaseCount(tx, l.EntitlementID)
	if err != nil {
		return false, err
	}
	c.n--
	return true, writeLeaseCount(tx, l.EntitlementID, c)
}

// moveExpiry moves an active lease's expiry entry from oldExp to its new
// ExpiresAt (a renewal: one index entry, no counter change).
func moveExpiry(tx Tx, l *catalog.Lease, oldExp time.Time, subj []byte) error {
	old, cur := expiryKey(l.EntitlementID, oldExp, l.LeaseID), expiryKey(l.EntitlementID, l.ExpiresAt, l.LeaseID)
	if bytes.Equal(old, cur) {
		return nil
	}
	idx := tx.Bucket(iLeaseExpiry)
	if err := idx.Delete(old); err != nil {
		return err
	}
	return idx.Put(cur, subj)
}

// popExpired removes from ent's active set the leases expired at now
// (expires_at ≤ now), at most limit of them (≤ 0: all), and returns how
// many it removed and the set's size after. It reads the expiry index
// only when the counter's lower bound says something may be due, and
// then only the due entries and the one after them (the new bound).
func popExpired(tx Tx, ent string, now time.Time, limit int) (popped int, active int64, err error) {
	cnt, err := readLeaseCount(tx, ent)
	if err != nil {
		return 0, 0, err
	}
	nowN := expiryNanos(now)
	if cnt.n == 0 || nowN < cnt.minExp {
		return 0, cnt.n, nil
	}
	pfx := prefix(ent)
	idx, act := tx.Bucket(iLeaseExpiry), tx.Bucket(iLeaseActive)
	type due struct{ k, subj, id []byte }
	var pop []due
	next := uint64(noExpiry)
	c := idx.Cursor()
	for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx) && len(k) >= len(pfx)+8; k, v = c.Next() {
		exp := binary.BigEndian.Uint64(k[len(pfx):])
		if exp > nowN || (limit > 0 && len(pop) == limit) {
			next = exp
			break
		}
		k = bytes.Clone(k)
		pop = append(pop, due{k: k, subj: bytes.Clone(v), id: k[len(pfx)+8:]})
	}
	for _, d := range pop {
		if err := idx.Delete(d.k); err != nil {
			return 0, 0, err
		}
		if string(act.Get(d.subj)) == string(d.id) {
			if err := act.Delete(d.subj); err != nil {
				return 0, 0, err
			}
		}
	}
	cnt.n -= int64(len(pop))
	cnt.minExp = next
	if err := writeLeaseCount(tx, ent, cnt); err != nil {
		return 0, 0, err
	}
	return len(pop), cnt.n, nil
}

// countDue counts ent's expiry entries due at t (read only).
func countDue(tx Tx, ent string, t time.Time) int {
	pfx := prefix(ent)
	end := binary.BigEndian.AppendUint64(append([]byte(nil), pfx...), expiryNanos(t))
	n := 0
	c := tx.Bucket(iLeaseExpiry).Cursor()
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx) && len(k) >= len(pfx)+8 && bytes.Compare(k[:len(pfx)+8], end) <= 0; k, _ = c.Next() {
		n++
	}
	return n
}

// countLeases makes sure the counters exist: on a store written before
// them, it rebuilds them from the leases once, in one transaction. A
// failure is left for the next lease or seat write, which rebuilds in its
// own transaction (ensureCounted).
func (db *Store) countLeases() {
	db.mu.Lock()
	defer db.mu.Unlock()
	err := db.b.Update(context.Background(), rebuildCounters)
	if err == nil {
		db.counted.Store(true)
	}
}

// ensureCounted rebuilds the counters in w if New could not.
func (w *wtx) ensureCounted() error {
	if w.db.counted.Load() {
		return nil
	}
	if err := rebuildCounters(w.Tx); err != nil {
		return fmt.Errorf("rebuild lease counters: %w", err)
	}
	w.afterCommit = append(w.afterCommit, func() { w.db.counted.Store(true) })
	return nil
}

// rebuildCounters builds lease_counts, idx_lease_expiry and seat_counts
// from idx_lease_active and idx_seat_active unless kLeaseCounted says
// they are complete.
func rebuildCounters(tx Tx) error {
	meta := tx.Bucket(bMeta)
	if meta.Get(kLeaseCounted) != nil {
		return nil
	}
	for _, b := range [][]byte{bLeaseCounts, bSeatCounts, iLeaseExpiry} {
		if err := clearBucket(tx.Bucket(b)); err != nil {
			return err
		}
	}
	active := tx.Bucket(iLeaseActive)
	type entry struct{ subj, id []byte }
	var entries []entry
	if err := active.ForEach(func(k, v []byte) error {
		entries = append(entries, entry{bytes.Clone(k), bytes.Clone(v)})
		return nil
	}); err != nil {
		return err
	}
	counts := map[string]leaseCount{}
	for _, e := range entries {
		var l catalog.Lease
		ok, err := getJSON(tx, bLeases, e.id, &l)
		if err != nil {
			return err
		}
		if !ok || l.ReleasedAt != nil {
			// A stale entry (an old store could keep one): not a seat.
			if err := active.Delete(e.subj); err != nil {
				return err
			}
			continue
		}
		if err := tx.Bucket(iLeaseExpiry).Put(expiryKey(l.EntitlementID, l.ExpiresAt, l.LeaseID), e.subj); err != nil {
			return err
		}
		c, ok := counts[l.EntitlementID]
		if !ok {
			c.minExp = noExpiry
		}
		c.n++
		c.minExp = min(c.minExp, expiryNanos(l.ExpiresAt))
		counts[l.EntitlementID] = c
	}
	seats := map[string]int64{}
	if err := tx.Bucket(iSeatActive).ForEach(func(k, _ []byte) error {
		if i := bytes.IndexByte(k, 0); i > 0 {
			seats[string(k[:i])]++
		}
		return nil
	}); err != nil {
		return err
	}
	for ent, c := range counts {
		if err := writeLeaseCount(tx, ent, c); err != nil {
			return err
		}
	}
	for ent, n := range seats {
		if err := addCount(tx.Bucket(bSeatCounts), ent, n); err != nil {
			return err
		}
	}
	return meta.Put(kLeaseCounted, []byte("1"))
}

// clearBucket deletes every key of b.
func clearBucket(b Bucket) error {
	var keys [][]byte
	if err := b.ForEach(func(k, _ []byte) error { keys = append(keys, bytes.Clone(k)); return nil }); err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// sweepBatch bounds the expired leases one sweep transaction removes.
const sweepBatch = 1000

// SweepExpiredLeases removes the leases expired at now from every
// entitlement's active set (their records stay, as history), at most
// sweepBatch per write transaction so a sweep never holds the writer
// long, and at most limit in all (≤ 0: no bound). It returns how many it
// removed. Admission pops an entitlement's expired leases itself; the
// sweep keeps the index of entitlements nobody leases from small.
func (db *Store) SweepExpiredLeases(ctx context.Context, now time.Time, limit int) (int, error) {
	total := 0
	after := []byte{}
	for {
		if limit > 0 && total >= limit {
			return total, nil
		}
		budget := sweepBatch
		if limit > 0 {
			budget = min(budget, limit-total)
		}
		done, n := false, 0
		err := db.update(ctx, func(w *wtx) error {
			if err := w.ensureCounted(); err != nil {
				return err
			}
			n, done = 0, false
			var ents []string
			c := w.Bucket(bLeaseCounts).Cursor()
			k, _ := c.Seek(after)
			if len(after) > 0 && bytes.Equal(k, after) {
				k, _ = c.Next()
			}
			for ; k != nil && len(ents) < budget; k, _ = c.Next() {
				ents = append(ents, string(k))
			}
			if len(ents) < budget {
				done = true
			}
			for i, ent := range ents {
				m, _, err := popExpired(w.Tx, ent, now, budget-n)
				if err != nil {
					return err
				}
				n += m
				if n >= budget {
					// Resume at this entitlement: it may have more due.
					ents, done = ents[:i], false
					break
				}
			}
			if len(ents) > 0 {
				after = []byte(ents[len(ents)-1])
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sweep expired leases: %w", err)
		}
		total += n
		if done {
			return total, nil
		}
	}
}
