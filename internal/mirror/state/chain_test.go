package state

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/snapshot"
)

func signSnapshot(t *testing.T, m *snapshot.Manifest, k ed25519.PrivateKey) []byte {
	t.Helper()
	env, err := snapshot.Sign(m, []snapshot.Signer{{KeyID: license.KeyID(pub(k)), Key: k}})
	if err != nil {
		t.Fatalf("sign snapshot: %v", err)
	}
	return env
}

// TestVerify_AlongTheChain: vendor key -> signed snapshot -> mirror key
// listed in it -> lease token the mirror's ledger issued.
func TestVerify_AlongTheChain(t *testing.T) {
	trust := snapshot.Trust{Keys: vendorKeys(), Threshold: 1, TenantID: tenantA}
	m := testManifest(t)
	env := signSnapshot(t, m, vendorKey)

	l, _, _ := newTestLedger(t)
	ctx := context.Background()
	// The mirror serves from what it verified, as it would after a sync.
	held, err := snapshot.Verify(env, trust, nil, t0)
	if err != nil {
		t.Fatalf("verify fixture snapshot: %v", err)
	}
	_, tok, err := l.Acquire(ctx, held, entAuto, "machine", "host-9", "", t0)
	if err != nil {
		t.Fatal(err)
	}

	withoutMirror1 := testManifest(t)
	withoutMirror1.MirrorKeys = withoutMirror1.MirrorKeys[1:]
	// Tampered: the payload changed under the vendor's signature.
	var e snapshot.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	e.Payload = bytes.Replace(e.Payload, []byte(`"Acme"`), []byte(`"Acmf"`), 1)
	tampered, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(tampered, env) {
		t.Fatal("tampering changed nothing")
	}

	cases := []struct {
		name      string
		envelope  []byte
		trust     snapshot.Trust
		now       time.Time
		wantChain error // from license.NewChainVerifier
		wantLease error // from license.Verify
	}{
		{"valid chain", env, trust, t0.Add(time.Minute), nil, nil},
		{"snapshot no longer lists the mirror key", signSnapshot(t, withoutMirror1, vendorKey), trust, t0, nil, license.ErrUnknownMirrorKey},
		{"snapshot signed by a rogue vendor key", signSnapshot(t, m, rogueKey), trust, t0, snapshot.ErrVerification, nil},
		{"tampered snapshot", tampered, trust, t0, snapshot.ErrVerification, nil},
		{"snapshot of another tenant", env, snapshot.Trust{Keys: vendorKeys(), Threshold: 1, TenantID: tenantB}, t0, snapshot.ErrVerification, nil},
		{"snapshot expired", env, trust, m.ExpiresAt, snapshot.ErrVerification, nil},
		{"lease expired", env, trust, t0.Add(3*time.Hour + time.Second), nil, license.ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := license.NewChainVerifier(tc.trust, tc.envelope, nil, tc.now)
			if tc.wantChain != nil {
				if !errors.Is(err, tc.wantChain) {
					t.Fatalf("NewChainVerifier: got %v, want %v", err, tc.wantChain)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewChainVerifier: %v", err)
			}
			c, err := license.Verify(tok, v, tc.now)
			if tc.wantLease != nil {
				if !errors.Is(err, tc.wantLease) {
					t.Fatalf("Verify: got %v, want %v", err, tc.wantLease)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.MirrorID() != mirror1 || c.SubjectID != "host-9" || c.ProductID != product1 {
				t.Errorf("claims: got %+v", c)
			}
		})
	}
}
