package client

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/outpost/outpost/internal/snapshot"
)

// releaseActive is the manifest status of a release that may be installed.
const releaseActive = "ACTIVE"

// requireTrust reports what Download and VerifyLease need to verify.
func (c *Client) requireTrust() error {
	if len(c.trust.Keys) == 0 {
		return fmt.Errorf("%w: no trusted vendor keys (WithTrustedKeys)", ErrConfig)
	}
	if c.trust.Threshold > len(c.trust.Keys) {
		return fmt.Errorf("%w: threshold %d exceeds the %d trusted keys", ErrConfig, c.trust.Threshold, len(c.trust.Keys))
	}
	if c.trust.TenantID == "" {
		return fmt.Errorf("%w: no tenant pinned (WithTenant)", ErrConfig)
	}
	return nil
}

// validID accepts the id shape of the catalog (prefix_base32) and nothing
// that could escape a URL path segment.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// VerifiedSnapshot fetches the snapshot envelope snapshotID from the server
// (GET /v1/snapshots/{id}) and verifies it against the pinned keys and
// tenant. Any failure to verify wraps ErrVerification.
func (c *Client) VerifiedSnapshot(ctx context.Context, snapshotID string) (*snapshot.Manifest, error) {
	if err := c.requireTrust(); err != nil {
		return nil, err
	}
	if !validID(snapshotID) {
		return nil, fmt.Errorf("%w: snapshot id %q is malformed", ErrVerification, short(snapshotID))
	}
	env, err := c.fetchEnvelope(ctx, "/v1/snapshots/"+snapshotID)
	if err != nil {
		return nil, fmt.Errorf("fetch snapshot %s: %w", snapshotID, err)
	}
	now := c.now()
	m, err := snapshot.Verify(env, c.trust, nil, now)
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot %s: %w", ErrVerification, snapshotID, err)
	}
	// Expiry checked against a clock that is behind proves nothing.
	if err := snapshot.CheckClock(m, now); err != nil {
		return nil, fmt.Errorf("%w: snapshot %s: %w", ErrVerification, snapshotID, err)
	}
	if m.SnapshotID != snapshotID {
		return nil, fmt.Errorf("%w: asked for snapshot %s, the signed manifest is %s", ErrVerification, snapshotID, m.SnapshotID)
	}
	return m, nil
}

// fetchEnvelope reads an envelope, never more than the size cap, retried
// as WithRequestRetries says.
func (c *Client) fetchEnvelope(ctx context.Context, path string) ([]byte, error) {
	var b []byte
	err := c.idempotent(ctx, func() error {
		var err error
		b, err = c.fetchEnvelopeOnce(ctx, path)
		return err
	})
	return b, err
}

func (c *Client) fetchEnvelopeOnce(ctx context.Context, path string) ([]byte, error) {
	u, err := c.resolve(path)
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != 200 {
		return nil, responseError(resp)
	}
	max := c.trust.MaxSize
	if max <= 0 {
		max = snapshot.DefaultMaxSize
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("%w: %w: %d bytes, cap %d", ErrVerification, snapshot.ErrTooLarge, resp.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read envelope: %w: %w", ErrNetwork, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %w: more than %d bytes", ErrVerification, snapshot.ErrTooLarge, max)
	}
	return b, nil
}

// matchManifest checks that a decision says exactly what the verified
// manifest says: the same snapshot, an ACTIVE release with the same
// product, channel and version, carrying the artifact, whose sha256 and size
// are the signed ones. It is pure.
func matchManifest(d *Decision, m *snapshot.Manifest) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: decision disagrees with signed snapshot %s: %s", ErrVerification, m.SnapshotID, fmt.Sprintf(format, args...))
	}
	if d.Snapshot == nil || d.Release == nil || d.Artifact == nil {
		return fail("decision names no snapshot, release or artifact")
	}
	if d.Snapshot.SnapshotID != m.SnapshotID {
		return fail("snapshot_id %s", d.Snapshot.SnapshotID)
	}
	if d.Snapshot.Sequence != m.Sequence {
		return fail("sequence %d, signed %d", d.Snapshot.Sequence, m.Sequence)
	}
	var rel *snapshot.Release
	for i := range m.Releases {
		if m.Releases[i].ReleaseID == d.Release.ReleaseID {
			rel = &m.Releases[i]
			break
		}
	}
	if rel == nil {
		return fail("release %s is not in it", d.Release.ReleaseID)
	}
	if rel.Status != releaseActive {
		return fail("release %s is %s", rel.ReleaseID, rel.Status)
	}
	if rel.ProductID != d.Release.ProductID || rel.Channel != d.Release.Channel || rel.Version != d.Release.Version {
		return fail("release %s is %s/%s %s, decision says %s/%s %s", rel.ReleaseID,
			rel.ProductID, rel.Channel, rel.Version, d.Release.ProductID, d.Release.Channel, d.Release.Version)
	}
	var ra *snapshot.ReleaseArtifact
	for i := range rel.Artifacts {
		if rel.Artifacts[i].ArtifactID == d.Artifact.ArtifactID {
			ra = &rel.Artifacts[i]
			break
		}
	}
	if ra == nil {
		return fail("artifact %s is not an artifact of release %s", d.Artifact.ArtifactID, rel.ReleaseID)
	}
	if ra.InstallerType != d.Artifact.InstallerType || ra.RequiresAdmin != d.Artifact.RequiresAdmin {
		return fail("artifact %s installer_type/requires_admin differ", ra.ArtifactID)
	}
	var art *snapshot.Artifact
	for i := range m.Artifacts {
		if m.Artifacts[i].ArtifactID == d.Artifact.ArtifactID {
			art = &m.Artifacts[i]
			break
		}
	}
	if art == nil {
		return fail("artifact %s is not in it", d.Artifact.ArtifactID)
	}
	if !strings.EqualFold(art.SHA256, d.Artifact.SHA256) {
		return fail("artifact %s sha256 %s, signed %s", art.ArtifactID, d.Artifact.SHA256, art.SHA256)
	}
	if art.SizeBytes != d.Artifact.SizeBytes {
		return fail("artifact %s size_bytes %d, signed %d", art.ArtifactID, d.Artifact.SizeBytes, art.SizeBytes)
	}
	return nil
}
