package snapshot_test

import (
	"errors"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// The manifest is decoded while the signatures are checked; nothing the
// decoder found, good or bad, may show unless the signatures verified.
func TestVerify_SignatureDecidesBeforeDecoding(t *testing.T) {
	good := encode(t, small())
	cases := []struct {
		name    string
		payload []byte
		signer  snapshot.Signer
		want    error
	}{
		{"valid manifest, untrusted key", good, keyC, snapshot.ErrUntrustedKey},
		{"unknown schema, untrusted key", replaceOnce(t, good, `"schema":1`, `"schema":9`), keyC, snapshot.ErrUntrustedKey},
		{"malformed manifest, untrusted key", []byte(`{"schema":1,`), keyC, snapshot.ErrUntrustedKey},
		{"not UTF-8, untrusted key", []byte("{\xff}"), keyC, snapshot.ErrUntrustedKey},
		{"malformed manifest, trusted key", []byte(`{"schema":1,`), keyA, snapshot.ErrMalformed},
		{"unknown schema, trusted key", replaceOnce(t, good, `"schema":1`, `"schema":9`), keyA, snapshot.ErrSchema},
	}
	trust := snapshottest.Trust(1, keyA)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := snapshot.Verify(signRaw(t, c.payload, c.signer), trust, nil, now)
			if m != nil {
				t.Fatalf("Verify returned a manifest with error %v", err)
			}
			if !errors.Is(err, c.want) || !errors.Is(err, snapshot.ErrVerification) {
				t.Fatalf("Verify error = %v, want %v", err, c.want)
			}
		})
	}

	t.Run("tampered payload of a valid manifest", func(t *testing.T) {
		env := sign(t, small(), keyA)
		e := decodeEnv(t, env)
		e.Payload = replaceOnce(t, e.Payload, `"Tenant One"`, `"Tenant Two"`)
		m, err := snapshot.Verify(encodeEnv(t, e), trust, nil, now)
		if m != nil || !errors.Is(err, snapshot.ErrSignature) {
			t.Fatalf("Verify = %v, %v; want nil, ErrSignature", m, err)
		}
	})
}
