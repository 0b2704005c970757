package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/outpost/outpost/internal/store"
)

// Kinds of value the store keeps sealed with the data-encryption key, as
// given to a ResealFunc with the id the value is bound to.
const (
	SealedMirrorCredential = "mirror_credential" // id: the mirror id
	SealedIdempotency      = "idempotency"       // id: the idempotency key
)

// ResealFunc returns a sealed value of kind bound to id re-sealed with
// the new key (or sealed itself when it needs no change).
type ResealFunc func(kind, id string, sealed []byte) ([]byte, error)

// Reseal rewrites, in one read-write transaction, every value the store
// keeps sealed with the data-encryption key (mirror credentials,
// remembered answers) through reseal; then more, in the same
// transaction, for values other packages keep on the same backend
// (webhook secrets, the shared keys), returning how many it rewrote;
// then appends the audit event eventType with payload(total rewritten).
// Any error rolls the whole transaction back: the stored values are all
// under the old key or all under the new one.
func (db *Store) Reseal(ctx context.Context, reseal ResealFunc, more func(Tx) (int, error), eventType string, payload func(n int) any) error {
	return db.update(ctx, func(w *wtx) error {
		n := 0
		var mirrors [][]byte
		if err := w.Bucket(bMirrors).ForEach(func(k, _ []byte) error { mirrors = append(mirrors, bytes.Clone(k)); return nil }); err != nil {
			return err
		}
		for _, k := range mirrors {
			var r mirrorRecord
			if _, err := getJSON(w, bMirrors, k, &r); err != nil {
				return err
			}
			if len(r.StoredCredentialEnc) == 0 {
				continue
			}
			out, err := reseal(SealedMirrorCredential, r.MirrorID, r.StoredCredentialEnc)
			if err != nil {
				return fmt.Errorf("mirror %s credential: %w", r.MirrorID, err)
			}
			if bytes.Equal(out, r.StoredCredentialEnc) {
				continue
			}
			r.StoredCredentialEnc = out
			if err := w.put(bMirrors, k, &r); err != nil {
				return err
			}
			n++
		}
		var keys [][]byte
		if err := w.Bucket(bIdempotency).ForEach(func(k, _ []byte) error { keys = append(keys, bytes.Clone(k)); return nil }); err != nil {
			return err
		}
		for _, k := range keys {
			var r store.IdempotencyRecord
			if err := json.Unmarshal(w.Bucket(bIdempotency).Get(k), &r); err != nil {
				return fmt.Errorf("decode idempotency record: %w", err)
			}
			if len(r.Body) == 0 {
				continue // a reservation: no answer yet
			}
			out, err := reseal(SealedIdempotency, string(k), r.Body)
			if err != nil {
				return fmt.Errorf("idempotency record: %w", err)
			}
			if bytes.Equal(out, r.Body) {
				continue
			}
			r.Body = out
			if err := w.put(bIdempotency, k, &r); err != nil {
				return err
			}
			n++
		}
		if more != nil {
			m, err := more(w.Tx)
			if err != nil {
				return err
			}
			n += m
		}
		return w.event("", eventType, payload(n))
	})
}

// UpdateAudited runs fn in one read-write transaction that also appends
// the audit event eventType with payload: a write to data outside the
// catalog (the shared keys) recorded with it, or not at all.
func (db *Store) UpdateAudited(ctx context.Context, eventType string, payload any, fn func(Tx) error) error {
	return db.update(ctx, func(w *wtx) error {
		if err := fn(w.Tx); err != nil {
			return err
		}
		return w.event("", eventType, payload)
	})
}
