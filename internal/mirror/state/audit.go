package state

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// bucketAudit is the mirror's audit chain: seq (8, BE) -> event JSON.
// Everything that records a mirror event (the ledger, a snapshot commit)
// appends to it in the transaction of the change it records.
var bucketAudit = []byte("mirror_audit")

// AppendAudit seals ev as the successor of the last event in the mirror's
// audit log and appends it in its own transaction. It fills in Seq,
// PrevHash, Hash.
func (s *State) AppendAudit(ctx context.Context, ev *catalog.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return appendAudit(tx, ev) })
}

// appendAudit appends ev in tx, so the event commits with the change it
// records.
func appendAudit(tx *bolt.Tx, ev *catalog.AuditEvent) error {
	b, err := tx.CreateBucketIfNotExists(bucketAudit)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	var prev *catalog.AuditEvent
	if k, v := b.Cursor().Last(); k != nil {
		var head struct {
			Seq  int64  `json:"seq"`
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal(v, &head); err != nil {
			return fmt.Errorf("append audit: decode head: %w", err)
		}
		prev = &catalog.AuditEvent{Seq: head.Seq, Hash: head.Hash}
	} else if a := auditAnchor(tx); a.Seq > 0 {
		prev = &catalog.AuditEvent{Seq: a.Seq, Hash: a.Hash} // everything pruned (PruneAudit keeps the head, so only by hand)
	}
	audit.Seal(prev, ev)
	v, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	// Keys only ever grow: fill leaf pages instead of splitting them in
	// half (bbolt's default 0.5 left every page of the chain half empty,
	// about 2 KiB per lease renewal).
	b.FillPercent = auditFillPercent
	return b.Put(seqKey(ev.Seq), v)
}

// AuditHead is the hash of the last event in the mirror's audit log, or
// "" when it is empty.
func (s *State) AuditHead() (string, error) {
	var head string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		_, v := b.Cursor().Last()
		if v == nil {
			return nil
		}
		var ev struct {
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal(v, &ev); err != nil {
			return fmt.Errorf("decode audit head: %w", err)
		}
		head = ev.Hash
		return nil
	})
	return head, err
}

// ExportAudit writes the mirror's audit chain as JSON lines, one event a
// line in chain order, then the signed trailer. It verifies the chain as
// it goes and refuses to export a broken one. After PruneAudit the
// export starts after the pruned prefix (AuditState.Anchor).
func (l *Ledger) ExportAudit(ctx context.Context, w io.Writer) error {
	return l.exportAudit(ctx, w, 0, true)
}

// ExportAuditAfter is ExportAudit with only the events after sequence
// after (the head the control plane acknowledged): the whole chain is
// still verified, and the trailer still signs its head and length. It
// refuses (ErrAuditPruned) when events after `after` were pruned: the
// control plane lost events it had acknowledged.
func (l *Ledger) ExportAuditAfter(ctx context.Context, w io.Writer, after int64) error {
	return l.exportAudit(ctx, w, after, false)
}

// ErrAuditPruned means an export was asked to start before what the
// mirror still holds.
var ErrAuditPruned = errors.New("audit events were pruned after the control plane acknowledged them")

func (l *Ledger) exportAudit(ctx context.Context, w io.Writer, after int64, fromAnchor bool) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var v *audit.Verifier
	err := l.db.View(func(tx *bolt.Tx) error {
		if a := auditAnchor(tx); !fromAnchor && after < a.Seq {
			return fmt.Errorf("%w: asked for the events after %d, mirror.db holds them from %d on (audit_retention); the control plane's audit log was restored to before its acknowledgement, and the missing events are in its backup or the mirror's earlier exports",
				ErrAuditPruned, after, a.Seq+1)
		}
		v = auditVerifier(tx)
		return walkAudit(ctx, tx, v, func(raw []byte) error {
			if v.Count() <= after {
				return nil
			}
			if _, err := bw.Write(raw); err != nil {
				return err
			}
			return bw.WriteByte('\n')
		})
	})
	if err != nil {
		return fmt.Errorf("export audit: %w", err)
	}
	head := ""
	if h := v.Head(); h != nil {
		head = h.Hash
	}
	tr := license.AuditTrailer{MirrorID: l.mirrorID, HeadHash: head, Count: v.Count()}
	tr.Sig = ed25519.Sign(l.key, license.AuditSignedBytes(tr.MirrorID, tr.HeadHash, tr.Count))
	b, err := json.Marshal(&tr)
	if err != nil {
		return fmt.Errorf("export audit: %w", err)
	}
	if _, err := bw.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("export audit: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export audit: %w", err)
	}
	return nil
}

// VerifyAudit walks the mirror's audit chain and names the first broken
// link (an *audit.BrokenLinkError in the chain), for `mirror audit
// verify`. It returns the number of events.
func (s *State) VerifyAudit(ctx context.Context) (int64, error) {
	v := &audit.Verifier{}
	err := s.db.View(func(tx *bolt.Tx) error {
		v = auditVerifier(tx)
		return walkAudit(ctx, tx, v, nil)
	})
	if err != nil {
		return v.Count(), fmt.Errorf("verify audit (%d events good): %w", v.Count(), err)
	}
	return v.Count(), nil
}

// WalkAudit calls fn with every event of the mirror's audit log in chain
// order, verifying the chain as it goes.
func (s *State) WalkAudit(ctx context.Context, fn func(ev *catalog.AuditEvent) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return walkAudit(ctx, tx, auditVerifier(tx), func(raw []byte) error {
			var ev catalog.AuditEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return err
			}
			return fn(&ev)
		})
	})
}

// walkAudit verifies every stored event in order with v, calling fn with
// each event's stored bytes.
func walkAudit(ctx context.Context, tx *bolt.Tx, v *audit.Verifier, fn func([]byte) error) error {
	b := tx.Bucket(bucketAudit)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var ev catalog.AuditEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return &audit.BrokenLinkError{Seq: v.Count() + 1, Reason: "undecodable event: " + err.Error()}
		}
		if !bytes.Equal(k, seqKey(ev.Seq)) {
			return &audit.BrokenLinkError{Seq: ev.Seq, EventID: ev.EventID, Reason: "stored under another sequence"}
		}
		if err := v.Next(&ev); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(raw); err != nil {
				return err
			}
		}
	}
	return nil
}
