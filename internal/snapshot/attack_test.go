package snapshot_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// Each test mounts one attack from the trust model (docs/architecture.md)
// and shows it rejected with its own error.

func TestVerify_TamperedPayload(t *testing.T) {
	e := decodeEnv(t, sign(t, small(), keyA))
	e.Payload = replaceOnce(t, e.Payload, `"size_bytes":1001`, `"size_bytes":1002`)
	_, err := snapshot.Verify(encodeEnv(t, e), snapshottest.Trust(1, keyA), nil, now)
	wantReject(t, err, snapshot.ErrSignature)
}

func TestVerify_TamperedSignature(t *testing.T) {
	e := decodeEnv(t, sign(t, small(), keyA))
	e.Signatures[0].Sig[5] ^= 1
	_, err := snapshot.Verify(encodeEnv(t, e), snapshottest.Trust(1, keyA), nil, now)
	wantReject(t, err, snapshot.ErrSignature)
}

func TestVerify_UntrustedKey(t *testing.T) {
	tests := []struct {
		name string
		env  func() []byte
	}{
		{"signed by another key", func() []byte { return sign(t, small(), keyB) }},
		{"another key claims a trusted keyid", func() []byte {
			e := decodeEnv(t, sign(t, small(), keyB))
			e.Signatures[0].KeyID = keyA.KeyID
			return encodeEnv(t, e)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := snapshot.Verify(tt.env(), snapshottest.Trust(1, keyA), nil, now)
			want := snapshot.ErrUntrustedKey
			if i == 1 {
				want = snapshot.ErrSignature // it names a trusted key whose signature fails
			}
			wantReject(t, err, want)
		})
	}
}

func TestVerify_BelowThreshold(t *testing.T) {
	tests := []struct {
		name    string
		signers []snapshot.Signer
		mangle  func(e *snapshot.Envelope)
	}{
		{"one of 2-of-3", []snapshot.Signer{keyA}, nil},
		{"one trusted plus untrusted", []snapshot.Signer{keyA, snapshottest.Signer(9)}, nil},
		{"same signature twice", []snapshot.Signer{keyA}, func(e *snapshot.Envelope) {
			e.Signatures = append(e.Signatures, e.Signatures[0])
		}},
		{"no signatures", []snapshot.Signer{keyA}, func(e *snapshot.Envelope) { e.Signatures = []snapshot.Signature{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sign(t, small(), tt.signers...)
			if tt.mangle != nil {
				e := decodeEnv(t, env)
				tt.mangle(e)
				env = encodeEnv(t, e)
			}
			_, err := snapshot.Verify(env, snapshottest.Trust(2, keyA, keyB, keyC), nil, now)
			wantReject(t, err, snapshot.ErrThreshold)
		})
	}
}

func TestVerify_AnotherTenant(t *testing.T) {
	trust := snapshottest.Trust(1, keyA)
	trust.TenantID = snapshottest.ID("ten", 2)
	_, err := snapshot.Verify(sign(t, small(), keyA), trust, nil, now)
	wantReject(t, err, snapshot.ErrTenant)
}

func TestVerify_Rollback(t *testing.T) {
	m := small()
	m.Sequence, m.Previous = 3, strings.Repeat("0", 64)
	_, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), &snapshot.Held{Sequence: 9, Hash: strings.Repeat("1", 64)}, now)
	wantReject(t, err, snapshot.ErrRollback)
	if err != nil && !strings.Contains(err.Error(), "snapshot 3") || !strings.Contains(err.Error(), "held 9") {
		t.Errorf("message %q should name both sequences", err)
	}
}

func TestVerify_SameSequenceDifferentBytes(t *testing.T) {
	m := small()
	held := &snapshot.Held{Sequence: 1, Hash: snapshot.Hash(sign(t, m, keyA))}
	m.Artifacts[0].SizeBytes++ // the vendor (or an attacker with a key) re-signs sequence 1
	_, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), held, now)
	wantReject(t, err, snapshot.ErrFork)
}

