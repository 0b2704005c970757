package snapshot

import (
	"encoding/json"
	"math"
	"slices"
)

// Field names per object, in bit order for lexer.seen/missing.
var (
	manifestFields = []string{"schema", "snapshot_id", "tenant_id", "sequence", "created_at", "expires_at", "previous",
		"tenant", "products", "releases", "artifacts", "policies", "blocked_versions", "rollouts", "entitlements",
		"seat_assignments", "mirror_keys"}
	tenantFields          = []string{"tenant_id", "name", "status", "metadata"}
	productFields         = []string{"product_id", "name", "distribution", "metadata"}
	releaseFields         = []string{"release_id", "product_id", "channel", "version", "published_at", "status", "revoked_at", "metadata", "artifacts"}
	releaseArtifactFields = []string{"release_artifact_id", "artifact_id", "platform", "arch", "installer_type", "requires_admin"}
	artifactFields        = []string{"artifact_id", "sha256", "size_bytes", "source_type"}
	policyFields          = []string{"policy_id", "product_id", "channel", "action", "conditions", "priority", "version"}
	blockedFields         = []string{"blocklist_id", "product_id", "blocked_version", "reason"}
	rolloutFields         = []string{"rollout_id", "product_id", "channel", "release_id", "percentage", "status"}
	entitlementFields     = []string{"entitlement_id", "product_id", "policy", "starts_at", "ends_at"}
	seatFields            = []string{"seat_assignment_id", "entitlement_id", "subject_type", "subject_id", "assigned_at", "revoked_at"}
	mirrorKeyFields       = []string{"mirror_id", "public_key"}
	deltaFields           = []string{"delta_id", "from_artifact_id", "to_artifact_id", "from_sha256", "to_sha256", "sha256", "size_bytes"}
)

// peekSchema finds the top-level schema number without reading the rest
// strictly, so a document of another schema is reported as such rather
// than as malformed. ok is false when there is no integer schema.
func peekSchema(s string) (schema int64, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, isLex := r.(*lexError); !isLex {
				panic(r)
			}
			schema, ok = 0, false
		}
	}()
	l := &lexer{s: s, idx: -1}
	l.expect('{')
	for first := true; ; {
		k, more := l.key(&first)
		if !more {
			return 0, false
		}
		if k == "schema" {
			return l.int(math.MinInt64, math.MaxInt64), true
		}
		l.skip(0)
	}
}

// decodeManifest reads a manifest strictly: every field present once,
// nothing unknown, every value of its type.
func decodeManifest(s string) (m *Manifest, err error) {
	defer catch(&err)
	l := &lexer{s: s, idx: -1}
	m = &Manifest{}
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "schema":
			l.seen(&mask, 0, k)
			m.Schema = int(l.int(math.MinInt32, math.MaxInt32))
		case "snapshot_id":
			l.seen(&mask, 1, k)
			m.SnapshotID = l.str()
		case "tenant_id":
			l.seen(&mask, 2, k)
			m.TenantID = l.str()
		case "sequence":
			l.seen(&mask, 3, k)
			m.Sequence = l.int(math.MinInt64, math.MaxInt64)
		case "created_at":
			l.seen(&mask, 4, k)
			m.CreatedAt = l.time()
		case "expires_at":
			l.seen(&mask, 5, k)
			m.ExpiresAt = l.time()
		case "previous":
			l.seen(&mask, 6, k)
			m.Previous = l.str()
		case "tenant":
			l.seen(&mask, 7, k)
			l.where = "tenant"
			decodeTenant(l, &m.Tenant)
		case "products":
			l.seen(&mask, 8, k)
			m.Products = list(l, k, decodeProduct)
		case "releases":
			l.seen(&mask, 9, k)
			m.Releases = list(l, k, decodeRelease)
		case "artifacts":
			l.seen(&mask, 10, k)
			m.Artifacts = list(l, k, decodeArtifact)
		case "policies":
			l.seen(&mask, 11, k)
			m.Policies = list(l, k, decodePolicy)
		case "blocked_versions":
			l.seen(&mask, 12, k)
			m.BlockedVersions = list(l, k, decodeBlocked)
		case "rollouts":
			l.seen(&mask, 13, k)
			m.Rollouts = list(l, k, decodeRollout)
		case "entitlements":
			l.seen(&mask, 14, k)
			m.Entitlements = list(l, k, decodeEntitlement)
		case "seat_assignments":
			l.seen(&mask, 15, k)
			m.SeatAssignments = list(l, k, decodeSeat)
		case "mirror_keys":
			l.seen(&mask, 16, k)
			m.MirrorKeys = list(l, k, decodeMirrorKey)
		case "deltas": // optional
			l.seen(&mask, 17, k)
			m.Deltas = list(l, k, decodeDelta)
		default:
			l.fail("unknown field")
		}
		l.where, l.idx = "", -1
	}
	l.missing(mask, manifestFields)
	l.end()
	return m, nil
}

