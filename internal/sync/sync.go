package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	gosync "sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// Config tunes a Syncer.
type Config struct {
	// TUF is the mirror's trust: the tenant and its root (required to
	// sync or import).
	TUF *TUFTrust
	// Channels optionally narrows the control plane's allowed channels.
	Channels []string
	// Concurrency bounds parallel artifact downloads (default 4).
	Concurrency int
	// Attempts is how often an artifact whose bytes do not match is
	// fetched again before the sync gives up on it (default 3).
	Attempts int
	// Backoff for transient errors: exponential with jitter from
	// InitialBackoff (default 500ms) up to MaxBackoff (default 30s), for
	// at most MaxElapsed per artifact (default 5m).
	InitialBackoff, MaxBackoff, MaxElapsed time.Duration
	// StallTimeout abandons (and retries, resuming) an artifact download
	// that gets no byte for this long (default 60s): a source that hangs
	// instead of failing must not hold a sync forever.
	StallTimeout time.Duration
	// RequestTimeout bounds each attempt at the snapshot and mirror
	// record requests (default 5m): a source that accepts the request and
	// never answers would otherwise hold the sync lock, and with it GC
	// and bundle imports, forever.
	RequestTimeout time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
	// OnResult sees every result (metrics); OnCommit runs after a commit
	// (the server reloads its view).
	OnResult func(state.SyncResult)
	OnCommit func()
	// MirrorID is the configured mirror id (config mirror_id); when empty
	// the id the control plane reported (kept in the state) is used. It is
	// the actor of the commit events in the mirror's audit log.
	MirrorID string
	// AuditExport writes the mirror's signed audit export; with it, the
	// chain is uploaded to the control plane after each successful sync.
	AuditExport func(ctx context.Context, w io.Writer) error
	// AuditExportAfter writes the export with only the events after a
	// sequence: uploads to a control plane that says which head it
	// accepted (AuditHeader) carry only what it lacks.
	AuditExportAfter func(ctx context.Context, w io.Writer, after int64) error
	// AuditRetention is how long an audit event the control plane has
	// acknowledged stays in the mirror's chain (0: 30 days,
	// state.DefaultAuditRetention; negative: never pruned). Unacknowledged
	// events are never pruned.
	AuditRetention time.Duration
	// FleetReport writes the fleet return file (docs/fleet.md); with it,
	// the report is uploaded after each successful sync and FleetAck
	// gets the control plane's acknowledgement.
	FleetReport func(ctx context.Context, w io.Writer) error
	FleetAck    func(ctx context.Context, through uint64) error
	// Progress, when set, is told the bytes a sync must download
	// (AddTotal) and each chunk received (Add); *progress.Meter fits.
	Progress Progress
}

// Progress follows a sync's downloads.
type Progress interface {
	AddTotal(n int64)
	Add(n int64)
}

// SetProgress sets Config.Progress for the syncs to come (a one-shot
// `mirror sync` shows its downloads).
func (s *Syncer) SetProgress(p Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Progress = p
}

// Syncer syncs one mirror. Once, Import and GC are serialized.
type Syncer struct {
	src   Source
	st    *state.State
	cache *cache.Cache
	cfg   Config
	mu    gosync.Mutex
	// upMu serializes audit uploads; uploaded is the chain head the
	// control plane last acknowledged.
	upMu     gosync.Mutex
	uploaded string
	// TUF mode: the client (kept across syncs: an idle sync is one
	// timestamp fetch), its fetcher, the trusted timestamp and the
	// published target path of each artifact by sha256.
	tufc     *tuf.Client
	tufFetch *tufFetcher
	tufStore *stagedStore // the client's store: mirror.db, staged by an import
	tufTS    []byte
	tufPaths map[string]string
	// tufPathsOf is the manifest tufPaths is built from when first needed.
	tufPathsOf *snapshot.Manifest
	// tufHeld is the held version's manifest, loaded once; tufRepaired
	// when the held version's artifacts were last checked.
	tufHeld     *state.Held
	tufRepaired time.Time
	// tufAsm assembles each new version's manifest, reusing the
	// products whose roles did not change.
	tufAsm tuf.Assembler
}

