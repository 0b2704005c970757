package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/mirror/state"
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

// Import reads an offline TUF bundle from r: its metadata first, verified
// by the TUF workflow before any artifact is taken, then every artifact
// hashed on its way to the cache. Any invalid entry rejects the whole bundle and nothing is
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

// importBundle is an import through the one pipeline: the TUF workflow
// from the bundle (importTUF).
func (s *Syncer) importBundle(ctx context.Context, r io.Reader, rep *ImportReport) error {
	if s.cfg.TUF == nil {
		return errors.New("import: no TUF trust configured (the tenant's root)")
	}
	return s.importTUF(ctx, r, rep)
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