// list reads an array of objects with one element reader; never nil.
// Elements go into fixed-size chunks first and are copied once into a
// slice of the exact length: growing one slice by doubling cost more than
// decoding itself for 100,000 releases.
func list[T any](l *lexer, name string, one func(*lexer, *T)) []T {
	const chunk = 4096
	l.where = name
	var full [][]T
	cur := make([]T, 0, 16)
	n := 0
	l.expect('[')
	for first := true; l.elem(&first); {
		l.idx = n
		if len(cur) == cap(cur) {
			if cap(cur) < chunk {
				cur = slices.Grow(cur, min(2*cap(cur), chunk)-len(cur))
			} else {
				full = append(full, cur)
				cur = make([]T, 0, chunk)
			}
		}
		cur = cur[:len(cur)+1]
		one(l, &cur[len(cur)-1])
		n++
	}
	if full == nil {
		return cur[:len(cur):len(cur)]
	}
	out := make([]T, 0, n)
	for _, c := range full {
		out = append(out, c...)
	}
	return append(out, cur...)
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func decodeTenant(l *lexer, t *Tenant) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "tenant_id":
			l.seen(&mask, 0, k)
			t.TenantID = l.str()
		case "name":
			l.seen(&mask, 1, k)
			t.Name = l.str()
		case "status":
			l.seen(&mask, 2, k)
			t.Status = l.str()
		case "metadata":
			l.seen(&mask, 3, k)
			t.Metadata = raw(l.object())
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, tenantFields)
}

func decodeProduct(l *lexer, p *Product) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "product_id":
			l.seen(&mask, 0, k)
			p.ProductID = l.str()
		case "name":
			l.seen(&mask, 1, k)
			p.Name = l.str()
		case "distribution":
			l.seen(&mask, 2, k)
			p.Distribution = l.str()
		case "metadata":
			l.seen(&mask, 3, k)
			p.Metadata = raw(l.object())
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, productFields)
}

func decodeRelease(l *lexer, r *Release) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "release_id":
			l.seen(&mask, 0, k)
			r.ReleaseID = l.str()
		case "product_id":
			l.seen(&mask, 1, k)
			r.ProductID = l.str()
		case "channel":
			l.seen(&mask, 2, k)
			r.Channel = l.str()
		case "version":
			l.seen(&mask, 3, k)
			r.Version = l.str()
		case "published_at":
			l.seen(&mask, 4, k)
			r.PublishedAt = l.time()
		case "status":
			l.seen(&mask, 5, k)
			r.Status = l.str()
		case "revoked_at":
			l.seen(&mask, 6, k)
			r.RevokedAt = l.timePtr()
		case "metadata":
			l.seen(&mask, 7, k)
			r.Metadata = raw(l.object())
		case "artifacts":
			l.seen(&mask, 8, k)
			r.Artifacts = releaseArtifacts(l)
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, releaseFields)
}

func releaseArtifacts(l *lexer) []ReleaseArtifact {
	out := []ReleaseArtifact{}
	l.expect('[')
	for first := true; l.elem(&first); {
		var a ReleaseArtifact
		var mask uint32
		l.expect('{')
		for first := true; ; {
			k, ok := l.key(&first)
			if !ok {
				break
			}
			switch k {
			case "release_artifact_id":
				l.seen(&mask, 0, k)
				a.ReleaseArtifactID = l.str()
			case "artifact_id":
				l.seen(&mask, 1, k)
				a.ArtifactID = l.str()
			case "platform":
				l.seen(&mask, 2, k)
				a.Platform = l.str()
			case "arch":
				l.seen(&mask, 3, k)
				a.Arch = l.str()
			case "installer_type":
				l.seen(&mask, 4, k)
				a.InstallerType = l.str()
			case "requires_admin":
				l.seen(&mask, 5, k)
				a.RequiresAdmin = l.bool()
			default:
				l.fail("unknown field")
			}
		}
		l.missing(mask, releaseArtifactFields)
		out = append(out, a)
	}
	return out
}

func decodeArtifact(l *lexer, a *Artifact) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "artifact_id":
			l.seen(&mask, 0, k)
			a.ArtifactID = l.str()
		case "sha256":
			l.seen(&mask, 1, k)
			a.SHA256 = l.str()
		case "size_bytes":
			l.seen(&mask, 2, k)
			a.SizeBytes = l.int(math.MinInt64, math.MaxInt64)
		case "source_type":
			l.seen(&mask, 3, k)
			a.SourceType = l.str()
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, artifactFields)
}

