package kv

import (
	"context"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// loadBatch is the leases LoadLeases writes per transaction.
const loadBatch = 5000

// LoadLeases stores leases as a fixture, for benchmarks: each one joins
// its entitlement's active set (subject index, expiry index, counter)
// exactly as an issuance would, but without admission (no seat limit)
// and without audit events. The entitlement must exist; a subject that
// already holds a lease is refused (ECONFLICT). Never for production
// data: the audit log would not record these leases.
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
			for _, l := range chunk {
				tid, ok := tenants[l.EntitlementID]
				if !ok {
					var e catalog.Entitlement
					if err := mustGet(w.Tx, bEntitlements, "entitlement", l.EntitlementID, &e); err != nil {
						return err
					}
					tid, tenants[l.EntitlementID] = e.TenantID, e.TenantID
				}
				if err := checkID("lease_id", l.LeaseID); err != nil {
					return err
				}
				if err := checkSubject(l.SubjectType, l.SubjectID); err != nil {
					return err
				}
				subj := license.SubjectKey(l.EntitlementID, l.SubjectType, l.SubjectID)
				if w.Bucket(iLeaseActive).Get(subj) != nil {
					return catalog.Errorf(catalog.ECONFLICT, "%s %q already holds a lease", l.SubjectType, l.SubjectID)
				}
				l.TenantID = tid
				if err := w.insert(bLeases, "lease", l.LeaseID, l); err != nil {
					return err
				}
				if err := putIdx(w.Tx, iLeaseEnt, key(l.EntitlementID, l.LeaseID), ""); err != nil {
					return err
				}
				if err := enterActive(w.Tx, l, subj); err != nil {
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
