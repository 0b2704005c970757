package state

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
)

var keyMirrorID = []byte("mirror_id")

// ErrNoMirrorID means the mirror does not know its own id yet.
var ErrNoMirrorID = errors.New("mirror id unknown: sync once from the control plane, or set mirror_id in the config (mirror init --mirror-id)")

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
