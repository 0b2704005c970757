package snapshot_test

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

func TestKeyID_IsSHA256OfRawKey(t *testing.T) {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize) // all zero
	got := snapshot.KeyID(pub)
	want := "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925" // sha256 of 32 zero bytes
	if got != want {
		t.Errorf("KeyID(zero key) = %s, want %s", got, want)
	}
}

func TestPAE_Encoding(t *testing.T) {
	tests := []struct {
		name, typ, body, want string
	}{
		{"dsse spec example", "http://example.com/HelloWorld", "hello world", "DSSEv1 29 http://example.com/HelloWorld 11 hello world"},
		{"empty", "", "", "DSSEv1 0  0 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(snapshot.PAE(tt.typ, []byte(tt.body))); got != tt.want {
				t.Errorf("PAE = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncode_MatchesEncodingJSON(t *testing.T) {
	m := small()
	m.Tenant.Name = "Tenant \"one\" <&> \u2028 \x01 é"
	m.Releases[0].Metadata = json.RawMessage(`{ "b": [1, 2], "a": "x" }`)
	m.Rollouts[0].Percentage = 12.5
	got := encode(t, m)
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(sb.String(), "\n")
	if string(got) != want {
		t.Errorf("Encode differs from encoding/json:\n got %.300s\nwant %.300s", got, want)
	}
}

func TestEncode_Deterministic(t *testing.T) {
	a := encode(t, small())
	b := encode(t, small())
	if string(a) != string(b) {
		t.Error("two encodings of the same manifest differ")
	}
}

func TestEncode_RejectsBadValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *snapshot.Manifest)
	}{
		{"invalid utf-8", func(m *snapshot.Manifest) { m.Tenant.Name = "a\xffb" }},
		{"metadata not an object", func(m *snapshot.Manifest) { m.Products[0].Metadata = json.RawMessage(`[1]`) }},
		{"metadata not json", func(m *snapshot.Manifest) { m.Products[0].Metadata = json.RawMessage(`{x}`) }},
		{"nan percentage", func(m *snapshot.Manifest) { m.Rollouts[0].Percentage = nan() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := small()
			tt.mutate(m)
			if _, err := snapshot.Encode(m); err == nil {
				t.Error("Encode: got no error")
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestVerify_RoundTrip(t *testing.T) {
	m := small()
	env := sign(t, m, keyA)
	got, err := snapshot.Verify(env, snapshottest.Trust(1, keyA), nil, now)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if a, b := encode(t, got), encode(t, m); string(a) != string(b) {
		t.Errorf("verified manifest re-encodes differently:\n got %.200s\nwant %.200s", a, b)
	}
	if len(got.Releases) != 6 || len(got.Releases[0].Artifacts) != 2 {
		t.Errorf("got %d releases, want 6", len(got.Releases))
	}
}

func TestVerify_AcceptsTrustedSignatures(t *testing.T) {
	m := small()
	tests := []struct {
		name    string
		signers []snapshot.Signer
		trust   snapshot.Trust
	}{
		{"one key", []snapshot.Signer{keyA}, snapshottest.Trust(1, keyA)},
		{"two keys threshold 2", []snapshot.Signer{keyA, keyB}, snapshottest.Trust(2, keyA, keyB)},
		{"2 of 3", []snapshot.Signer{keyB, keyC}, snapshottest.Trust(2, keyA, keyB, keyC)},
		{"rotation: old key, both trusted", []snapshot.Signer{keyA}, snapshottest.Trust(1, keyA, keyB)},
		{"rotation: new key, both trusted", []snapshot.Signer{keyB}, snapshottest.Trust(1, keyA, keyB)},
		{"rotation: both sign, threshold 2", []snapshot.Signer{keyA, keyB}, snapshottest.Trust(2, keyA, keyB)},
		{"extra untrusted signature ignored", []snapshot.Signer{keyA, keyC}, snapshottest.Trust(1, keyA)},
		{"threshold 0 means 1", []snapshot.Signer{keyA}, snapshottest.Trust(0, keyA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sign(t, m, tt.signers...)
			if _, err := snapshot.Verify(env, tt.trust, nil, now); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestSign_SignaturesSortedByKeyID(t *testing.T) {
	e := decodeEnv(t, sign(t, small(), keyC, keyA, keyB))
	if len(e.Signatures) != 3 {
		t.Fatalf("got %d signatures, want 3", len(e.Signatures))
	}
	for i := 1; i < len(e.Signatures); i++ {
		if e.Signatures[i-1].KeyID >= e.Signatures[i].KeyID {
			t.Errorf("signatures not sorted: %s before %s", e.Signatures[i-1].KeyID, e.Signatures[i].KeyID)
		}
	}
	if e.PayloadType != snapshot.PayloadType {
		t.Errorf("payloadType = %q, want %q", e.PayloadType, snapshot.PayloadType)
	}
}

func TestSign_RejectsBadSigners(t *testing.T) {
	tests := []struct {
		name    string
		signers []snapshot.Signer
	}{
		{"none", nil},
		{"same key twice", []snapshot.Signer{keyA, keyA}},
		{"wrong keyid", []snapshot.Signer{{KeyID: keyB.KeyID, Key: keyA.Key}}},
		{"short key", []snapshot.Signer{{Key: keyA.Key[:10]}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := snapshot.Sign(small(), tt.signers); err == nil {
				t.Error("Sign: got no error")
			}
		})
	}
}

func TestVerify_HeldState(t *testing.T) {
	m1 := small()
	env1 := sign(t, m1, keyA)
	h1 := snapshot.Hash(env1)
	trust := snapshottest.Trust(1, keyA)

	m2 := small()
	m2.Sequence, m2.Previous = 2, h1
	env2 := sign(t, m2, keyA)

	m5 := small()
	m5.Sequence, m5.Previous = 5, strings.Repeat("ab", 32)
	env5 := sign(t, m5, keyA)

	tests := []struct {
		name string
		env  []byte
		held *snapshot.Held
	}{
		{"nothing held", env1, nil},
		{"same snapshot again", env1, &snapshot.Held{Sequence: 1, Hash: h1}},
		{"next in chain", env2, &snapshot.Held{Sequence: 1, Hash: h1}},
		{"skips sequences with a previous", env5, &snapshot.Held{Sequence: 1, Hash: h1}},
		{"first held later than 1", env5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := snapshot.Verify(tt.env, trust, tt.held, now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got == nil {
				t.Fatal("Verify returned no manifest")
			}
		})
	}
}

func TestHash_IsSHA256Hex(t *testing.T) {
	if got, want := snapshot.Hash([]byte("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
}
