package snapshot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// FuzzVerify feeds arbitrary envelopes to Verify: it must never panic,
// and every rejection must be a verification error. The seeds are valid
// envelopes (so mutations reach the manifest decoder, whose payload the
// fuzzer cannot re-sign) and broken ones.
func FuzzVerify(f *testing.F) {
	m := snapshottest.Manifest(1, 2, 2)
	good, err := snapshot.Sign(m, []snapshot.Signer{keyA})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"payload":`, `"x":1,"payload":`, 1)))
	f.Add([]byte(`{"payloadType":"application/vnd.outpost.snapshot+json","payload":"e30=","signatures":[]}`))
	f.Add([]byte(`{"payloadType":"x","payload":"","signatures":[{"keyid":"00","sig":"AA=="}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`{"payload":"\u0041\/==","payloadType":"\ud83d\ude00"}`))
	f.Add([]byte(""))
	trust := snapshottest.Trust(1, keyA)
	f.Fuzz(func(t *testing.T, env []byte) {
		got, err := snapshot.Verify(env, trust, nil, now)
		if err != nil {
			if !errors.Is(err, snapshot.ErrVerification) {
				t.Fatalf("error %v does not wrap ErrVerification", err)
			}
			if got != nil {
				t.Fatal("a manifest returned with an error")
			}
			return
		}
		if got == nil {
			t.Fatal("no manifest and no error")
		}
	})
}

// FuzzDecodeManifest feeds arbitrary manifests through a trusted
// signature, so the fuzzer explores the manifest decoder and the
// structural checks directly.
func FuzzDecodeManifest(f *testing.F) {
	m := snapshottest.Manifest(1, 2, 2)
	payload, err := snapshot.Encode(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(payload)
	f.Add([]byte(strings.Replace(string(payload), `"schema":1`, `"schema":2`, 1)))
	f.Add([]byte(strings.Replace(string(payload), `"metadata":{}`, `"metadata":{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, 1)))
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`{"schema":1e3}`))
	f.Add([]byte(`{"schema":1,"previous":"\ud800"}`))
	trust := snapshottest.Trust(1, keyA)
	f.Fuzz(func(t *testing.T, payload []byte) {
		env, err := snapshot.SignPayload(payload, []snapshot.Signer{keyA})
		if err != nil {
			t.Fatal(err)
		}
		got, err := snapshot.Verify(env, trust, nil, now)
		if err != nil {
			if !errors.Is(err, snapshot.ErrVerification) {
				t.Fatalf("error %v does not wrap ErrVerification", err)
			}
			return
		}
		// Accepted: it must re-encode and verify again.
		again, err := snapshot.Sign(got, []snapshot.Signer{keyA})
		if err != nil {
			t.Fatalf("accepted manifest does not re-encode: %v", err)
		}
		if _, err := snapshot.Verify(again, trust, nil, now); err != nil {
			t.Fatalf("re-encoded manifest does not verify: %v", err)
		}
	})
}
