package sync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// TUFTrust selects the TUF workflow (mirror config `trust: tuf`): the
// mirror is a TUF client of its source's repository for TenantID, and a
// TUF repository for its own clients.
type TUFTrust struct {
	TenantID string
	// Root is the tenant's root.json the operator got from the vendor.
	// It initialises the trusted state once; afterwards the root chain
	// the mirror walked (kept in mirror.db) is what counts.
	Root   []byte
	Limits tuf.Limits
}

const storeTimestamp = "metadata/timestamp.json"

// tenantID is the tenant the mirror is configured for.
func (s *Syncer) tenantID() string {
	if s.cfg.TUF != nil {
		return s.cfg.TUF.TenantID
	}
	return ""
}

// tufClient returns the mirror's TUF client, initialising the trusted
// state with the configured root the first time.
func (s *Syncer) tufClient(ctx context.Context, src Source) (*tuf.Client, error) {
	if s.tufc != nil {
		s.tufFetch.src = src
		return s.tufc, nil
	}
	if s.tufStore == nil {
		s.tufStore = &stagedStore{base: s.st.TUFStore()}
	}
	store := s.tufStore
	if _, err := store.Get(ctx, "metadata/root.json"); errors.Is(err, tuf.ErrNotFound) {
		if len(s.cfg.TUF.Root) == 0 {
			return nil, &PermanentError{Err: errors.New("tuf: no trusted root: configure root_file with the tenant's root.json")}
		}
		if err := tuf.Init(ctx, store, s.cfg.TUF.TenantID, s.cfg.TUF.Root); err != nil {
			return nil, &PermanentError{Err: fmt.Errorf("tuf: %w", err)}
		}
	} else if err != nil {
		return nil, err
	}
	s.tufFetch = &tufFetcher{s: s, src: src}
	s.tufc = tuf.NewClient(s.cfg.TUF.TenantID, s.tufFetch, store, tuf.ClientOptions{Limits: s.cfg.TUF.Limits, Now: s.cfg.Now})
	return s.tufc, nil
}

// tufFetcher is the client's view of the source: transient failures are
// retried, and the timestamp the idle check already fetched is handed
// over instead of fetched twice.
type tufFetcher struct {
	s         *Syncer
	src       Source
	timestamp []byte // fetched by this sync's idle check; used once
}

func (f *tufFetcher) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	if path == storeTimestamp && f.timestamp != nil {
		b := f.timestamp
		f.timestamp = nil
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	// Each attempt, its body included, is bounded by RequestTimeout: a
	// source that accepts the request and never answers would otherwise
	// hold the sync lock (and GC and bundle imports) forever.
	var rc io.ReadCloser
	err := f.s.retry(ctx, path, func() error {
		actx, cancel := context.WithTimeout(ctx, f.s.cfg.RequestTimeout)
		r, err := f.src.Fetch(actx, path, maxBytes)
		if err != nil {
			cancel()
			return err
		}
		rc = &cancelOnClose{ReadCloser: r, cancel: cancel}
		return nil
	})
	return rc, err
}

// cancelOnClose ends a fetch's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// readCapped reads a whole small file, refusing more than max bytes.
func readCapped(rc io.ReadCloser, max int64) ([]byte, error) {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("more than %d bytes: %w", max, tuf.ErrTooLarge)
	}
	return b, nil
}

