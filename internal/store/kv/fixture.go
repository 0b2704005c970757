package kv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// loadBatch is the leases LoadLeases writes per transaction.
const loadBatch = 10000

// BulkPutter is an optional Bucket fast path: many puts in one call (one
// round trip on a backend with a round trip per Put).
type BulkPutter interface {
	PutMany(keys, values [][]byte) error
}

// putMany writes keys[i] = values[i] in b.
func putMany(b Bucket, keys, values [][]byte) error {
	if bp, ok := b.(BulkPutter); ok {
		return bp.PutMany(keys, values)
	}
	for i := range keys {
		if err := b.Put(keys[i], values[i]); err != nil {
			return err
		}
	}
	return nil
}

// LoadLeases stores leases as a fixture, for benchmarks: each one joins
// its entitlement's active set (subject index, expiry index, counter)
// exactly as an issuance would, but without admission (no seat limit),
// without audit events and without checking that lease ids and subjects
// are new (the caller makes them unique). The entitlements must exist.
// Never for production data: the audit log would not record these
// leases.
func (db *Store) LoadLeases(ctx context.Context, leases []*catalog.Lease) error {
	for len(leases) > 0 {
		n := min(len(leases), loadBatch)
		chunk := leases[:n]
		leases = leases[n:]
		err := db.update(ctx, func(w *wtx) error {
			if err := w.ensureCounted(); err != nil {
				return err
			}
			tenants := map[string]string{}
			type kvs struct{ k, v [][]byte }
			writes := map[string]*kvs{}
			add := func(bucket []byte, k, v []byte) {
				x := writes[string(bucket)]
				if x == nil {
					x = &kvs{}
					writes[string(bucket)] = x
				}
				x.k, x.v = append(x.k, k), append(x.v, v)
			}
			counts := map[string]leaseCount{}
			for _, l := range chunk {
				tid, ok := tenants[l.EntitlementID]
				if !ok {
					var e catalog.Entitlement
					if err := mustGet(w.Tx, bEntitlements, "entitlement", l.EntitlementID, &e); err != nil {
						return err
					}
					tid, tenants[l.EntitlementID] = e.TenantID, e.TenantID
					c, err := readLeaseCount(w.Tx, l.EntitlementID)
					if err != nil {
						return err
					}
					counts[l.EntitlementID] = c
				}
				if err := checkID("lease_id", l.LeaseID); err != nil {
					return err
				}
				if err := checkSubject(l.SubjectType, l.SubjectID); err != nil {
					return err
				}
				l.TenantID = tid
				raw, err := json.Marshal(l)
				if err != nil {
					return fmt.Errorf("encode lease: %w", err)
				}
				subj := license.SubjectKey(l.EntitlementID, l.SubjectType, l.SubjectID)
				add(bLeases, []byte(l.LeaseID), raw)
				add(iLeaseEnt, key(l.EntitlementID, l.LeaseID), []byte{})
				add(iLeaseActive, subj, []byte(l.LeaseID))
				add(iLeaseExpiry, expiryKey(l.EntitlementID, l.ExpiresAt, l.LeaseID), subj)
				c := counts[l.EntitlementID]
				c.n++
				c.minExp = min(c.minExp, expiryNanos(l.ExpiresAt))
				counts[l.EntitlementID] = c
			}
			for bucket, x := range writes {
				if err := putMany(w.Bucket([]byte(bucket)), x.k, x.v); err != nil {
					return err
				}
			}
			for ent, c := range counts {
				if err := writeLeaseCount(w.Tx, ent, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
