package returnfile

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

func TestVerifyAck_Refusals(t *testing.T) {
	pub1, priv1, _ := ed25519.GenerateKey(nil)
	pub2, priv2, _ := ed25519.GenerateKey(nil)
	_, rogue, _ := ed25519.GenerateKey(nil)
	s1 := snapshot.Signer{KeyID: snapshot.KeyID(pub1), Key: priv1}
	s2 := snapshot.Signer{KeyID: snapshot.KeyID(pub2), Key: priv2}
	keys := map[string]ed25519.PublicKey{s1.KeyID: pub1, s2.KeyID: pub2}
	trust := AckTrust{Keys: keys, Threshold: 1, TenantID: "ten_a", MirrorID: "mir_a"}
	ack := Ack{TenantID: "ten_a", MirrorID: "mir_a", AuditHead: AuditHead{Seq: 3, Hash: "h"}, Fleet: []FleetCursor{{StoreID: "s", Through: 7}}, CreatedAt: time.Unix(1e9, 0)}
	sign := func(a Ack, by ...snapshot.Signer) []byte {
		env, err := SignAck(a, by)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	good := sign(ack, s1)
	t.Run("genuine", func(t *testing.T) {
		got, err := VerifyAck(good, trust)
		if err != nil {
			t.Fatal(err)
		}
		if got.AuditHead != ack.AuditHead || len(got.Fleet) != 1 || got.Fleet[0] != ack.Fleet[0] {
			t.Errorf("got %+v, want %+v", got, ack)
		}
	})
	// The same key twice counts once.
	var twice snapshot.Envelope
	_ = json.Unmarshal(good, &twice)
	twice.Signatures = append(twice.Signatures, twice.Signatures[0])
	twiceB, _ := json.Marshal(&twice)
	// A valid envelope of another payload type, signed by a trusted key.
	otherType, _ := json.Marshal(&snapshot.Envelope{PayloadType: snapshot.PayloadType, Payload: twice.Payload,
		Signatures: []snapshot.Signature{{KeyID: s1.KeyID, Sig: ed25519.Sign(priv1, snapshot.PAE(snapshot.PayloadType, twice.Payload))}}})
	unknownField := sign(ack, s1)
	unknownField = bytes.Replace(unknownField, []byte(`"payloadType"`), []byte(`"x":1,"payloadType"`), 1)
	cases := []struct {
		name  string
		env   []byte
		trust AckTrust
		want  string
	}{
		{"signed by an untrusted key", sign(ack, snapshot.Signer{KeyID: s1.KeyID, Key: rogue}), trust, "0 of the 1 trusted signatures"},
		{"below the threshold", good, AckTrust{Keys: keys, Threshold: 2, TenantID: "ten_a", MirrorID: "mir_a"}, "1 of the 2"},
		{"one key twice is one signature", twiceB, AckTrust{Keys: keys, Threshold: 2, TenantID: "ten_a", MirrorID: "mir_a"}, "1 of the 2"},
		{"another payload type", otherType, trust, "payload type"},
		{"another mirror", good, AckTrust{Keys: keys, TenantID: "ten_a", MirrorID: "mir_b"}, "for mirror"},
		{"another tenant", good, AckTrust{Keys: keys, TenantID: "ten_b", MirrorID: "mir_a"}, "for tenant"},
		{"an unknown envelope field", unknownField, trust, "unknown field"},
		{"not JSON", []byte("nope"), trust, "envelope"},
		{"over the cap", append(bytes.Repeat([]byte(" "), MaxAck), good...), trust, "over the"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyAck(tc.env, tc.trust)
			if !errors.Is(err, ErrAck) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("VerifyAck error = %v, want ErrAck containing %q", err, tc.want)
			}
		})
	}
	t.Run("two keys meet a threshold of two", func(t *testing.T) {
		if _, err := VerifyAck(sign(ack, s1, s2), AckTrust{Keys: keys, Threshold: 2, TenantID: "ten_a", MirrorID: "mir_a"}); err != nil {
			t.Error(err)
		}
	})
}