// onceTUF is a sync through the TUF workflow, in the one pipeline:
// timestamp → snapshot → changed targets roles → changed documents
// (tuf.Client, verify first, each file size-capped, persisted to
// mirror.db), then the missing artifacts (fill), then the commit of the
// new repository version with its timestamp (ready → commit). An idle
// sync is one timestamp fetch, compared with the one held.
func (s *Syncer) onceTUF(ctx context.Context, res *state.SyncResult) error {
	src := s.src
	rec, err := s.st.CurrentRecord()
	if err != nil {
		return err
	}
	if rec != nil && rec.Format != state.FormatTUF {
		return &PermanentError{Err: errors.New("tuf: the mirror holds a schema 1 snapshot: re-initialise its state (mirror init) before syncing with trust: tuf")}
	}
	ch, err := s.channels(ctx)
	if err != nil {
		return err
	}
	if rec != nil {
		res.SnapshotID, res.Sequence = rec.SnapshotID, rec.Sequence
	}
	c, err := s.tufClient(ctx, src)
	if err != nil {
		return err
	}
	lim := s.cfg.TUF.Limits
	if lim.Timestamp <= 0 {
		lim.Timestamp = 16 << 10
	}

	// Idle check: the source's timestamp is the one held and committed.
	rc, err := s.tufFetch.Fetch(ctx, storeTimestamp, lim.Timestamp)
	if err != nil {
		return fmt.Errorf("tuf: fetch timestamp: %w", err)
	}
	ts, err := readCapped(rc, lim.Timestamp)
	if err != nil {
		return fmt.Errorf("tuf: fetch timestamp: %w", err)
	}
	res.Bytes += int64(len(ts))
	if repo := c.Repository(); repo != nil && rec != nil && rec.Sequence == repo.Snapshot.Signed.Version && bytes.Equal(ts, s.tufTS) {
		if err := repo.Fresh(s.cfg.Now()); err != nil {
			return fmt.Errorf("tuf: %w", err)
		}
		return s.repairTUF(ctx, rec, ch, res)
	}

	s.tufFetch.timestamp = ts
	// The client's writes reach mirror.db in batches (one transaction
	// for the few files of a change, one per 8 MiB for a first sync),
	// not one transaction each, in the client's order, the timestamp
	// last. What it verified is kept even when it then fails, as when
	// writing through.
	batch := !s.tufStore.staging
	if batch {
		s.tufStore.batch(batchBytes)
	}
	chg, err := c.Update(ctx)
	s.tufFetch.timestamp = nil
	if batch {
		if ferr := s.tufStore.flush(ctx); ferr != nil {
			s.tufc, s.tufFetch = nil, nil // reload what mirror.db holds
			return fmt.Errorf("tuf: %w", ferr)
		}
	}
	if err != nil {
		return fmt.Errorf("tuf: %w", err)
	}
	res.Bytes += chg.BytesFetched - int64(len(ts))
	repo := c.Repository()
	trusted, err := s.st.TUFStore().Get(ctx, storeTimestamp)
	if err != nil {
		return err
	}
	s.tufTS = trusted
	seq := repo.Snapshot.Signed.Version
	if rec != nil && rec.Sequence == seq {
		// Freshness only: the same repository version, a newer timestamp.
		if served, err := s.st.ServedTUFTimestamp(); err != nil {
			return err
		} else if !bytes.Equal(served, trusted) {
			if err := s.st.ServeTUFTimestamp(seq, trusted); err != nil {
				return err
			}
			if s.cfg.OnCommit != nil {
				s.cfg.OnCommit()
			}
		}
		return s.repairTUF(ctx, rec, ch, res)
	}
	if rec != nil && seq < rec.Sequence {
		return fmt.Errorf("tuf: snapshot v%d is older than the held v%d", seq, rec.Sequence)
	}
	// The candidate needs only the held record (the previous sequence
	// of the audit event): the held manifest is not decoded.
	var held *state.Held
	if rec != nil {
		held = &state.Held{Record: *rec}
	}
	// Only the products whose roles changed are assembled again; the
	// commit stores a reference to the version (its files are already
	// in mirror.db) and the state keeps m in memory.
	m, err := s.tufAsm.Manifest(repo)
	if err != nil {
		return fmt.Errorf("tuf: %w", err)
	}
	s.tufPaths, s.tufPathsOf = nil, m
	sum := sha256.Sum256(trusted)
	cand := &candidate{m: m, hash: "tuf-" + hex.EncodeToString(sum[:]), ch: ch, need: state.Needed(m, ch), held: held, tufTS: trusted}
	res.SnapshotID, res.Sequence = m.SnapshotID, m.Sequence
	if err := s.download(ctx, cand.need, deltaPlanOf(m), res); err != nil {
		return err
	}
	// What the commit will hold, kept in memory (heldTUF checks it
	// against the record, so a failed commit leaves it unused).
	s.tufHeld = &state.Held{Record: state.Record{SnapshotID: m.SnapshotID, Sequence: m.Sequence, Hash: cand.hash,
		ExpiresAt: m.ExpiresAt, Channels: ch, Format: state.FormatTUF}, Manifest: m}
	if err := s.commit(cand, EventSnapshotSynced, res.Source, res.Downloaded, res.Bytes); err != nil {
		return err
	}
	s.tufRepaired = s.cfg.Now()
	res.Changed = true
	return nil
}

