package sync

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/tuf"
)

// Acknowledged is what a bundle's acknowledgement moved on the mirror:
// the audit head the vendor accepted (the next return file's audit part
// starts after it) and the fleet cursor of this mirror's event store.
type Acknowledged struct {
	AuditSeq     int64  `json:"audit_seq"`
	FleetThrough uint64 `json:"fleet_through"`
	// Ignored says why a part was not recorded (a chain or store the
	// vendor knows that is not this mirror's), empty when all was.
	Ignored []string `json:"ignored,omitempty"`
}

// verifyAckWith checks an acknowledgement with keys (by key id) and
// threshold, for tenantID and this mirror.
func (s *Syncer) verifyAckWith(env []byte, keys map[string]ed25519.PublicKey, threshold int, tenantID string) (*returnfile.Ack, error) {
	id, err := s.MirrorID()
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("bundle acknowledgement: %w", ErrNoMirrorID)
	}
	return returnfile.VerifyAck(env, returnfile.AckTrust{Keys: keys, Threshold: threshold, TenantID: tenantID, MirrorID: id})
}

// timestampKeys are the timestamp role's ed25519 keys (by TUF key id) and
// threshold in a trusted root: what signs a trust: tuf bundle's
// acknowledgement.
func timestampKeys(root *tuf.Root) (map[string]ed25519.PublicKey, int, error) {
	role, ok := root.Signed.Roles[metadata.TIMESTAMP]
	if !ok || role == nil {
		return nil, 0, errors.New("the trusted root has no timestamp role")
	}
	keys := map[string]ed25519.PublicKey{}
	for _, id := range role.KeyIDs {
		k, ok := root.Signed.Keys[id]
		if !ok || k == nil {
			continue
		}
		pub, err := k.ToPublicKey()
		if err != nil {
			continue
		}
		if ed, ok := pub.(ed25519.PublicKey); ok {
			keys[id] = ed
		}
	}
	return keys, role.Threshold, nil
}

// recordAck records a verified acknowledgement: the audit head, if it is
// a head of this mirror's own chain, and the fleet cursor of this
// mirror's event store (through FleetAck when the daemon runs, else on
// the store). Both only move up.
func (s *Syncer) recordAck(ctx context.Context, ack *returnfile.Ack) (*Acknowledged, error) {
	out := &Acknowledged{}
	if h := ack.AuditHead; h.Seq > 0 {
		hash, ok, err := s.st.AuditHashAt(h.Seq)
		switch {
		case err != nil:
			return nil, err
		case !ok || hash != h.Hash:
			// The vendor accepted a chain this one does not extend: a
			// cloned or restored data dir. Export everything; the
			// vendor will name the fork.
			out.Ignored = append(out.Ignored, fmt.Sprintf("audit head %d is not this mirror's chain", h.Seq))
			s.cfg.Logger.Warn("bundle acknowledges an audit head that is not this mirror's chain (cloned or restored data dir?)", "seq", h.Seq)
		default:
			if err := s.st.SetAuditAck(catalog.AuditHead{Seq: h.Seq, Hash: h.Hash}); err != nil {
				return nil, err
			}
			out.AuditSeq = h.Seq
			// As after an online upload: acknowledged events older than
			// audit_retention may go, so an air-gapped mirror.db is
			// bounded too.
			s.ackAudit(ctx, h.Seq)
		}
	}
	fs, err := s.st.FleetStore()
	if err != nil {
		return nil, err
	}
	m, err := fs.Meta(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range ack.Fleet {
		if c.StoreID != m.StoreID {
			continue
		}
		if c.Through > m.LastSeq {
			out.Ignored = append(out.Ignored, fmt.Sprintf("fleet events through %d, this store has %d", c.Through, m.LastSeq))
			continue
		}
		ackFn := fs.Ack
		if s.cfg.FleetAck != nil {
			ackFn = s.cfg.FleetAck
		}
		if err := ackFn(ctx, c.Through); err != nil {
			return nil, fmt.Errorf("acknowledge fleet events: %w", err)
		}
		out.FleetThrough = c.Through
	}
	return out, nil
}
