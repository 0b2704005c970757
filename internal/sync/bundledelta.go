package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// noDeltasHint ends the message of a bundle refused over a delta: an
// air-gapped mirror has no network to fall back to.
const noDeltasHint = "nothing was changed; ask for a bundle without deltas (controlplane bundle export --no-deltas)"

// importDeltas indexes a verified manifest for the deltas a bundle
// carries instead of artifacts (docs/deltas.md, "Bundles").
type importDeltas struct {
	bySHA map[string]snapshot.Delta    // a delta's own sha256 → the delta
	arts  map[string]snapshot.Artifact // an artifact's sha256 → the artifact
}

func importDeltasOf(m *snapshot.Manifest) importDeltas {
	p := importDeltas{bySHA: map[string]snapshot.Delta{}, arts: map[string]snapshot.Artifact{}}
	for _, a := range m.Artifacts {
		p.arts[a.SHA256] = a
	}
	for _, d := range m.Deltas {
		p.bySHA[d.SHA256] = d
	}
	return p
}

// takeDelta takes one delta entry of a bundle (name, size bytes read
// from body) for the signed delta d: when d's target is needed and not
// yet held, it rebuilds it from the base the mirror holds and commits it
// to the cache only when it verifies (DryRun: only verifies). A delta
// whose base the mirror lacks, that does not match its signed sha256 and
// size, or whose rebuild does not verify refuses the bundle.
func (s *Syncer) takeDelta(ctx context.Context, body io.Reader, name string, size int64, d snapshot.Delta, p importDeltas, needed, taken map[string]bool, rep *ImportReport) error {
	if size != d.SizeBytes {
		return fmt.Errorf("%w: %s is %d bytes, the signed delta %s is %d; %s", bundle.ErrInvalid, name, size, d.DeltaID, d.SizeBytes, noDeltasHint)
	}
	a, okA := p.arts[d.ToSHA256]
	base, okB := p.arts[d.FromSHA256]
	switch {
	case !okA || !okB:
		return fmt.Errorf("%w: %s: delta %s names artifacts the metadata does not list", bundle.ErrInvalid, name, d.DeltaID)
	case !needed[d.ToSHA256] || taken[d.ToSHA256]:
		rep.Skipped++
		_, err := io.Copy(io.Discard, body)
		return err
	case s.cache.Has(a.SHA256, a.SizeBytes):
		_, err := io.Copy(io.Discard, body)
		return err
	case !s.cache.Has(base.SHA256, base.SizeBytes):
		return fmt.Errorf("%w: %s rebuilds artifact %s from artifact %s, which this mirror does not hold; %s",
			bundle.ErrInvalid, name, a.ArtifactID, base.ArtifactID, noDeltasHint)
	}
	if err := s.rebuildBundled(ctx, body, d, a, base.SizeBytes, rep.DryRun); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: artifact %s could not be rebuilt from delta %s (%s): %w; %s",
			bundle.ErrInvalid, a.ArtifactID, d.DeltaID, name, err, noDeltasHint)
	}
	taken[a.SHA256] = true
	rep.Imported++
	rep.Rebuilt++
	rep.Bytes += d.SizeBytes
	return nil
}

// rebuildBundled spools the delta to a temp file (checking its signed
// sha256 and size), rebuilds a from it and the cached base, and commits
// a (then the delta, to serve to clients) to the cache; with dryRun it
// only verifies the rebuilt bytes. Nothing reaches the cache unless the
// rebuild verified.
func (s *Syncer) rebuildBundled(ctx context.Context, body io.Reader, d snapshot.Delta, a snapshot.Artifact, baseSize int64, dryRun bool) error {
	f, err := os.CreateTemp(s.cache.TempDir(), "bundle-delta-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, d.SizeBytes+1))
	if err != nil {
		return err
	}
	if n != d.SizeBytes || hex.EncodeToString(h.Sum(nil)) != d.SHA256 {
		return fmt.Errorf("the delta does not match its signed sha256 or size")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if dryRun {
		want, err := deltaWant(a, d, baseSize)
		if err != nil {
			return err
		}
		bf, err := s.cache.Open(d.FromSHA256)
		if err != nil {
			return err
		}
		defer bf.Close()
		return delta.Apply(ctx, io.Discard, f, bf, want, delta.ApplyOptions{BaseVerified: true})
	}
	if err := s.rebuildFrom(ctx, a, d, baseSize, f); err != nil {
		return err
	}
	if !s.cache.Has(d.SHA256, d.SizeBytes) {
		// Kept for the mirror's clients; a failure costs them the delta only.
		_, err := f.Seek(0, io.SeekStart)
		if err == nil {
			err = s.cache.Ingest(ctx, d.SHA256, d.SizeBytes, f)
		}
		if err != nil {
			s.cfg.Logger.Warn("delta not cached", "delta_id", d.DeltaID, "err", err)
		}
	}
	s.cfg.Logger.Info("artifact rebuilt from a bundled delta", "artifact_id", a.ArtifactID, "delta_id", d.DeltaID,
		"delta_bytes", d.SizeBytes, "artifact_bytes", a.SizeBytes)
	return nil
}

// bundledDelta maps a TUF bundle entry named as a delta target
// ("targets/<product>/<sha256>.delta-<from_sha256>-<to_sha256>") to the
// signed delta it claims to be; ok is false for any other name.
func bundledDelta(entry string, p importDeltas) (snapshot.Delta, bool, error) {
	rest, _ := strings.CutPrefix(entry, tuf.TargetsDir+"/")
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return snapshot.Delta{}, false, nil
	}
	sum, base, ok := strings.Cut(rest[i+1:], ".")
	if !ok {
		return snapshot.Delta{}, false, nil
	}
	if _, from, to, ok := tuf.ParseDeltaTarget(rest[:i+1] + base); ok {
		d, listed := p.bySHA[sum]
		if !listed || d.FromSHA256 != from || d.ToSHA256 != to {
			return d, true, fmt.Errorf("%w: %s is not a delta the verified metadata lists", bundle.ErrInvalid, entry)
		}
		return d, true, nil
	}
	return snapshot.Delta{}, false, nil
}
