package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/kvstore"
)

// Secrets is the Sealer of the data-encryption key (nil without one).
func (a *App) Secrets() *Sealer { return a.secrets }

// resealer is a store that re-seals its sealed values in one
// transaction (store/kv, under both bbolt and PostgreSQL).
type resealer interface {
	Reseal(ctx context.Context, reseal kv.ResealFunc, more func(kv.Tx) (int, error), eventType string, payload func(int) any) error
}

// EventDataKeyRotated is the audit event of a data-encryption key
// rotation (its payload: the new key's id and how many values were
// re-sealed, never a key).
const EventDataKeyRotated = "keys.data_key_rotated"

// KeyID names a key without revealing it: the first 8 bytes of a
// domain-separated sha256, in hex.
func KeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("outpost-key-id\x00"), key...))
	return hex.EncodeToString(h[:8])
}

// ResealSecrets re-seals, in one transaction of st, every value sealed
// with the data-encryption key — mirror credentials, remembered answers,
// webhook secrets — from whichever key of from opens it to the sealing
// key of to; extra runs in the same transaction (the shared keys'
// document on PostgreSQL), and the transaction appends
// EventDataKeyRotated. A value no key of from opens fails the whole
// transaction (nothing changes), except remembered answers written in
// plain JSON before answers were sealed, which are left as they are. It
// returns how many values it re-sealed.
func ResealSecrets(ctx context.Context, st any, from, to *Sealer, extra func(kv.Tx) error) (int, error) {
	rs, ok := st.(resealer)
	if !ok {
		return 0, errors.New("this store cannot re-seal its secrets")
	}
	reseal := func(ad string, sealed []byte, plainOK bool) ([]byte, error) {
		pt, err := from.Open(ad, sealed)
		if err != nil {
			if plainOK && json.Valid(sealed) {
				return sealed, nil
			}
			return nil, err
		}
		if _, err := to.Open(ad, sealed); err == nil {
			return sealed, nil // already under the new key (a resumed rotation)
		}
		return to.Seal(ad, pt)
	}
	n := 0
	err := rs.Reseal(ctx, func(kind, id string, sealed []byte) ([]byte, error) {
		switch kind {
		case kv.SealedMirrorCredential:
			return reseal(id, sealed, false)
		case kv.SealedIdempotency:
			return reseal(idempotencyAD(id), sealed, true)
		}
		return nil, fmt.Errorf("unknown sealed value kind %q", kind)
	}, func(tx kv.Tx) (int, error) {
		m, err := kvstore.RewriteSubscriptionsTx(tx, func(sub *webhook.Subscription) (bool, error) {
			rest, ok := strings.CutPrefix(sub.Secret, sealedPrefix)
			if !ok {
				return false, nil // stored before secrets were sealed
			}
			raw, err := base64.RawStdEncoding.DecodeString(rest)
			if err != nil {
				return false, fmt.Errorf("secret: %w", err)
			}
			out, err := reseal(secretAD(sub.ID), raw, false)
			if err != nil {
				return false, fmt.Errorf("secret: %w", err)
			}
			enc := sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
			changed := enc != sub.Secret
			sub.Secret = enc
			return changed, nil
		})
		if err != nil {
			return 0, err
		}
		if extra != nil {
			if err := extra(tx); err != nil {
				return 0, err
			}
		}
		return m, nil
	}, EventDataKeyRotated, func(total int) any {
		n = total
		return map[string]any{"data_key_id": to.KeyID(), "resealed": total}
	})
	if err != nil {
		return 0, fmt.Errorf("re-seal secrets: %w", err)
	}
	return n, nil
}

// KeyID is the KeyID of the sealing key.
func (s *Sealer) KeyID() string { return KeyID((*s.keys.Load())[0]) }
