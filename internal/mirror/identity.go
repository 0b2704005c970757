package mirror

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

var keyMirrorID = []byte("mirror_id")

// ErrOtherMirror means the state already belongs to another mirror id:
// its leases and audit chain were written as that mirror.
var ErrOtherMirror = errors.New("state belongs to another mirror")

// SetMirrorID remembers the mirror's id (from the control plane's record).
// It refuses to replace a different id already stored, since the leases and
// the audit chain in this file are signed and recorded as that mirror.
func (s *State) SetMirrorID(id string) error {
	if !catalog.ValidID(catalog.PrefixMirror, id) {
		return fmt.Errorf("set mirror id: %q is not a mirror id", id)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		if cur := meta.Get(keyMirrorID); cur != nil {
			if string(cur) == id {
				return nil
			}
			return fmt.Errorf("%w: state is mirror %s, not %s", ErrOtherMirror, cur, id)
		}
		return meta.Put(keyMirrorID, []byte(id))
	})
}

// MirrorID returns the remembered mirror id, or "" when none is known.
func (s *State) MirrorID() (string, error) {
	var id string
	err := s.db.View(func(tx *bbolt.Tx) error {
		id = string(tx.Bucket(bktMeta).Get(keyMirrorID))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read mirror id: %w", err)
	}
	return id, nil
}

// CommitFunc runs inside a snapshot commit's transaction, so what it
// writes (an audit event) commits with the snapshot or not at all.
type CommitFunc func(tx *bbolt.Tx) error

// CommitWith is Commit with also run in the same transaction.
func (s *State) CommitWith(env []byte, m *snapshot.Manifest, hash string, channels []string, now time.Time, also CommitFunc) error {
	return s.commit(env, m, hash, channels, now, also)
}

// Manifest returns the manifest of the snapshot being served, or nil.
func (s *Server) Manifest() *snapshot.Manifest {
	v := s.cur.Load()
	if v == nil || v.held == nil {
		return nil
	}
	return v.held.Manifest
}
