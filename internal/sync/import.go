package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/snapshot"
)

// ImportReport says what an import did, or with DryRun what it would do.
type ImportReport struct {
	DryRun       bool   `json:"dry_run"`
	SnapshotID   string `json:"snapshot_id"`
	Sequence     int64  `json:"sequence"`
	HeldSequence int64  `json:"held_sequence"`
	Changed      bool   `json:"changed"` // the snapshot is (would be) committed
	// Refreshed (trust: tuf): the version held, with a fresher timestamp
	// that is (would be) served from now on.
	Refreshed bool `json:"refreshed,omitempty"`
	Needed    int  `json:"needed"`   // artifacts the mirror serves from it
	Imported  int  `json:"imported"` // taken from the bundle (or would be)
	// Rebuilt counts the imported artifacts rebuilt from a delta the
	// bundle carried and a base the mirror holds.
	Rebuilt int      `json:"rebuilt,omitempty"`
	Cached  int      `json:"cached"`  // already in the cache
	Skipped int      `json:"skipped"` // in the bundle but not for this mirror's channels
	Bytes   int64    `json:"bytes"`
	Missing []string `json:"missing,omitempty"`
	// What the bundle's snapshot says: when it expires, how many
	// releases it offers, and the releases (product/channel/version) the
	// held snapshot offered that it no longer does.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Releases  int       `json:"releases"`
	Withdrawn []string  `json:"withdrawn,omitempty"`
	// Acknowledged: the vendor's acknowledgement of the mirror's return
	// files the bundle carried, recorded (nil when it carried none, or
	// with DryRun).
	Acknowledged *Acknowledged `json:"acknowledged,omitempty"`
}

// Import reads an offline bundle from r: the envelope first, verified
// before any artifact is taken, then every artifact hashed on its way to
// the cache. Any invalid entry rejects the whole bundle and nothing is
// committed; artifacts the bundle lacks are fine if already cached.
func (s *Syncer) Import(ctx context.Context, r io.Reader, dryRun bool) (ImportReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := ImportReport{DryRun: dryRun}
	r, closeR, err := bundle.Decompress(r)
	if err == nil {
		err = s.importBundle(ctx, r, &rep)
		closeR()
	}
	if dryRun {
		return rep, err
	}
	res := state.SyncResult{
		At: s.cfg.Now().UTC(), Source: "bundle", OK: err == nil, Changed: rep.Changed,
		SnapshotID: rep.SnapshotID, Sequence: rep.Sequence, Downloaded: rep.Imported,
		Rebuilt: rep.Rebuilt, Bytes: rep.Bytes, Missing: rep.Missing,
	}
	if err != nil {
		res.Error = err.Error()
	}
	if serr := s.st.SetLastSync(res); serr != nil && err == nil {
		err = serr
	}
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(res)
	}
	return rep, err
}

// importBundle is an import through the one pipeline: verify → needed
// (stage), take the needed artifacts from the bundle, ready → commit.
func (s *Syncer) importBundle(ctx context.Context, r io.Reader, rep *ImportReport) error {
	if s.cfg.TUF != nil {
		return s.importTUF(ctx, r, rep)
	}
	// Queued behind a sync while the mirror stops: do not start.
	if err := ctx.Err(); err != nil {
		return err
	}
	held, err := s.st.Current()
	if err != nil {
		return err
	}
	if held != nil {
		rep.HeldSequence = held.Sequence
	}
	br := bundle.NewReader(r, s.cfg.Trust.MaxSize)
	env, err := br.Envelope()
	if err != nil {
		return err
	}
	allowed, known, err := s.st.AllowedChannels()
	if err != nil {
		return err
	}
	c, err := s.stage(env, held, state.EffectiveChannels(allowed, known, s.cfg.Channels))
	if err != nil {
		return fmt.Errorf("bundle snapshot: %w", err)
	}
	rep.SnapshotID, rep.Sequence = c.m.SnapshotID, c.m.Sequence
	rep.ExpiresAt = c.m.ExpiresAt
	offered := map[string]bool{}
	for _, r := range c.m.Releases {
		if r.Status == catalog.ReleaseActive {
			rep.Releases++
			offered[r.ReleaseID] = true
		}
	}
	if held != nil && held.Manifest != nil {
		for _, r := range held.Manifest.Releases {
			if r.Status == catalog.ReleaseActive && !offered[r.ReleaseID] {
				rep.Withdrawn = append(rep.Withdrawn, r.ProductID+"/"+r.Channel+"/"+r.Version)
			}
		}
		sort.Strings(rep.Withdrawn)
	}
	rep.Needed = len(c.need)
	taken, err := s.take(ctx, br, c, rep)
	if err != nil {
		return err
	}
	if err := s.account(c.need, taken, rep); err != nil {
		return err
	}
	// The acknowledgement is verified before anything commits: a forged
	// one refuses the whole bundle.
	var ack *returnfile.Ack
	if env := br.Ack(); env != nil {
		if ack, err = s.verifyAck(env); err != nil {
			return fmt.Errorf("%w: %s: %w", bundle.ErrInvalid, bundle.AckName, err)
		}
	}
	if !c.unchanged() {
		rep.Changed = true
		if rep.DryRun {
			return nil
		}
		if err := s.commit(c, EventSnapshotImported, "bundle", rep.Imported, rep.Bytes); err != nil {
			rep.Changed = false
			return err
		}
	}
	if ack != nil && !rep.DryRun {
		if rep.Acknowledged, err = s.recordAck(ctx, ack); err != nil {
			return fmt.Errorf("record the bundle's acknowledgement: %w", err)
		}
	}
	return nil
}

