package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
)

// DefaultAuditRetention is how long the mirror keeps an audit event the
// control plane has acknowledged (docs/RELIABILITY.md).
const DefaultAuditRetention = 30 * 24 * time.Hour

// auditFillPercent is the audit bucket's fill: appends only.
const auditFillPercent = 0.95

// pruneBatch bounds the events one prune transaction deletes.
const pruneBatch = 10_000

// bucketAuditMeta holds the audit chain's acknowledgement and the anchor
// left by pruning.
var (
	bucketAuditMeta = []byte("mirror_audit_meta")
	keyAuditAcked   = []byte("acked")       // seq (8, BE): the control plane holds every event up to it
	keyAnchorSeq    = []byte("anchor_seq")  // seq (8, BE) of the last pruned event
	keyAnchorHash   = []byte("anchor_hash") // its hash: the first kept event's prev_hash
)

// AuditState is where the mirror's audit chain stands.
type AuditState struct {
	// Head is the last event (seq 0 when the chain is empty).
	Head catalog.AuditHead
	// Acked is the sequence up to which the control plane acknowledged
	// the chain (0: nothing yet).
	Acked int64
	// Anchor is the last pruned event; the stored chain starts after it.
	Anchor catalog.AuditHead
}

// AuditState reads the chain's head, acknowledgement and anchor.
func (s *State) AuditState(ctx context.Context) (AuditState, error) {
	if err := ctx.Err(); err != nil {
		return AuditState{}, err
	}
	var st AuditState
	err := s.db.View(func(tx *bolt.Tx) error {
		st.Anchor = auditAnchor(tx)
		st.Head = st.Anchor
		if m := tx.Bucket(bucketAuditMeta); m != nil {
			st.Acked = getSeq(m.Get(keyAuditAcked))
		}
		if b := tx.Bucket(bucketAudit); b != nil {
			if _, v := b.Cursor().Last(); v != nil {
				if err := json.Unmarshal(v, &st.Head); err != nil {
					return fmt.Errorf("decode audit head: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return AuditState{}, fmt.Errorf("audit state: %w", err)
	}
	return st, nil
}

// AckAudit records that the control plane holds every event of the chain
// up to seq (its answer to an upload, or its audit head). The
// acknowledgement only moves forward, and never past the chain's head.
func (s *State) AckAudit(ctx context.Context, seq int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(bucketAuditMeta)
		if err != nil {
			return err
		}
		head := auditAnchor(tx).Seq
		if b := tx.Bucket(bucketAudit); b != nil {
			if k, _ := b.Cursor().Last(); k != nil {
				head = int64(binary.BigEndian.Uint64(k))
			}
		}
		seq = min(seq, head)
		if seq <= getSeq(m.Get(keyAuditAcked)) {
			return nil
		}
		return m.Put(keyAuditAcked, seqKey(seq))
	})
	if err != nil {
		return fmt.Errorf("ack audit: %w", err)
	}
	return nil
}

// PruneAudit deletes the oldest events of the chain that the control
// plane has acknowledged (AckAudit) and that were created before before.
// It never deletes an unacknowledged event, nor the head (the next event
// links to it). The last deleted event becomes the anchor the chain is
// verified from. bbolt reuses the freed pages, so a mirror whose chain
// is acknowledged keeps a file bounded by what the retention holds. It
// returns how many events it deleted.
func (s *State) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			b, m := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditMeta)
			if b == nil || m == nil {
				return nil
			}
			acked := getSeq(m.Get(keyAuditAcked))
			c := b.Cursor()
			lastK, _ := c.Last()
			var (
				last catalog.AuditHead
				gone [][]byte
			)
			for k, v := c.First(); k != nil && n < pruneBatch; k, v = c.Next() {
				seq := int64(binary.BigEndian.Uint64(k))
				if seq > acked || string(k) == string(lastK) {
					break
				}
				var ev struct {
					Seq       int64     `json:"seq"`
					Hash      string    `json:"hash"`
					CreatedAt time.Time `json:"created_at"`
				}
				if err := json.Unmarshal(v, &ev); err != nil {
					return fmt.Errorf("decode audit event %d: %w", seq, err)
				}
				if !ev.CreatedAt.Before(before) {
					break
				}
				gone = append(gone, append([]byte(nil), k...))
				last = catalog.AuditHead{Seq: ev.Seq, Hash: ev.Hash}
				n++
			}
			if n == 0 {
				return nil
			}
			// Deleted after the walk: deleting under a moving cursor
			// can skip keys.
			for _, k := range gone {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			if err := m.Put(keyAnchorSeq, seqKey(last.Seq)); err != nil {
				return err
			}
			return m.Put(keyAnchorHash, []byte(last.Hash))
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("prune audit: %w", err)
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}

// auditAnchor is the last pruned event ({0, ""} when nothing was pruned).
func auditAnchor(tx *bolt.Tx) catalog.AuditHead {
	m := tx.Bucket(bucketAuditMeta)
	if m == nil {
		return catalog.AuditHead{}
	}
	return catalog.AuditHead{Seq: getSeq(m.Get(keyAnchorSeq)), Hash: string(m.Get(keyAnchorHash))}
}

// auditVerifier is a verifier that starts where the stored chain starts:
// after the anchor.
func auditVerifier(tx *bolt.Tx) *audit.Verifier {
	return audit.ResumeAt(auditAnchor(tx))
}

func getSeq(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}
