package returnfile

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

// AckFormat names the vendor's acknowledgement of a mirror's return files.
const AckFormat = "outpost-return-ack-v1"

// AckPayloadType is the DSSE payload type of a signed acknowledgement; it
// is not the snapshot's, so neither can pass for the other.
const AckPayloadType = "application/vnd.outpost.return-ack+json"

// MaxAck caps a signed acknowledgement (a bundle entry).
const MaxAck = 64 << 10

// ErrAck wraps every reason an acknowledgement is refused.
var ErrAck = errors.New("acknowledgement refused")

// AuditHead is the head of a mirror's audit chain the vendor accepted.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// FleetCursor is the vendor's acknowledgement of one of the mirror's fleet
// stores: every event up to Through has arrived.
type FleetCursor struct {
	StoreID string `json:"store_id"`
	Through uint64 `json:"through"`
}

// Ack is what the vendor holds of one mirror's return files, carried back
// to it inside a bundle, signed by the keys the mirror trusts for its
// snapshots (docs/fleet.md).
type Ack struct {
	Format    string        `json:"format"`
	TenantID  string        `json:"tenant_id"`
	MirrorID  string        `json:"mirror_id"`
	AuditHead AuditHead     `json:"audit_head"`
	Fleet     []FleetCursor `json:"fleet"`
	CreatedAt time.Time     `json:"created_at"`
}

// Signer signs the DSSE pre-authentication encoding of an
// acknowledgement; a TUF online key (tuf.Signer) is one.
type Signer interface {
	KeyID() string
	Sign(ctx context.Context, payload []byte) ([]byte, error)
}

// SignAck is SignAckBy with raw ed25519 keys (tests and tools; the
// control plane signs with the tenant's timestamp key through SignAckBy).
func SignAck(a Ack, signers []snapshot.Signer) ([]byte, error) {
	by := make([]Signer, len(signers))
	for i, s := range signers {
		by[i] = edSigner{id: s.KeyID, key: s.Key}
	}
	return SignAckBy(context.Background(), a, by)
}

type edSigner struct {
	id  string
	key ed25519.PrivateKey
}

func (s edSigner) KeyID() string { return s.id }

func (s edSigner) Sign(_ context.Context, payload []byte) ([]byte, error) {
	return ed25519.Sign(s.key, payload), nil
}

// SignAckBy is SignAck with any signers (trust: tuf: the timestamp
// role's online keys, whose TUF key ids the mirror's root lists).
func SignAckBy(ctx context.Context, a Ack, signers []Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("sign acknowledgement: no signing keys")
	}
	a.Format = AckFormat
	a.CreatedAt = a.CreatedAt.UTC()
	if a.Fleet == nil {
		a.Fleet = []FleetCursor{}
	}
	payload, err := json.Marshal(&a)
	if err != nil {
		return nil, fmt.Errorf("sign acknowledgement: %w", err)
	}
	pae := snapshot.PAE(AckPayloadType, payload)
	env := snapshot.Envelope{PayloadType: AckPayloadType, Payload: payload}
	for _, s := range signers {
		sig, err := s.Sign(ctx, pae)
		if err != nil {
			return nil, fmt.Errorf("sign acknowledgement: %w", err)
		}
		env.Signatures = append(env.Signatures, snapshot.Signature{KeyID: s.KeyID(), Sig: sig})
	}
	b, err := json.Marshal(&env)
	if err != nil {
		return nil, fmt.Errorf("sign acknowledgement: %w", err)
	}
	return b, nil
}

// AckTrust is what a mirror pins to accept an acknowledgement: the keys
// it trusts (by keyid) and how many must sign, and who it is.
type AckTrust struct {
	Keys      map[string]ed25519.PublicKey
	Threshold int
	TenantID  string
	MirrorID  string
}

// VerifyAck checks a signed acknowledgement: size, strict decoding, the
// payload type, at least Threshold distinct trusted keys signing the
// DSSE pre-authentication encoding, the format, and that it names this
// tenant and this mirror.
func VerifyAck(env []byte, t AckTrust) (*Ack, error) {
	if len(env) > MaxAck {
		return nil, fmt.Errorf("%w: %d bytes, over the %d byte cap", ErrAck, len(env), MaxAck)
	}
	if t.Threshold < 1 {
		t.Threshold = 1
	}
	var e snapshot.Envelope
	dec := json.NewDecoder(bytes.NewReader(env))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrAck, err)
	}
	if e.PayloadType != AckPayloadType {
		return nil, fmt.Errorf("%w: payload type %q, want %q", ErrAck, clip(e.PayloadType), AckPayloadType)
	}
	if len(e.Signatures) > 32 {
		return nil, fmt.Errorf("%w: %d signatures", ErrAck, len(e.Signatures))
	}
	pae := snapshot.PAE(AckPayloadType, e.Payload)
	good := map[string]bool{}
	for _, s := range e.Signatures {
		pub, ok := t.Keys[s.KeyID]
		if ok && !good[s.KeyID] && ed25519.Verify(pub, pae, s.Sig) {
			good[s.KeyID] = true
		}
	}
	if len(good) < t.Threshold {
		return nil, fmt.Errorf("%w: %d of the %d trusted signatures needed verify", ErrAck, len(good), t.Threshold)
	}
	var a Ack
	dec = json.NewDecoder(bytes.NewReader(e.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrAck, err)
	}
	switch {
	case a.Format != AckFormat:
		return nil, fmt.Errorf("%w: format %q, want %q", ErrAck, clip(a.Format), AckFormat)
	case t.TenantID != "" && a.TenantID != t.TenantID:
		return nil, fmt.Errorf("%w: it is for tenant %q, this mirror serves %q", ErrAck, clip(a.TenantID), t.TenantID)
	case a.MirrorID != t.MirrorID:
		return nil, fmt.Errorf("%w: it is for mirror %q, this is %q", ErrAck, clip(a.MirrorID), t.MirrorID)
	case a.AuditHead.Seq < 0:
		return nil, fmt.Errorf("%w: negative audit head", ErrAck)
	}
	return &a, nil
}
