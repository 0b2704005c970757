package sync

import (
	"context"

	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
)

// The one sync pipeline. Every way a version reaches the mirror (the
// control plane over HTTP, a bucket, an upstream mirror: Once; an offline
// bundle, by hand or from the inbox: Import) goes through the same steps:
//
//	stage:  the TUF workflow verifies the metadata against the trusted
//	        state (onceTUF, importTUF), then the artifacts the mirror
//	        needs are worked out (nothing is looked at before it
//	        verifies);
//	fill:   the source-specific step, bringing the needed artifacts into
//	        the cache (download with resume, or ingest from the bundle);
//	commit: ready (not expired meanwhile, every needed artifact in the
//	        cache at its signed size), then the snapshot and the audit
//	        event recording it in one state transaction.

// candidate is a verified version on its way to being held.
type candidate struct {
	m    *snapshot.Manifest
	hash string
	ch   []string // channels it is held for
	need []snapshot.Artifact
	held *state.Held // the snapshot held when it was staged, or nil
	// tufTS is the trusted timestamp of the version: served from the
	// commit on.
	tufTS []byte
}

// commit is the pipeline's ready → commit. eventType names the audit
// event; fetched and bytes are what the fill step brought in.
func (s *Syncer) commit(c *candidate, eventType, source string, fetched int, bytes int64) error {
	// A long download or import can outlive the snapshot's expiry.
	if err := s.ready(c.m, c.need); err != nil {
		return err
	}
	ev := snapshotEvent{
		SnapshotID: c.m.SnapshotID, Sequence: c.m.Sequence, Hash: c.hash, Source: source,
		Channels: c.ch, Fetched: fetched, Bytes: bytes,
	}
	if c.held != nil {
		ev.PreviousSequence = c.held.Sequence
	}
	event, err := s.commitEvent(eventType, ev)
	if err != nil {
		return err
	}
	err = s.st.Commit(state.Commit{Manifest: c.m, Hash: c.hash, Channels: c.ch, Now: s.cfg.Now(), Event: event, TUFTimestamp: c.tufTS})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("snapshot committed", "source", source, "snapshot_id", c.m.SnapshotID, "sequence", c.m.Sequence, "fetched", fetched, "bytes", bytes)
	if c.tufTS != nil {
		// Old TUF versions the retained ones no longer need (the commit
		// stands whatever this says: the next commit tries again).
		if n, err := s.st.PruneTUF(); err != nil {
			s.cfg.Logger.Warn("prune old tuf metadata", "err", err)
		} else if n > 0 {
			s.cfg.Logger.Debug("pruned old tuf metadata", "files", n)
		}
	}
	s.noteUsage(context.Background())
	if s.cfg.OnCommit != nil {
		s.cfg.OnCommit()
	}
	return nil
}