// take reads the bundle's artifacts: each must be one the snapshot lists
// at its size; the needed ones not yet cached are ingested (hashed on
// the way), or with DryRun only hashed. It returns the sha256s taken.
func (s *Syncer) take(ctx context.Context, br *bundle.Reader, c *candidate, rep *ImportReport) (map[string]bool, error) {
	inManifest := map[string]int64{}
	for _, a := range c.m.Artifacts {
		inManifest[a.SHA256] = a.SizeBytes
	}
	needed := map[string]bool{}
	for _, a := range c.need {
		needed[a.SHA256] = true
	}
	taken := map[string]bool{}
	var deltas importDeltas
	for {
		e, err := br.Next()
		if err == io.EOF {
			return taken, nil
		}
		if err != nil {
			return nil, err
		}
		if e.Delta {
			if deltas.arts == nil {
				deltas = importDeltasOf(c.m)
			}
			name := bundle.DeltaPrefix + e.SHA256
			d, ok := deltas.bySHA[e.SHA256]
			if !ok {
				return nil, fmt.Errorf("%w: %s is not a delta snapshot %d lists", bundle.ErrInvalid, name, c.m.Sequence)
			}
			if err := s.takeDelta(ctx, br.Body(), name, e.Size, d, deltas, needed, taken, rep); err != nil {
				return nil, err
			}
			continue
		}
		size, ok := inManifest[e.SHA256]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: artifacts/%s is not referenced by snapshot %d", bundle.ErrInvalid, e.SHA256, c.m.Sequence)
		case e.Size != size:
			return nil, fmt.Errorf("%w: artifacts/%s is %d bytes, the snapshot says %d", bundle.ErrInvalid, e.SHA256, e.Size, size)
		case !needed[e.SHA256]:
			rep.Skipped++
			if _, err := io.Copy(io.Discard, br.Body()); err != nil {
				return nil, err
			}
			continue
		case s.cache.Has(e.SHA256, size):
			if _, err := io.Copy(io.Discard, br.Body()); err != nil {
				return nil, err
			}
			continue
		case rep.DryRun:
			if err := checkHash(br.Body(), e.SHA256, size); err != nil {
				return nil, err
			}
		default:
			if err := s.cache.Ingest(ctx, e.SHA256, size, br.Body()); err != nil {
				return nil, fmt.Errorf("%w: %w", bundle.ErrInvalid, err)
			}
		}
		taken[e.SHA256] = true
		rep.Imported++
		rep.Bytes += size
	}
}

func checkHash(r io.Reader, sha string, size int64) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, size+1))
	if err != nil {
		return err
	}
	if n != size || hex.EncodeToString(h.Sum(nil)) != sha {
		return fmt.Errorf("%w: artifacts/%s does not match its sha256 or size", bundle.ErrInvalid, sha)
	}
	return nil
}

// account counts, for the artifacts a bundle's version needs, those the
// mirror already had (taken from the bundle aside) and refuses the
// import if any is in neither.
func (s *Syncer) account(need []snapshot.Artifact, taken map[string]bool, rep *ImportReport) error {
	for _, a := range need {
		switch {
		case taken[a.SHA256]:
		case s.cache.Has(a.SHA256, a.SizeBytes):
			rep.Cached++
		default:
			rep.Missing = append(rep.Missing, a.ArtifactID)
		}
	}
	sort.Strings(rep.Missing)
	if len(rep.Missing) > 0 {
		return fmt.Errorf("bundle lacks %d artifacts the mirror does not have: %v", len(rep.Missing), rep.Missing)
	}
	return nil
}