func TestVerify_Expired(t *testing.T) {
	m := small()
	env := sign(t, m, keyA)
	for _, at := range []time.Time{m.ExpiresAt, m.ExpiresAt.Add(time.Second), m.ExpiresAt.Add(1000 * time.Hour)} {
		t.Run(at.Format(time.RFC3339), func(t *testing.T) {
			_, err := snapshot.Verify(env, snapshottest.Trust(1, keyA), nil, at)
			wantReject(t, err, snapshot.ErrExpired)
		})
	}
}

func TestVerify_BrokenPreviousChain(t *testing.T) {
	held := &snapshot.Held{Sequence: 1, Hash: snapshot.Hash(sign(t, small(), keyA))}
	tests := []struct {
		name     string
		seq      int64
		previous string
	}{
		{"next names another hash", 2, strings.Repeat("ab", 32)},
		{"next has no previous", 2, ""},
		{"skip has no previous", 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := small()
			m.Sequence, m.Previous = tt.seq, tt.previous
			_, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), held, now)
			wantReject(t, err, snapshot.ErrPreviousChain)
		})
	}
}

func TestVerify_OverSizeCap(t *testing.T) {
	env := sign(t, small(), keyA)
	t.Run("configured cap", func(t *testing.T) {
		trust := snapshottest.Trust(1, keyA)
		trust.MaxSize = int64(len(env) - 1)
		_, err := snapshot.Verify(env, trust, nil, now)
		wantReject(t, err, snapshot.ErrTooLarge)
	})
	t.Run("default cap", func(t *testing.T) {
		big := make([]byte, snapshot.DefaultMaxSize+1)
		_, err := snapshot.Verify(big, snapshottest.Trust(1, keyA), nil, now)
		wantReject(t, err, snapshot.ErrTooLarge)
	})
	t.Run("exactly at the cap passes", func(t *testing.T) {
		trust := snapshottest.Trust(1, keyA)
		trust.MaxSize = int64(len(env))
		if _, err := snapshot.Verify(env, trust, nil, now); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func TestVerify_UnknownSchema(t *testing.T) {
	tests := []struct {
		name    string
		payload func() []byte
	}{
		{"schema 2", func() []byte { m := small(); m.Schema = 2; return encode(t, m) }},
		{"schema 2 with new fields", func() []byte {
			return replaceOnce(t, encode(t, small()), `{"schema":1,`, `{"schema":2,"targets":{"x":[1]},`)
		}},
		{"schema not first", func() []byte {
			b := replaceOnce(t, encode(t, small()), `{"schema":1,`, `{`)
			return replaceOnce(t, b, `"mirror_keys":`, `"schema":0,"mirror_keys":`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := snapshot.Verify(signRaw(t, tt.payload(), keyA), snapshottest.Trust(1, keyA), nil, now)
			wantReject(t, err, snapshot.ErrSchema)
		})
	}
}

func TestVerify_DuplicateIDs(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *snapshot.Manifest)
	}{
		{"products", func(m *snapshot.Manifest) { m.Products = append(m.Products, m.Products[0]) }},
		{"releases", func(m *snapshot.Manifest) { m.Releases = append(m.Releases, m.Releases[1]) }},
		{"artifacts", func(m *snapshot.Manifest) { m.Artifacts = append(m.Artifacts, m.Artifacts[2]) }},
		{"release artifacts", func(m *snapshot.Manifest) {
			m.Releases[1].Artifacts[0].ReleaseArtifactID = m.Releases[0].Artifacts[0].ReleaseArtifactID
		}},
		{"policies", func(m *snapshot.Manifest) { m.Policies = append(m.Policies, m.Policies[0]) }},
		{"blocked_versions", func(m *snapshot.Manifest) { m.BlockedVersions = append(m.BlockedVersions, m.BlockedVersions[0]) }},
		{"rollouts", func(m *snapshot.Manifest) { m.Rollouts = append(m.Rollouts, m.Rollouts[0]) }},
		{"entitlements", func(m *snapshot.Manifest) { m.Entitlements = append(m.Entitlements, m.Entitlements[0]) }},
		{"seat_assignments", func(m *snapshot.Manifest) { m.SeatAssignments = append(m.SeatAssignments, m.SeatAssignments[0]) }},
		{"mirror_keys", func(m *snapshot.Manifest) { m.MirrorKeys = append(m.MirrorKeys, m.MirrorKeys[0]) }},
		{"unsorted with duplicate", func(m *snapshot.Manifest) {
			m.Releases = append([]snapshot.Release{m.Releases[2]}, m.Releases...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := small()
			tt.mutate(m)
			_, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), nil, now)
			wantReject(t, err, snapshot.ErrDuplicateID)
		})
	}
}

func TestVerify_DanglingReferences(t *testing.T) {
	missing := "xyz_missing"
	tests := []struct {
		name   string
		mutate func(m *snapshot.Manifest)
	}{
		{"release product", func(m *snapshot.Manifest) { m.Releases[0].ProductID = missing }},
		{"release artifact", func(m *snapshot.Manifest) { m.Releases[3].Artifacts[1].ArtifactID = missing }},
		{"release artifact removed from artifacts", func(m *snapshot.Manifest) { m.Artifacts = m.Artifacts[1:] }},
		{"policy product", func(m *snapshot.Manifest) { m.Policies[0].ProductID = missing }},
		{"blocked version product", func(m *snapshot.Manifest) { m.BlockedVersions[1].ProductID = missing }},
		{"rollout product", func(m *snapshot.Manifest) { m.Rollouts[0].ProductID = missing }},
		{"rollout release", func(m *snapshot.Manifest) { m.Rollouts[0].ReleaseID = missing }},
		{"entitlement product", func(m *snapshot.Manifest) { m.Entitlements[0].ProductID = missing }},
		{"seat entitlement", func(m *snapshot.Manifest) { m.SeatAssignments[0].EntitlementID = missing }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := small()
			tt.mutate(m)
			_, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), nil, now)
			wantReject(t, err, snapshot.ErrDangling)
		})
	}
}

