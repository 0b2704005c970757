package snapshot_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

var (
	keyA = snapshottest.Signer(1)
	keyB = snapshottest.Signer(2)
	keyC = snapshottest.Signer(3)
	// now is inside the validity of snapshottest manifests.
	now = snapshottest.Now.Add(time.Hour)
)

// small returns a fresh manifest with every list non-empty.
func small() *snapshot.Manifest { return snapshottest.Manifest(2, 3, 2) }

func sign(t testing.TB, m *snapshot.Manifest, signers ...snapshot.Signer) []byte {
	t.Helper()
	env, err := snapshot.Sign(m, signers)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return env
}

// signRaw signs payload bytes as they are, for documents Encode would not
// write.
func signRaw(t testing.TB, payload []byte, signers ...snapshot.Signer) []byte {
	t.Helper()
	env, err := snapshot.SignPayload(payload, signers)
	if err != nil {
		t.Fatalf("SignPayload: %v", err)
	}
	return env
}

// encode returns the payload of m.
func encode(t testing.TB, m *snapshot.Manifest) []byte {
	t.Helper()
	b, err := snapshot.Encode(m)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// replaceOnce replaces the first old in b, failing if absent.
func replaceOnce(t testing.TB, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not found in payload", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// decodeEnv parses envelope bytes with encoding/json, for tampering.
func decodeEnv(t testing.TB, b []byte) *snapshot.Envelope {
	t.Helper()
	var e snapshot.Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("unmarshal envelope: %v", err)
	}
	return &e
}

func encodeEnv(t testing.TB, e *snapshot.Envelope) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantReject checks that err is a verification error of kind want.
func wantReject(t testing.TB, err error, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	if !errors.Is(err, snapshot.ErrVerification) {
		t.Errorf("errors.Is(%v, ErrVerification) = false", err)
	}
	if !errors.Is(err, want) {
		t.Errorf("got error %q, want kind %q", err, want)
	}
}