func decodePolicy(l *lexer, p *Policy) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "policy_id":
			l.seen(&mask, 0, k)
			p.PolicyID = l.str()
		case "product_id":
			l.seen(&mask, 1, k)
			p.ProductID = l.str()
		case "channel":
			l.seen(&mask, 2, k)
			p.Channel = l.str()
		case "action":
			l.seen(&mask, 3, k)
			p.Action = l.str()
		case "conditions":
			l.seen(&mask, 4, k)
			p.Conditions = raw(l.object())
		case "priority":
			l.seen(&mask, 5, k)
			p.Priority = int(l.int(math.MinInt32, math.MaxInt32))
		case "version":
			l.seen(&mask, 6, k)
			p.Version = int(l.int(math.MinInt32, math.MaxInt32))
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, policyFields)
}

func decodeBlocked(l *lexer, b *BlockedVersion) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "blocklist_id":
			l.seen(&mask, 0, k)
			b.BlocklistID = l.str()
		case "product_id":
			l.seen(&mask, 1, k)
			b.ProductID = l.str()
		case "blocked_version":
			l.seen(&mask, 2, k)
			b.BlockedVersion = l.str()
		case "reason":
			l.seen(&mask, 3, k)
			b.Reason = l.str()
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, blockedFields)
}

func decodeRollout(l *lexer, r *Rollout) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "rollout_id":
			l.seen(&mask, 0, k)
			r.RolloutID = l.str()
		case "product_id":
			l.seen(&mask, 1, k)
			r.ProductID = l.str()
		case "channel":
			l.seen(&mask, 2, k)
			r.Channel = l.str()
		case "release_id":
			l.seen(&mask, 3, k)
			r.ReleaseID = l.str()
		case "percentage":
			l.seen(&mask, 4, k)
			r.Percentage = l.float()
		case "status":
			l.seen(&mask, 5, k)
			r.Status = l.str()
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, rolloutFields)
}

func decodeEntitlement(l *lexer, e *Entitlement) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "entitlement_id":
			l.seen(&mask, 0, k)
			e.EntitlementID = l.str()
		case "product_id":
			l.seen(&mask, 1, k)
			e.ProductID = l.str()
		case "policy":
			l.seen(&mask, 2, k)
			e.Policy = raw(l.object())
		case "starts_at":
			l.seen(&mask, 3, k)
			e.StartsAt = l.time()
		case "ends_at":
			l.seen(&mask, 4, k)
			e.EndsAt = l.timePtr()
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, entitlementFields)
}

func decodeSeat(l *lexer, s *SeatAssignment) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "seat_assignment_id":
			l.seen(&mask, 0, k)
			s.SeatAssignmentID = l.str()
		case "entitlement_id":
			l.seen(&mask, 1, k)
			s.EntitlementID = l.str()
		case "subject_type":
			l.seen(&mask, 2, k)
			s.SubjectType = l.str()
		case "subject_id":
			l.seen(&mask, 3, k)
			s.SubjectID = l.str()
		case "assigned_at":
			l.seen(&mask, 4, k)
			s.AssignedAt = l.time()
		case "revoked_at":
			l.seen(&mask, 5, k)
			s.RevokedAt = l.timePtr()
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, seatFields)
}

func decodeMirrorKey(l *lexer, k *MirrorKey) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		key, ok := l.key(&first)
		if !ok {
			break
		}
		switch key {
		case "mirror_id":
			l.seen(&mask, 0, key)
			k.MirrorID = l.str()
		case "public_key":
			l.seen(&mask, 1, key)
			k.PublicKey = l.str()
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, mirrorKeyFields)
}

func decodeDelta(l *lexer, d *Delta) {
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "delta_id":
			l.seen(&mask, 0, k)
			d.DeltaID = l.str()
		case "from_artifact_id":
			l.seen(&mask, 1, k)
			d.FromArtifactID = l.str()
		case "to_artifact_id":
			l.seen(&mask, 2, k)
			d.ToArtifactID = l.str()
		case "from_sha256":
			l.seen(&mask, 3, k)
			d.FromSHA256 = l.str()
		case "to_sha256":
			l.seen(&mask, 4, k)
			d.ToSHA256 = l.str()
		case "sha256":
			l.seen(&mask, 5, k)
			d.SHA256 = l.str()
		case "size_bytes":
			l.seen(&mask, 6, k)
			d.SizeBytes = l.int(0, math.MaxInt64)
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, deltaFields)
}
