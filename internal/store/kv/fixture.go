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

// LoadReleases stores releases, artifacts and release artifacts as a
// fixture, for benchmarks: objects and their indexes as CreateRelease,
// CreateArtifact and AttachArtifact write them, but without audit events
// and without their checks (the caller makes ids and product, channel,
// version and target unique; the products must exist). Never for
// production data.
func (db *Store) LoadReleases(ctx context.Context, rels []*catalog.Release, arts []*catalog.Artifact, ras []*catalog.ReleaseArtifact) error {
	type kvs struct{ k, v [][]byte }
	for len(rels) > 0 || len(arts) > 0 || len(ras) > 0 {
		nr, na, nra := min(len(rels), loadBatch), min(len(arts), loadBatch), min(len(ras), loadBatch)
		cr, ca, cra := rels[:nr], arts[:na], ras[:nra]
		rels, arts, ras = rels[nr:], arts[na:], ras[nra:]
		err := db.update(ctx, func(w *wtx) error {
			writes := map[string]*kvs{}
			add := func(bucket []byte, k []byte, v any) error {
				var raw []byte
				switch v := v.(type) {
				case string:
					raw = []byte(v)
				default:
					var err error
					if raw, err = json.Marshal(v); err != nil {
						return fmt.Errorf("encode %s: %w", bucket, err)
					}
				}
				x := writes[string(bucket)]
				if x == nil {
					x = &kvs{}
					writes[string(bucket)] = x
				}
				x.k, x.v = append(x.k, k), append(x.v, raw)
				return nil
			}
			for _, r := range cr {
				if err := exists(w.Tx, bProducts, "product", r.ProductID); err != nil {
					return err
				}
				if r.Status == "" {
					r.Status = catalog.ReleaseActive
				}
				r.PublishedAt = orNow(r.PublishedAt, w.now)
				for _, err := range []error{
					add(bReleases, []byte(r.ReleaseID), r),
					add(iReleasePCV, key(r.ProductID, r.Channel, r.Version), r.ReleaseID),
					add(iReleaseProduct, key(r.ProductID, r.ReleaseID), ""),
				} {
					if err != nil {
						return err
					}
				}
			}
			for _, a := range ca {
				a.CreatedAt = orNow(a.CreatedAt, w.now)
				if err := add(bArtifacts, []byte(a.ArtifactID), a); err != nil {
					return err
				}
			}
			for _, ra := range cra {
				for _, err := range []error{
					add(bRelArts, []byte(ra.ReleaseArtifactID), ra),
					add(iRelArtTarget, key(ra.ReleaseID, ra.Platform, ra.Arch, ra.InstallerType), ra.ReleaseArtifactID),
					add(iRelArtRelease, key(ra.ReleaseID, ra.ReleaseArtifactID), ""),
				} {
					if err != nil {
						return err
					}
				}
			}
			for bucket, x := range writes {
				if err := putMany(w.Bucket([]byte(bucket)), x.k, x.v); err != nil {
					return err
				}
			}
			// The cached catalog does not know these: read it again.
			w.afterCommit = append(w.afterCommit, db.invalidate)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
