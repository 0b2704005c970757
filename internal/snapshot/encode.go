package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/outpost/outpost/internal/jsonx"
)

// Encode returns the canonical payload bytes of m: fields in declaration
// order, no insignificant whitespace, times in UTC RFC 3339, free-form
// objects compacted, empty ones as {}, nil lists as []. The bytes equal
// encoding/json's (without HTML escaping) for the same manifest, but are
// written by hand because a 100,000-release manifest must encode fast. The
// caller sorts lists (Build does).
func Encode(m *Manifest) ([]byte, error) {
	return appendManifest(nil, m)
}

// appendManifest appends the canonical bytes of m to b.
func appendManifest(b []byte, m *Manifest) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			ee, ok := r.(encodeError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("encode manifest: %w", error(ee))
		}
	}()
	n := 1024 + 420*len(m.Releases) + 180*len(m.Artifacts) + 300*(len(m.Policies)+len(m.Rollouts)+len(m.Entitlements)+len(m.SeatAssignments))
	b = slices.Grow(b, n)
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(m.Schema), 10)
	b = append(b, `,"snapshot_id":`...)
	b = appendString(b, m.SnapshotID)
	b = append(b, `,"tenant_id":`...)
	b = appendString(b, m.TenantID)
	b = append(b, `,"sequence":`...)
	b = strconv.AppendInt(b, m.Sequence, 10)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `,"expires_at":`...)
	b = appendTime(b, m.ExpiresAt)
	b = append(b, `,"previous":`...)
	b = appendString(b, m.Previous)

	t := &m.Tenant
	b = append(b, `,"tenant":{"tenant_id":`...)
	b = appendString(b, t.TenantID)
	b = append(b, `,"name":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"status":`...)
	b = appendString(b, t.Status)
	b = append(b, `,"metadata":`...)
	b = appendObject(b, t.Metadata, "tenant.metadata")

	b = append(b, `},"products":[`...)
	for i := range m.Products {
		p := &m.Products[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"product_id":`...)
		b = appendString(b, p.ProductID)
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
		b = append(b, `,"distribution":`...)
		b = appendString(b, p.Distribution)
		b = append(b, `,"metadata":`...)
		b = appendObject(b, p.Metadata, "products.metadata")
		b = append(b, '}')
	}

	b = append(b, `],"releases":[`...)
	for i := range m.Releases {
		r := &m.Releases[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"release_id":`...)
		b = appendString(b, r.ReleaseID)
		b = append(b, `,"product_id":`...)
		b = appendString(b, r.ProductID)
		b = append(b, `,"channel":`...)
		b = appendString(b, r.Channel)
		b = append(b, `,"version":`...)
		b = appendString(b, r.Version)
		b = append(b, `,"published_at":`...)
		b = appendTime(b, r.PublishedAt)
		b = append(b, `,"status":`...)
		b = appendString(b, r.Status)
		b = append(b, `,"revoked_at":`...)
		b = appendTimePtr(b, r.RevokedAt)
		b = append(b, `,"metadata":`...)
		b = appendObject(b, r.Metadata, "releases.metadata")
		b = append(b, `,"artifacts":[`...)
		for j := range r.Artifacts {
			a := &r.Artifacts[j]
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"release_artifact_id":`...)
			b = appendString(b, a.ReleaseArtifactID)
			b = append(b, `,"artifact_id":`...)
			b = appendString(b, a.ArtifactID)
			b = append(b, `,"platform":`...)
			b = appendString(b, a.Platform)
			b = append(b, `,"arch":`...)
			b = appendString(b, a.Arch)
			b = append(b, `,"installer_type":`...)
			b = appendString(b, a.InstallerType)
			b = append(b, `,"requires_admin":`...)
			b = strconv.AppendBool(b, a.RequiresAdmin)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}

	b = append(b, `],"artifacts":[`...)
	for i := range m.Artifacts {
		a := &m.Artifacts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"artifact_id":`...)
		b = appendString(b, a.ArtifactID)
		b = append(b, `,"sha256":`...)
		b = appendString(b, a.SHA256)
		b = append(b, `,"size_bytes":`...)
		b = strconv.AppendInt(b, a.SizeBytes, 10)
		b = append(b, `,"source_type":`...)
		b = appendString(b, a.SourceType)
		b = append(b, '}')
	}

	b = append(b, `],"policies":[`...)
	for i := range m.Policies {
		p := &m.Policies[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"policy_id":`...)
		b = appendString(b, p.PolicyID)
		b = append(b, `,"product_id":`...)
		b = appendString(b, p.ProductID)
		b = append(b, `,"channel":`...)
		b = appendString(b, p.Channel)
		b = append(b, `,"action":`...)
		b = appendString(b, p.Action)
		b = append(b, `,"conditions":`...)
		b = appendObject(b, p.Conditions, "policies.conditions")
		b = append(b, `,"priority":`...)
		b = strconv.AppendInt(b, int64(p.Priority), 10)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(p.Version), 10)
		b = append(b, '}')
	}

	b = append(b, `],"blocked_versions":[`...)
	for i := range m.BlockedVersions {
		v := &m.BlockedVersions[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"blocklist_id":`...)
		b = appendString(b, v.BlocklistID)
		b = append(b, `,"product_id":`...)
		b = appendString(b, v.ProductID)
		b = append(b, `,"blocked_version":`...)
		b = appendString(b, v.BlockedVersion)
		b = append(b, `,"reason":`...)
		b = appendString(b, v.Reason)
		b = append(b, '}')
	}

	b = append(b, `],"rollouts":[`...)
	for i := range m.Rollouts {
		r := &m.Rollouts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rollout_id":`...)
		b = appendString(b, r.RolloutID)
		b = append(b, `,"product_id":`...)
		b = appendString(b, r.ProductID)
		b = append(b, `,"channel":`...)
		b = appendString(b, r.Channel)
		b = append(b, `,"release_id":`...)
		b = appendString(b, r.ReleaseID)
		b = append(b, `,"percentage":`...)
		b = appendFloat(b, r.Percentage)
		b = append(b, `,"status":`...)
		b = appendString(b, r.Status)
		b = append(b, '}')
	}

	b = append(b, `],"entitlements":[`...)
	for i := range m.Entitlements {
		e := &m.Entitlements[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"entitlement_id":`...)
		b = appendString(b, e.EntitlementID)
		b = append(b, `,"product_id":`...)
		b = appendString(b, e.ProductID)
		b = append(b, `,"policy":`...)
		b = appendObject(b, e.Policy, "entitlements.policy")
		b = append(b, `,"starts_at":`...)
		b = appendTime(b, e.StartsAt)
		b = append(b, `,"ends_at":`...)
		b = appendTimePtr(b, e.EndsAt)
		b = append(b, '}')
	}

	b = append(b, `],"seat_assignments":[`...)
	for i := range m.SeatAssignments {
		s := &m.SeatAssignments[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seat_assignment_id":`...)
		b = appendString(b, s.SeatAssignmentID)
		b = append(b, `,"entitlement_id":`...)
		b = appendString(b, s.EntitlementID)
		b = append(b, `,"subject_type":`...)
		b = appendString(b, s.SubjectType)
		b = append(b, `,"subject_id":`...)
		b = appendString(b, s.SubjectID)
		b = append(b, `,"assigned_at":`...)
		b = appendTime(b, s.AssignedAt)
		b = append(b, `,"revoked_at":`...)
		b = appendTimePtr(b, s.RevokedAt)
		b = append(b, '}')
	}

	b = append(b, `],"mirror_keys":[`...)
	for i := range m.MirrorKeys {
		k := &m.MirrorKeys[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"mirror_id":`...)
		b = appendString(b, k.MirrorID)
		b = append(b, `,"public_key":`...)
		b = appendString(b, k.PublicKey)
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(m.Deltas) > 0 {
		b = append(b, `,"deltas":[`...)
		for i := range m.Deltas {
			d := &m.Deltas[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"delta_id":`...)
			b = appendString(b, d.DeltaID)
			b = append(b, `,"from_artifact_id":`...)
			b = appendString(b, d.FromArtifactID)
			b = append(b, `,"to_artifact_id":`...)
			b = appendString(b, d.ToArtifactID)
			b = append(b, `,"from_sha256":`...)
			b = appendString(b, d.FromSHA256)
			b = append(b, `,"to_sha256":`...)
			b = appendString(b, d.ToSHA256)
			b = append(b, `,"sha256":`...)
			b = appendString(b, d.SHA256)
			b = append(b, `,"size_bytes":`...)
			b = strconv.AppendInt(b, d.SizeBytes, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// encodeError aborts Encode from deep inside; only Encode recovers it.
type encodeError struct{ error }

// appendString writes s as a JSON string (the rules of internal/jsonx).
// Invalid UTF-8 is an error rather than being silently replaced: signed
// bytes must say exactly what was meant.
func appendString(b []byte, s string) []byte {
	b, err := jsonx.AppendStrict(b, s)
	if err != nil {
		panic(encodeError{fmt.Errorf("string %q: %w", s, err)})
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		panic(encodeError{fmt.Errorf("time %v is outside years 0..9999", t)})
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendTimePtr(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}

// appendObject writes a free-form JSON object compacted; empty or null is
// {}.
func appendObject(b []byte, raw json.RawMessage, field string) []byte {
	if len(raw) == 0 || string(raw) == "{}" || string(raw) == "null" {
		return append(b, "{}"...)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		panic(encodeError{fmt.Errorf("%s: %w", field, err)})
	}
	if buf.Bytes()[0] != '{' {
		panic(encodeError{fmt.Errorf("%s: must be a JSON object", field)})
	}
	if !utf8.Valid(buf.Bytes()) {
		panic(encodeError{fmt.Errorf("%s: not valid UTF-8", field)})
	}
	return append(b, buf.Bytes()...)
}

// appendFloat formats like encoding/json.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		panic(encodeError{errors.New("percentage must be a finite number")})
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
