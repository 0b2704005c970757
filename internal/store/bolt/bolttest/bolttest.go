// Package bolttest edits a control plane bbolt file behind the store's
// back, for tests that must see what tampering does (audit verify). It
// bypasses every constraint and the audit chain; production code never
// imports it.
package bolttest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store/bolt"
)

// RawUpdate opens the file at path (which no one else may hold) and runs
// fn in one read-write transaction.
func RawUpdate(path string, fn func(tx *bbolt.Tx) error) error {
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	if err := bdb.Update(fn); err != nil {
		bdb.Close()
		return err
	}
	return bdb.Close()
}

// TamperAuditEvent rewrites the stored audit event seq with mutate
// applied, without resealing the chain.
func TamperAuditEvent(path string, seq int64, mutate func(*catalog.AuditEvent)) error {
	key := binary.BigEndian.AppendUint64(nil, uint64(seq))
	return RawUpdate(path, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bolt.AuditBucket))
		v := b.Get(key)
		if v == nil {
			return catalog.NotFound("audit event", strconv.FormatInt(seq, 10))
		}
		var ev catalog.AuditEvent
		if err := json.Unmarshal(v, &ev); err != nil {
			return fmt.Errorf("decode audit event %d: %w", seq, err)
		}
		mutate(&ev)
		out, err := json.Marshal(&ev)
		if err != nil {
			return err
		}
		return b.Put(key, out)
	})
}
