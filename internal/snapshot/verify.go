package snapshot

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/outpost/outpost/internal/catalog"
)

// Verify checks envelope bytes against the pinned trust and the held
// snapshot and returns the manifest it carries. Checks run in order, each
// only once the previous passed: size cap, envelope shape, payload type,
// signatures (threshold of distinct trusted keys over the PAE), schema,
// strict manifest decoding, duplicate ids, dangling references, field
// values, tenant, expiry, then rollback, fork and the previous chain
// against held. A manifest at held's sequence with held's hash is
// returned without error (nothing new). Every error wraps ErrVerification
// and one specific sentinel.
func Verify(envelope []byte, t Trust, held *Held, now time.Time) (*Manifest, error) {
	const env = "snapshot envelope"
	maxSize := t.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if int64(len(envelope)) > maxSize {
		return nil, reject(ErrTooLarge, env, "%d bytes, more than the cap of %d", len(envelope), maxSize)
	}
	e, err := decodeEnvelope(envelope)
	if err != nil {
		return nil, reject(ErrMalformed, env, "%v", err)
	}
	if e.payloadType != PayloadType {
		return nil, reject(ErrPayloadType, env, "payload type %q, want %q", e.payloadType, PayloadType)
	}
	// The manifest is decoded on the other core while the signatures are
	// checked: its result, error included, is looked at only once they
	// verified. The decoder is built for hostile input (FuzzVerify,
	// FuzzDecodeManifest); it reads the payload, which nothing changes.
	decoded := make(chan decodeResult, 1)
	go func() { decoded <- decodePayload(e.payload) }()
	sigErr := checkSignatures(e, t)
	d := <-decoded
	if sigErr != nil {
		return nil, sigErr
	}

	// The payload is authentic from here on; it is still checked as if it
	// were not, since a compromised or buggy signer must not crash us.
	if d.err != nil {
		return nil, d.err
	}
	m := d.m
	subject := fmt.Sprintf("snapshot %d", m.Sequence)
	if err := checkStructure(m, subject); err != nil {
		return nil, err
	}
	if err := checkState(m, envelope, t, held, now, subject); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeResult is a decoded manifest or the rejection that explains why
// there is none.
type decodeResult struct {
	m   *Manifest
	err error
}

// decodePayload checks and decodes the manifest: UTF-8, schema, strict
// decoding. A panic (a decoder bug) is a rejection, not a crash, since
// this runs before the signature is known to verify.
func decodePayload(payload []byte) (d decodeResult) {
	const env = "snapshot envelope"
	defer func() {
		if r := recover(); r != nil {
			d = decodeResult{err: reject(ErrMalformed, env, "manifest: decoder failure: %v", r)}
		}
	}()
	if !utf8.Valid(payload) {
		return decodeResult{err: reject(ErrMalformed, env, "manifest is not valid UTF-8")}
	}
	// The manifest's strings point into the payload, which nothing else
	// holds or changes: no copy.
	doc := unsafe.String(unsafe.SliceData(payload), len(payload))
	schema, ok := peekSchema(doc)
	if !ok {
		return decodeResult{err: reject(ErrMalformed, env, "manifest has no integer schema field")}
	}
	if schema != Schema {
		return decodeResult{err: reject(ErrSchema, env, "manifest schema %d, this verifier reads schema %d", schema, Schema)}
	}
	m, err := decodeManifest(doc)
	if err != nil {
		return decodeResult{err: reject(ErrMalformed, env, "manifest: %v", err)}
	}
	return decodeResult{m: m}
}

// checkSignatures counts distinct trusted keys whose signature verifies
// over the PAE. Keys are indexed by the keyid computed from the pinned
// public key, so a mislabelled pin cannot vouch for another key.
func checkSignatures(e *rawEnvelope, t Trust) error {
	const env = "snapshot envelope"
	trusted := make(map[string]ed25519.PublicKey, len(t.Keys))
	for _, pub := range t.Keys {
		if len(pub) == ed25519.PublicKeySize {
			trusted[KeyID(pub)] = pub
		}
	}
	threshold := max(t.Threshold, 1)
	valid := make(map[string]bool, threshold)
	var bad, untrusted []string
	for _, s := range e.sigs {
		if len(valid) >= threshold {
			break // enough: do not hash a 60 MB payload again for nothing
		}
		pub, ok := trusted[s.KeyID]
		if !ok {
			untrusted = append(untrusted, s.KeyID)
			continue
		}
		if valid[s.KeyID] {
			continue // the same key twice counts once
		}
		if len(s.Sig) == ed25519.SignatureSize && ed25519.Verify(pub, e.pae, s.Sig) {
			valid[s.KeyID] = true
		} else {
			bad = append(bad, s.KeyID)
		}
	}
	switch {
	case len(valid) >= threshold:
		return nil
	case len(bad) > 0:
		return reject(ErrSignature, env, "signature by trusted key %s does not verify (%d of %d required signatures valid)", short(bad[0]), len(valid), threshold)
	case len(valid) == 0 && len(untrusted) > 0:
		return reject(ErrUntrustedKey, env, "signed only by untrusted keys (%s)", short(untrusted[0]))
	default:
		return reject(ErrThreshold, env, "%d valid signatures by trusted keys, %d required", len(valid), threshold)
	}
}

func short(keyID string) string {
	if len(keyID) > 16 {
		return keyID[:16]
	}
	return keyID
}

// checkStructure checks field values, duplicate ids and references
// between lists. The two halves read m only and run at once (there are
// two cores); a bad value is reported before a duplicate or dangling id.
func checkStructure(m *Manifest, subject string) error {
	var refs error
	var wg sync.WaitGroup
	wg.Go(func() { refs = checkRefs(m, subject) })
	vals := checkValues(m, subject)
	wg.Wait()
	if vals != nil {
		return vals
	}
	return refs
}

// checkValues checks required fields, formats and enums.
func checkValues(m *Manifest, subject string) error {
	bad := func(format string, args ...any) error {
		return reject(ErrMalformed, subject, format, args...)
	}
	if m.Sequence < 1 {
		return bad("sequence %d, must be at least 1", m.Sequence)
	}
	if m.SnapshotID == "" {
		return bad("snapshot_id is empty")
	}
	if m.TenantID == "" {
		return bad("tenant_id is empty")
	}
	if !m.ExpiresAt.After(m.CreatedAt) {
		return bad("expires_at %s is not after created_at %s", m.ExpiresAt.Format(time.RFC3339), m.CreatedAt.Format(time.RFC3339))
	}
	if m.Previous != "" && !validHex64(m.Previous) {
		return bad("previous must be empty or 64 lowercase hex characters")
	}
	if m.Tenant.TenantID != m.TenantID {
		return bad("tenant.tenant_id %q differs from tenant_id %q", m.Tenant.TenantID, m.TenantID)
	}
	if m.Tenant.Name == "" {
		return bad("tenant.name is empty")
	}
	if !oneOf(m.Tenant.Status, catalog.TenantActive, catalog.TenantSuspended, catalog.TenantDeleted) {
		return bad("tenant.status %q is not active, suspended or deleted", m.Tenant.Status)
	}
	for i := range m.Products {
		p := &m.Products[i]
		switch {
		case p.ProductID == "":
			return bad("products[%d].product_id is empty", i)
		case p.Name == "":
			return bad("products[%d].name is empty", i)
		case !oneOf(p.Distribution, catalog.DistributionLicensed, catalog.DistributionOpen):
			return bad("products[%d].distribution %q is not licensed or open", i, p.Distribution)
		}
	}
	for i := range m.Releases {
		r := &m.Releases[i]
		switch {
		case r.ReleaseID == "":
			return bad("releases[%d].release_id is empty", i)
		case r.ProductID == "":
			return bad("releases[%d].product_id is empty", i)
		case r.Channel == "":
			return bad("releases[%d].channel is empty", i)
		case r.Version == "":
			return bad("releases[%d].version is empty", i)
		case r.Status != catalog.ReleaseActive && r.Status != catalog.ReleaseRevoked:
			return bad("releases[%d].status %q is not ACTIVE or REVOKED", i, r.Status)
		}
		for j := range r.Artifacts {
			a := &r.Artifacts[j]
			switch {
			case a.ReleaseArtifactID == "":
				return bad("releases[%d].artifacts[%d].release_artifact_id is empty", i, j)
			case a.ArtifactID == "":
				return bad("releases[%d].artifacts[%d].artifact_id is empty", i, j)
			case a.Platform == "" || a.Arch == "" || a.InstallerType == "":
				return bad("releases[%d].artifacts[%d]: platform, arch and installer_type are required", i, j)
			}
		}
	}
	for i := range m.Artifacts {
		a := &m.Artifacts[i]
		switch {
		case a.ArtifactID == "":
			return bad("artifacts[%d].artifact_id is empty", i)
		case !validHex64(a.SHA256):
			return bad("artifacts[%d].sha256 must be 64 lowercase hex characters", i)
		case a.SizeBytes < 0:
			return bad("artifacts[%d].size_bytes %d is negative", i, a.SizeBytes)
		case a.SourceType != catalog.SourceManaged && a.SourceType != catalog.SourceExternal:
			return bad("artifacts[%d].source_type %q is not MANAGED or EXTERNAL", i, a.SourceType)
		}
	}
	for i := range m.Policies {
		p := &m.Policies[i]
		switch {
		case p.PolicyID == "":
			return bad("policies[%d].policy_id is empty", i)
		case p.ProductID == "":
			return bad("policies[%d].product_id is empty", i)
		case p.Channel == "":
			return bad("policies[%d].channel is empty", i)
		case !slices.Contains(catalog.Actions, p.Action):
			return bad("policies[%d].action %q is not NONE, NOTIFY, DOWNLOAD or INSTALL", i, p.Action)
		}
	}
	for i := range m.BlockedVersions {
		b := &m.BlockedVersions[i]
		switch {
		case b.BlocklistID == "":
			return bad("blocked_versions[%d].blocklist_id is empty", i)
		case b.ProductID == "":
			return bad("blocked_versions[%d].product_id is empty", i)
		case b.BlockedVersion == "":
			return bad("blocked_versions[%d].blocked_version is empty", i)
		}
	}
	for i := range m.Rollouts {
		r := &m.Rollouts[i]
		switch {
		case r.RolloutID == "":
			return bad("rollouts[%d].rollout_id is empty", i)
		case r.ProductID == "":
			return bad("rollouts[%d].product_id is empty", i)
		case r.Channel == "":
			return bad("rollouts[%d].channel is empty", i)
		case r.ReleaseID == "":
			return bad("rollouts[%d].release_id is empty", i)
		case math.IsNaN(r.Percentage) || r.Percentage < 0 || r.Percentage > 100:
			return bad("rollouts[%d].percentage %v is not between 0 and 100", i, r.Percentage)
		case !oneOf(r.Status, catalog.RolloutActive, catalog.RolloutPaused, catalog.RolloutCompleted, catalog.RolloutKilled):
			return bad("rollouts[%d].status %q is not active, paused, completed or killed", i, r.Status)
		}
	}
	for i := range m.Entitlements {
		e := &m.Entitlements[i]
		switch {
		case e.EntitlementID == "":
			return bad("entitlements[%d].entitlement_id is empty", i)
		case e.ProductID == "":
			return bad("entitlements[%d].product_id is empty", i)
		case e.EndsAt != nil && !e.EndsAt.After(e.StartsAt):
			return bad("entitlements[%d].ends_at is not after starts_at", i)
		}
	}
	for i := range m.SeatAssignments {
		s := &m.SeatAssignments[i]
		switch {
		case s.SeatAssignmentID == "":
			return bad("seat_assignments[%d].seat_assignment_id is empty", i)
		case s.EntitlementID == "":
			return bad("seat_assignments[%d].entitlement_id is empty", i)
		case !slices.Contains(catalog.SubjectTypes, s.SubjectType):
			return bad("seat_assignments[%d].subject_type %q is not user, machine or device", i, s.SubjectType)
		case s.SubjectID == "":
			return bad("seat_assignments[%d].subject_id is empty", i)
		}
	}
	for i := range m.MirrorKeys {
		k := &m.MirrorKeys[i]
		if k.MirrorID == "" {
			return bad("mirror_keys[%d].mirror_id is empty", i)
		}
		if pub, err := base64.StdEncoding.Strict().DecodeString(k.PublicKey); err != nil || len(pub) != ed25519.PublicKeySize {
			return bad("mirror_keys[%d].public_key is not base64 of a 32-byte ed25519 key", i)
		}
	}
	return nil
}

// checkRefs checks duplicate ids in every list, then references between
// lists.
func checkRefs(m *Manifest, subject string) error {
	nRA := 0
	for i := range m.Releases {
		nRA += len(m.Releases[i].Artifacts)
	}

	// Duplicate ids.
	dup := func(list, id string) error {
		return reject(ErrDuplicateID, subject, "%s: id %q appears twice", list, id)
	}
	products, d := index(m.Products, func(p *Product) string { return p.ProductID })
	if d != "" {
		return dup("products", d)
	}
	releases, d := index(m.Releases, func(r *Release) string { return r.ReleaseID })
	if d != "" {
		return dup("releases", d)
	}
	artifacts, d := index(m.Artifacts, func(a *Artifact) string { return a.ArtifactID })
	if d != "" {
		return dup("artifacts", d)
	}
	ras := make([]string, 0, nRA)
	for i := range m.Releases {
		for j := range m.Releases[i].Artifacts {
			ras = append(ras, m.Releases[i].Artifacts[j].ReleaseArtifactID)
		}
	}
	if _, d := index(ras, func(s *string) string { return *s }); d != "" {
		return dup("release artifacts", d)
	}
	if _, d := index(m.Policies, func(p *Policy) string { return p.PolicyID }); d != "" {
		return dup("policies", d)
	}
	if _, d := index(m.BlockedVersions, func(b *BlockedVersion) string { return b.BlocklistID }); d != "" {
		return dup("blocked_versions", d)
	}
	if _, d := index(m.Rollouts, func(r *Rollout) string { return r.RolloutID }); d != "" {
		return dup("rollouts", d)
	}
	entitlements, d := index(m.Entitlements, func(e *Entitlement) string { return e.EntitlementID })
	if d != "" {
		return dup("entitlements", d)
	}
	if _, d := index(m.SeatAssignments, func(s *SeatAssignment) string { return s.SeatAssignmentID }); d != "" {
		return dup("seat_assignments", d)
	}
	if _, d := index(m.MirrorKeys, func(k *MirrorKey) string { return k.MirrorID }); d != "" {
		return dup("mirror_keys", d)
	}

	// Dangling references.
	dangling := func(format string, args ...any) error {
		return reject(ErrDangling, subject, format, args...)
	}
	for i := range m.Releases {
		r := &m.Releases[i]
		if !products.has(r.ProductID) {
			return dangling("releases[%d] (%s) names product %q, which is not listed", i, r.ReleaseID, r.ProductID)
		}
		for j := range r.Artifacts {
			if id := r.Artifacts[j].ArtifactID; !artifacts.has(id) {
				return dangling("releases[%d].artifacts[%d] names artifact %q, which is not listed", i, j, id)
			}
		}
	}
	for i := range m.Policies {
		if id := m.Policies[i].ProductID; !products.has(id) {
			return dangling("policies[%d] names product %q, which is not listed", i, id)
		}
	}
	for i := range m.BlockedVersions {
		if id := m.BlockedVersions[i].ProductID; !products.has(id) {
			return dangling("blocked_versions[%d] names product %q, which is not listed", i, id)
		}
	}
	for i := range m.Rollouts {
		r := &m.Rollouts[i]
		if !products.has(r.ProductID) {
			return dangling("rollouts[%d] names product %q, which is not listed", i, r.ProductID)
		}
		if !releases.has(r.ReleaseID) {
			return dangling("rollouts[%d] names release %q, which is not listed", i, r.ReleaseID)
		}
	}
	for i := range m.Entitlements {
		if id := m.Entitlements[i].ProductID; !products.has(id) {
			return dangling("entitlements[%d] names product %q, which is not listed", i, id)
		}
	}
	for i := range m.SeatAssignments {
		if id := m.SeatAssignments[i].EntitlementID; !entitlements.has(id) {
			return dangling("seat_assignments[%d] names entitlement %q, which is not listed", i, id)
		}
	}
	return checkDeltas(m, subject)
}

// checkDeltas checks the optional delta list: ids unique, hashes well
// formed, both artifacts listed with the hashes the delta names.
func checkDeltas(m *Manifest, subject string) error {
	if len(m.Deltas) == 0 {
		return nil
	}
	if _, d := index(m.Deltas, func(x *Delta) string { return x.DeltaID }); d != "" {
		return reject(ErrDuplicateID, subject, "deltas: id %q appears twice", d)
	}
	sha := make(map[string]string, len(m.Artifacts))
	for i := range m.Artifacts {
		sha[m.Artifacts[i].ArtifactID] = m.Artifacts[i].SHA256
	}
	for i := range m.Deltas {
		d := &m.Deltas[i]
		switch {
		case d.DeltaID == "":
			return reject(ErrMalformed, subject, "deltas[%d].delta_id is empty", i)
		case !validHex64(d.SHA256) || !validHex64(d.FromSHA256) || !validHex64(d.ToSHA256):
			return reject(ErrMalformed, subject, "deltas[%d]: sha256, from_sha256 and to_sha256 must be 64 lowercase hex characters", i)
		case d.SizeBytes <= 0:
			return reject(ErrMalformed, subject, "deltas[%d].size_bytes %d is not positive", i, d.SizeBytes)
		case d.FromSHA256 == d.ToSHA256:
			return reject(ErrMalformed, subject, "deltas[%d] rebuilds its own base", i)
		}
		if s, ok := sha[d.FromArtifactID]; !ok || s != d.FromSHA256 {
			return reject(ErrDangling, subject, "deltas[%d] names from artifact %q, which is not listed with sha256 %s", i, d.FromArtifactID, d.FromSHA256)
		}
		if s, ok := sha[d.ToArtifactID]; !ok || s != d.ToSHA256 {
			return reject(ErrDangling, subject, "deltas[%d] names to artifact %q, which is not listed with sha256 %s", i, d.ToArtifactID, d.ToSHA256)
		}
	}
	return nil
}

// checkState checks the snapshot against who we are, the clock and what
// we hold: tenant, expiry, rollback, fork, previous chain.
func checkState(m *Manifest, envelope []byte, t Trust, held *Held, now time.Time, subject string) error {
	if m.TenantID != t.TenantID {
		return reject(ErrTenant, subject, "for tenant %q, this verifier serves tenant %q", m.TenantID, t.TenantID)
	}
	if !m.ExpiresAt.After(now) {
		return reject(ErrExpired, subject, "expired at %s (now %s)", m.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if held == nil {
		return nil
	}
	switch {
	case m.Sequence < held.Sequence:
		return reject(ErrRollback, subject, "sequence is older than the held snapshot (held %d)", held.Sequence)
	case m.Sequence == held.Sequence:
		if h := Hash(envelope); h != held.Hash {
			return reject(ErrFork, subject, "same sequence as the held snapshot with different bytes (held %s, got %s)", short(held.Hash), short(h))
		}
	case m.Sequence == held.Sequence+1:
		if m.Previous != held.Hash {
			return reject(ErrPreviousChain, subject, "previous %q does not chain to held snapshot %d (%s)", short(m.Previous), held.Sequence, short(held.Hash))
		}
	default:
		// Sequences were skipped: the chain cannot be checked, but the
		// snapshot must still claim a predecessor.
		if m.Previous == "" {
			return reject(ErrPreviousChain, subject, "previous is empty, but the snapshot follows held snapshot %d", held.Sequence)
		}
	}
	return nil
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }

// idIndex answers membership for a list of ids: by binary search when the
// list is strictly sorted (as Build writes it), else by a map.
type idIndex struct {
	sorted []string
	set    map[string]struct{}
}

func (x idIndex) has(id string) bool {
	if x.set != nil {
		_, ok := x.set[id]
		return ok
	}
	_, ok := slices.BinarySearch(x.sorted, id)
	return ok
}

// index builds an idIndex of list and returns the first duplicate id, if
// any.
func index[T any](list []T, id func(*T) string) (idIndex, string) {
	ids := make([]string, len(list))
	sorted := true
	for i := range list {
		ids[i] = id(&list[i])
		if i > 0 && ids[i] <= ids[i-1] {
			sorted = false
		}
	}
	if sorted {
		return idIndex{sorted: ids}, ""
	}
	set := make(map[string]struct{}, len(ids))
	for _, s := range ids {
		if _, ok := set[s]; ok {
			return idIndex{}, s
		}
		set[s] = struct{}{}
	}
	return idIndex{set: set}, ""
}

// validHex64 reports whether s is 64 lowercase hex characters (a sha256).
func validHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