func TestVerify_MalformedManifest(t *testing.T) {
	tests := []struct {
		name    string
		payload func() []byte
	}{
		{"unknown top-level field", func() []byte { return replaceOnce(t, encode(t, small()), `"previous":`, `"extra":1,"previous":`) }},
		{"unknown release field", func() []byte {
			return replaceOnce(t, encode(t, small()), `"channel":"stable"`, `"channel":"stable","x":null`)
		}},
		{"repeated field", func() []byte {
			return replaceOnce(t, encode(t, small()), `"previous":""`, `"previous":"","previous":""`)
		}},
		{"missing field", func() []byte { return replaceOnce(t, encode(t, small()), `,"reason":"known bad"`, ``) }},
		{"trailing data", func() []byte { return append(encode(t, small()), []byte(` {}`)...) }},
		{"not json", func() []byte { return []byte(`{"schema":1, nope`) }},
		{"wrong type", func() []byte { return replaceOnce(t, encode(t, small()), `"size_bytes":1001`, `"size_bytes":"1001"`) }},
		{"fraction in integer", func() []byte { return replaceOnce(t, encode(t, small()), `"size_bytes":1001`, `"size_bytes":1001.5`) }},
		{"metadata not an object", func() []byte { return replaceOnce(t, encode(t, small()), `"metadata":{}`, `"metadata":[]`) }},
		{"bad time", func() []byte {
			return replaceOnce(t, encode(t, small()), `"published_at":"2025-12-31T00:00:00Z"`, `"published_at":"yesterday"`)
		}},
		{"invalid utf-8", func() []byte { return replaceOnce(t, encode(t, small()), `Tenant One`, "Tenant \xff") }},
		{"no schema", func() []byte { return replaceOnce(t, encode(t, small()), `"schema":1,`, ``) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := snapshot.Verify(signRaw(t, tt.payload(), keyA), snapshottest.Trust(1, keyA), nil, now)
			wantReject(t, err, snapshot.ErrMalformed)
			t.Log(err)
		})
	}
}