// New makes a Syncer; src may be nil for a mirror that only imports
// bundles.
func New(src Source, st *state.State, c *cache.Cache, cfg Config) *Syncer {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.AuditRetention == 0 {
		cfg.AuditRetention = state.DefaultAuditRetention
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxElapsed <= 0 {
		cfg.MaxElapsed = 5 * time.Minute
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Syncer{src: src, st: st, cache: c, cfg: cfg}
}

// channels asks the source for the mirror's allowed channels when it can,
// remembers them, and narrows them by the configured ones.
func (s *Syncer) channels(ctx context.Context) ([]string, error) {
	if ss, ok := s.src.(SelfSource); ok && s.src != nil {
		self, err := s.self(ctx, ss)
		switch {
		case err == nil:
			if self.TenantID != "" && s.tenantID() != "" && self.TenantID != s.tenantID() {
				return nil, fmt.Errorf("mirror record is for tenant %q, configured tenant is %q", self.TenantID, s.tenantID())
			}
			if self.AllowedChannels == nil {
				self.AllowedChannels = []string{}
			}
			if err := s.st.SetAllowedChannels(self.AllowedChannels); err != nil {
				return nil, err
			}
			if err := s.rememberMirrorID(self.MirrorID); err != nil {
				return nil, err
			}
		case IsPermanent(err):
			return nil, err
		default:
			s.cfg.Logger.Warn("mirror record unavailable, using the remembered channels", "err", err)
		}
	}
	allowed, known, err := s.st.AllowedChannels()
	if err != nil {
		return nil, err
	}
	return state.EffectiveChannels(allowed, known, s.cfg.Channels), nil
}

// Once runs one sync: fetch, verify, download, commit. The returned
// result is also recorded in the state and reported to the source.
func (s *Syncer) Once(ctx context.Context) (state.SyncResult, error) {
	res, err := s.syncOnce(ctx)
	if err == nil {
		s.uploadAuditBestEffort(ctx)
		s.uploadReportBestEffort(ctx)
	}
	return res, err
}

func (s *Syncer) syncOnce(ctx context.Context) (state.SyncResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := state.SyncResult{At: s.cfg.Now().UTC(), Source: "none"}
	if s.src == nil {
		return s.finish(ctx, res, errors.New("no sync source configured"))
	}
	res.Source = s.src.Name()
	err := s.once(ctx, &res)
	return s.finish(ctx, res, err)
}

// once is a sync from the source through the one pipeline: the TUF
// workflow (onceTUF).
func (s *Syncer) once(ctx context.Context, res *state.SyncResult) error {
	if s.cfg.TUF == nil {
		return &PermanentError{Err: errors.New("no TUF trust configured (the tenant's root)")}
	}
	return s.onceTUF(ctx, res)
}

// repair re-fetches artifacts of the held version that went missing (a
// blob quarantined by verify, deleted by hand) and makes it follow a
// change of the mirror's channels (ch) that came without a new version:
// the artifacts of a channel added are fetched first, then the held
// record switches, so a channel taken away stops being served.
func (s *Syncer) repair(ctx context.Context, held *state.Held, ch []string, res *state.SyncResult) error {
	if held == nil {
		return nil
	}
	if err := s.download(ctx, state.Needed(held.Manifest, ch), deltaPlanOf(held.Manifest), res); err != nil {
		return err
	}
	if state.SameChannels(ch, held.Channels) {
		return nil
	}
	if err := s.st.SetChannels(held.Sequence, ch); err != nil {
		return err
	}
	s.cfg.Logger.Info("held snapshot follows new channels", "sequence", held.Sequence, "channels", ch)
	if s.cfg.OnCommit != nil {
		s.cfg.OnCommit()
	}
	return nil
}

func (s *Syncer) finish(ctx context.Context, res state.SyncResult, err error) (state.SyncResult, error) {
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
		s.cfg.Logger.Error("sync failed", "source", res.Source, "err", err)
	}
	if serr := s.st.SetLastSync(res); serr != nil && err == nil {
		err = serr
	}
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(res)
	}
	if rep, ok := s.src.(Reporter); ok && s.src != nil {
		st := StatusReport{Status: "active", Error: res.Error}
		if h, herr := s.st.Current(); herr == nil && h != nil {
			st.LastSnapshotID, st.Sequence = h.SnapshotID, h.Sequence
		}
		if err != nil {
			st.Status = "error"
		}
		// Best effort: an unreachable control plane is not a sync failure.
		if rerr := rep.Report(context.WithoutCancel(ctx), st); rerr != nil {
			s.cfg.Logger.Warn("status report failed", "err", rerr)
		}
	}
	return res, err
}

