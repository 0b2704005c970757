package state

import (
	"encoding/json"
	"time"

	"go.etcd.io/bbolt"
)

var keyCacheUsage = []byte("cache_usage")

// CacheUsage is the stored summary of the blob cache that /v1/status
// answers from: recomputed by the syncer after each commit and each GC
// (and when the daemon opens), never per request.
type CacheUsage struct {
	Blobs       int       `json:"blobs"`
	Bytes       int64     `json:"bytes"`
	Missing     int       `json:"missing"` // needed by the held snapshot, absent from the cache
	Quarantined int       `json:"quarantined"`
	At          time.Time `json:"at"` // when it was computed
}

// SetCacheUsage stores u.
func (s *State) SetCacheUsage(u CacheUsage) error {
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Put(keyCacheUsage, raw) })
}

// CacheUsage returns the stored summary (ok false when none was stored).
func (s *State) CacheUsage() (u CacheUsage, ok bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bktMeta).Get(keyCacheUsage)
		if raw == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(raw, &u)
	})
	return u, ok, err
}