func TestVerify_MalformedValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *snapshot.Manifest)
	}{
		{"sequence 0", func(m *snapshot.Manifest) { m.Sequence = 0 }},
		{"empty snapshot_id", func(m *snapshot.Manifest) { m.SnapshotID = "" }},
		{"expires before created", func(m *snapshot.Manifest) { m.ExpiresAt = m.CreatedAt }},
		{"previous not hex", func(m *snapshot.Manifest) { m.Previous = "zz" }},
		{"tenant record of another tenant", func(m *snapshot.Manifest) { m.Tenant.TenantID = "ten_other" }},
		{"tenant status", func(m *snapshot.Manifest) { m.Tenant.Status = "gone" }},
		{"product distribution", func(m *snapshot.Manifest) { m.Products[0].Distribution = "free" }},
		{"empty release id", func(m *snapshot.Manifest) { m.Releases[0].ReleaseID = "" }},
		{"empty version", func(m *snapshot.Manifest) { m.Releases[0].Version = "" }},
		{"release status", func(m *snapshot.Manifest) { m.Releases[0].Status = "active" }},
		{"empty platform", func(m *snapshot.Manifest) { m.Releases[0].Artifacts[0].Platform = "" }},
		{"sha256 short", func(m *snapshot.Manifest) { m.Artifacts[0].SHA256 = "abc" }},
		{"sha256 upper case", func(m *snapshot.Manifest) { m.Artifacts[0].SHA256 = strings.ToUpper(m.Artifacts[0].SHA256) }},
		{"negative size", func(m *snapshot.Manifest) { m.Artifacts[0].SizeBytes = -1 }},
		{"source type", func(m *snapshot.Manifest) { m.Artifacts[0].SourceType = "FTP" }},
		{"policy action", func(m *snapshot.Manifest) { m.Policies[0].Action = "REBOOT" }},
		{"rollout percentage", func(m *snapshot.Manifest) { m.Rollouts[0].Percentage = 101 }},
		{"rollout status", func(m *snapshot.Manifest) { m.Rollouts[0].Status = "done" }},
		{"entitlement ends before start", func(m *snapshot.Manifest) { e := m.Entitlements[0].StartsAt; m.Entitlements[0].EndsAt = &e }},
		{"seat subject type", func(m *snapshot.Manifest) { m.SeatAssignments[0].SubjectType = "robot" }},
		{"mirror key not a key", func(m *snapshot.Manifest) { m.MirrorKeys[0].PublicKey = "AAAA" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := small()
			tt.mutate(m)
			_, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), nil, now)
			wantReject(t, err, snapshot.ErrMalformed)
		})
	}
}

func TestVerify_MalformedEnvelope(t *testing.T) {
	good := sign(t, small(), keyA)
	var generic map[string]any
	if err := json.Unmarshal(good, &generic); err != nil {
		t.Fatal(err)
	}
	withField := func(k string, v any) []byte {
		g := map[string]any{}
		for kk, vv := range generic {
			g[kk] = vv
		}
		if v == nil {
			delete(g, k)
		} else {
			g[k] = v
		}
		b, _ := json.Marshal(g)
		return b
	}
	tests := []struct {
		name string
		env  []byte
		want error
	}{
		{"empty", nil, snapshot.ErrMalformed},
		{"not json", []byte("hello"), snapshot.ErrMalformed},
		{"array", []byte("[]"), snapshot.ErrMalformed},
		{"unknown field", withField("extra", 1), snapshot.ErrMalformed},
		{"missing payload", withField("payload", nil), snapshot.ErrMalformed},
		{"payload not base64", withField("payload", "!!!!"), snapshot.ErrMalformed},
		{"payload unpadded", withField("payload", "eyJ"), snapshot.ErrMalformed},
		{"signatures not a list", withField("signatures", "x"), snapshot.ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), '{'), snapshot.ErrMalformed},
		{"repeated payload", []byte(strings.Replace(string(good), `"payload":`, `"payload":"e30=","payload":`, 1)), snapshot.ErrMalformed},
		{"wrong payload type", withField("payloadType", "application/vnd.in-toto+json"), snapshot.ErrPayloadType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := snapshot.Verify(tt.env, snapshottest.Trust(1, keyA), nil, now)
			wantReject(t, err, tt.want)
		})
	}
}