// download fetches every artifact in need that is not cached: rebuilt
// from a cached base and a signed delta when plan offers one (falling
// back to the whole artifact), else whole. Then it fetches, best effort,
// the plan's deltas to needed artifacts, which the mirror serves.
func (s *Syncer) download(ctx context.Context, need []snapshot.Artifact, plan deltaPlan, res *state.SyncResult) error {
	var todo []snapshot.Artifact
	seen := map[string]bool{}
	for _, a := range need {
		if seen[a.SHA256] || s.cache.Has(a.SHA256, a.SizeBytes) {
			continue
		}
		seen[a.SHA256] = true
		todo = append(todo, a)
	}
	defer s.fetchDeltas(ctx, need, plan, res)
	if len(todo) == 0 {
		return nil
	}
	s.prepareTUFPaths()
	if p := s.cfg.Progress; p != nil {
		var total int64
		for _, a := range todo {
			total += a.SizeBytes
		}
		p.AddTotal(total)
	}
	var (
		mu     gosync.Mutex
		wg     gosync.WaitGroup
		failed []string
		errs   []error
	)
	// Deltas are chosen against the bases held before any download
	// starts.
	via := make([]*snapshot.Delta, len(todo))
	for i, a := range todo {
		via[i] = s.bestDelta(a, plan)
	}
	sem := make(chan struct{}, s.cfg.Concurrency)
	for i, a := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rebuilt, n, err := s.fetchVia(ctx, a, via[i], plan)
			mu.Lock()
			defer mu.Unlock()
			res.Bytes += n
			if rebuilt {
				res.Rebuilt++
			}
			if err != nil {
				failed = append(failed, a.ArtifactID)
				errs = append(errs, err)
				return
			}
			res.Downloaded++
		}()
	}
	wg.Wait()
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(failed)
	res.Missing = failed
	return &ArtifactErrors{Total: len(todo), Errs: errs}
}

// ArtifactErrors is the failure of some of a sync's downloads; errors.Is
// sees every one of them.
type ArtifactErrors struct {
	Total int
	Errs  []error
}

func (e *ArtifactErrors) Error() string {
	msgs := make([]string, 0, 4)
	for i, err := range e.Errs {
		if i == 3 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(e.Errs)-3))
			break
		}
		msgs = append(msgs, err.Error())
	}
	return fmt.Sprintf("%d of %d artifacts failed: %s", len(e.Errs), e.Total, strings.Join(msgs, "; "))
}

// Unwrap exposes every download error.
func (e *ArtifactErrors) Unwrap() []error { return e.Errs }

// fetch downloads one artifact, resuming and retrying.
func (s *Syncer) fetch(ctx context.Context, a snapshot.Artifact) (int64, error) {
	var total int64
	bad := 0
	op := func() error {
		n, err := s.cache.Fetch(ctx, a.SHA256, a.SizeBytes, func(ctx context.Context, off int64) (*fetch.Body, error) {
			b, err := s.open(ctx, a, off)
			if err == nil && s.cfg.Progress != nil {
				b.ReadCloser = counted{b.ReadCloser, s.cfg.Progress}
			}
			return b, err
		})
		total += n
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return backoff.Permanent(ctx.Err())
		case fetch.Verification(err):
			// Deleted by the cache; try a few times in case a transfer
			// was mangled, then report.
			bad++
			s.cfg.Logger.Warn("artifact rejected", "artifact_id", a.ArtifactID, "err", err)
			if bad >= s.cfg.Attempts {
				return backoff.Permanent(err)
			}
			return err
		case IsPermanent(err):
			return backoff.Permanent(err)
		default:
			s.cfg.Logger.Debug("artifact fetch retry", "artifact_id", a.ArtifactID, "err", err)
			return err
		}
	}
	err := s.backoff(ctx, op)
	if err != nil {
		return total, fmt.Errorf("artifact %s: %w", a.ArtifactID, err)
	}
	return total, nil
}

// Run syncs every interval until ctx is done. A failed sync is retried at
// the next tick; errors are recorded, not returned.
func (s *Syncer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// GC removes blobs that no retained snapshot references. It holds the
// sync lock so a download in progress is never collected.
func (s *Syncer) GC(ctx context.Context) (cache.GCReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, err := s.st.Retained()
	if err != nil {
		return cache.GCReport{}, err
	}
	rep, err := s.cache.GC(ctx, state.Referenced(hs))
	if err == nil {
		s.noteUsage(ctx)
	}
	return rep, err
}

// counted tells a Progress what is read through it.
type counted struct {
	io.ReadCloser
	p Progress
}

func (c counted) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.p.Add(int64(n))
	return n, err
}
