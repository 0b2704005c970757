package state

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
)

var keyAuditAck = []byte("audit_ack")

// AuditAck is the head of the mirror's audit chain the vendor
// acknowledged (carried back in a bundle); {0, ""} when none is known.
// A return file carries only the events after it.
func (s *State) AuditAck() (catalog.AuditHead, error) {
	var h catalog.AuditHead
	err := s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bktMeta).Get(keyAuditAck); b != nil {
			return json.Unmarshal(b, &h)
		}
		return nil
	})
	if err != nil {
		return h, fmt.Errorf("read audit acknowledgement: %w", err)
	}
	return h, nil
}

// SetAuditAck records the vendor's acknowledged head. It only moves up:
// an older acknowledgement (a bundle imported late) changes nothing.
func (s *State) SetAuditAck(h catalog.AuditHead) error {
	if h.Seq < 0 {
		return fmt.Errorf("set audit acknowledgement: negative sequence %d", h.Seq)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		var cur catalog.AuditHead
		if b := meta.Get(keyAuditAck); b != nil {
			if err := json.Unmarshal(b, &cur); err != nil {
				return fmt.Errorf("set audit acknowledgement: %w", err)
			}
		}
		if h.Seq <= cur.Seq {
			return nil
		}
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		return meta.Put(keyAuditAck, b)
	})
}

// AuditHashAt is the hash of the event at seq in the mirror's audit
// chain; ok is false when the chain is shorter.
func (s *State) AuditHashAt(seq int64) (hash string, ok bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil || seq <= 0 {
			return nil
		}
		raw := b.Get(seqKey(seq))
		if raw == nil {
			return nil
		}
		var ev struct {
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			return err
		}
		hash, ok = ev.Hash, true
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("read audit event %d: %w", seq, err)
	}
	return hash, ok, nil
}