// RepairInterval is how often an idle TUF sync checks that every
// artifact the held version needs is still in the cache (a blob
// quarantined by `mirror verify` or deleted by hand is fetched again).
// Between checks an idle sync costs one timestamp request; a change of
// the mirror's channels is followed at once.
const RepairInterval = 10 * time.Minute

// heldTUF returns the held version with its manifest, loaded once per
// held version (decoding a large manifest is what an idle sync must not
// do).
func (s *Syncer) heldTUF(rec *state.Record) (*state.Held, error) {
	if rec == nil {
		return nil, nil
	}
	if h := s.tufHeld; h != nil && h.Sequence == rec.Sequence && h.Hash == rec.Hash {
		return h, nil
	}
	h, err := s.st.Current()
	if err != nil {
		return nil, err
	}
	s.tufHeld = h
	if h != nil {
		s.tufPaths, s.tufPathsOf = nil, h.Manifest
	}
	return h, nil
}

// repairTUF is repair for the held TUF version: at once when the
// channels changed, else at most every RepairInterval.
func (s *Syncer) repairTUF(ctx context.Context, rec *state.Record, ch []string, res *state.SyncResult) error {
	if state.SameChannels(ch, rec.Channels) && s.cfg.Now().Sub(s.tufRepaired) < RepairInterval {
		return nil
	}
	held, err := s.heldTUF(rec)
	if err != nil {
		return err
	}
	if err := s.repair(ctx, held, ch, res); err != nil {
		return err
	}
	s.tufHeld, s.tufRepaired = nil, s.cfg.Now()
	if state.SameChannels(ch, held.Channels) {
		s.tufHeld = held
	}
	return nil
}

// targetPaths maps each artifact's sha256 to a published target path
// holding its bytes (any release artifact naming it will do).
func targetPaths(m *snapshot.Manifest) map[string]string {
	sums := make(map[string]string, len(m.Artifacts))
	for _, a := range m.Artifacts {
		sums[a.ArtifactID] = a.SHA256
	}
	out := make(map[string]string, len(m.Artifacts))
	for _, r := range m.Releases {
		for _, ra := range r.Artifacts {
			sum := sums[ra.ArtifactID]
			if _, ok := out[sum]; !ok && sum != "" {
				out[sum] = tuf.TargetPath(tuf.ArtifactTarget(r.ProductID, ra.ReleaseArtifactID), sum)
			}
		}
	}
	// Deltas are targets of their product's role too (tuf.DeltaTarget).
	if len(m.Deltas) > 0 {
		product := map[string]string{} // artifact id → product id
		for _, r := range m.Releases {
			for _, ra := range r.Artifacts {
				product[ra.ArtifactID] = r.ProductID
			}
		}
		for _, d := range m.Deltas {
			if pid := product[d.ToArtifactID]; pid != "" {
				if _, ok := out[d.SHA256]; !ok {
					out[d.SHA256] = tuf.TargetPath(tuf.DeltaTarget(pid, d.FromSHA256, d.ToSHA256), d.SHA256)
				}
			}
		}
	}
	return out
}

// prepareTUFPaths builds the target paths of the held or staged
// version when a download first needs them (once per version: a sync
// that downloads nothing does not pay for it). Called before the
// download goroutines start.
func (s *Syncer) prepareTUFPaths() {
	if s.cfg.TUF != nil && s.tufPaths == nil && s.tufPathsOf != nil {
		s.tufPaths = targetPaths(s.tufPathsOf)
	}
}

// openArtifact opens an artifact from the source by its TUF target path.
func (s *Syncer) openArtifact(ctx context.Context, a snapshot.Artifact, off int64) (*fetch.Body, error) {
	path, known := s.tufPaths[a.SHA256]
	if !known {
		return nil, permanent("artifact %s: no TUF target path", a.ArtifactID)
	}
	return s.src.TUFTarget(ctx, path, off)
}
