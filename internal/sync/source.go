// Package sync is the mirror's syncer: it runs the TUF update workflow
// against a Source (the control plane over HTTP, an S3 bucket, an upstream
// mirror) or an offline bundle, verifies the tenant's metadata before
// anything else, downloads the artifacts it needs into the blob cache with
// bounded concurrency, resume and retries, and only then commits the
// version to the mirror's state in one transaction.
package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// ErrExpired is the commit gate's refusal of a version that expired
// while its artifacts downloaded.
var ErrExpired = errors.New("metadata expired")

// Source publishes a tenant's TUF repository: the control plane
// (/v1/mirror/tuf/), an upstream mirror (/tuf/), a bucket (under its
// prefix). Everything it returns is untrusted: the syncer verifies the
// metadata and every byte.
type Source interface {
	// Name says what the source is, for logs and status.
	Name() string
	// Fetch reads a metadata file or a document by repository path
	// ("metadata/timestamp.json", "targets/docs/<sha256>.policies.json").
	tuf.Fetcher
	// TUFTarget opens an artifact by its published path
	// ("targets/<product>/<sha256>.<release_artifact>") from offset on
	// (or from 0, with Start 0, when the source cannot seek: the download
	// restarts).
	TUFTarget(ctx context.Context, path string, offset int64) (*fetch.Body, error)
}

// Self is the control plane's record of this mirror.
type Self struct {
	MirrorID        string   `json:"mirror_id"`
	TenantID        string   `json:"tenant_id"`
	AllowedChannels []string `json:"allowed_channels"`
	Status          string   `json:"status"`
}

// SelfSource is a Source that knows the mirror's record (the control
// plane).
type SelfSource interface {
	Self(ctx context.Context) (Self, error)
}

// StatusReport is what the mirror reports after a sync.
type StatusReport struct {
	Status         string `json:"status"` // active or error
	LastSnapshotID string `json:"last_snapshot_id"`
	Sequence       int64  `json:"sequence"`
	Error          string `json:"error"`
}

// Reporter is a Source that accepts status reports (the control plane).
type Reporter interface {
	Report(ctx context.Context, r StatusReport) error
}

// PermanentError is a failure retrying will not fix (404, 403, …).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// IsPermanent reports whether err should not be retried.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfterError is a transient failure for which the source named a
// pause (HTTP 429 or 503 with Retry-After). The syncer waits at least
// that long, but never more than its MaxBackoff, before trying again.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// retryable reports whether a fetch that failed with err may succeed if
// tried again: never a permanent source error, an expired version, a
// file the source lacks or sends over its cap, or a fetch whose context
// is done.
func retryable(ctx context.Context, err error) bool {
	switch {
	case err == nil, ctx.Err() != nil, IsPermanent(err),
		errors.Is(err, ErrExpired),
		errors.Is(err, tuf.ErrNotFound), errors.Is(err, tuf.ErrTooLarge):
		return false
	}
	return true
}

// retry runs op until it succeeds or fails in a way retrying will not fix
// (see retryable), backing off between attempts.
func (s *Syncer) retry(ctx context.Context, what string, op func() error) error {
	return s.backoff(ctx, func() error {
		err := op()
		if err == nil || !retryable(ctx, err) {
			return backoff.Permanent(err)
		}
		s.cfg.Logger.Debug("retrying", "what", what, "err", err)
		return err
	})
}

// backoff runs op with exponential backoff and jitter from InitialBackoff
// up to MaxBackoff, for at most MaxElapsed, until ctx is done; a source's
// Retry-After stretches the next pause, up to MaxBackoff. op returns
// backoff.Permanent for what must not be retried.
func (s *Syncer) backoff(ctx context.Context, op func() error) error {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval = s.cfg.InitialBackoff
	eb.MaxInterval = s.cfg.MaxBackoff
	eb.MaxElapsedTime = s.cfg.MaxElapsed
	b := &hinted{BackOff: eb, max: s.cfg.MaxBackoff}
	return backoff.Retry(func() error {
		err := op()
		if ra := (*RetryAfterError)(nil); errors.As(err, &ra) {
			b.hint = ra.After
		}
		return err
	}, backoff.WithContext(b, ctx))
}

// hinted is a BackOff whose next pause is at least the source's hint,
// capped at max.
type hinted struct {
	backoff.BackOff
	hint, max time.Duration
}

func (h *hinted) NextBackOff() time.Duration {
	d := h.BackOff.NextBackOff()
	if d != backoff.Stop {
		d = max(d, min(h.hint, h.max))
	}
	h.hint = 0
	return d
}

// ready is the last gate before a commit. The snapshot must not have
// expired while its artifacts downloaded (it was verified before), and
// every artifact it needs must be committed in the cache at its signed
// size (committed blobs were hashed on the way in): downloads are
// deduplicated by sha256, so this also catches two artifacts that share a
// sha256 but not a size.
func (s *Syncer) ready(m *snapshot.Manifest, need []snapshot.Artifact) error {
	if now := s.cfg.Now(); !m.ExpiresAt.After(now) {
		return fmt.Errorf("snapshot %d: %w at %s while its artifacts downloaded",
			m.Sequence, ErrExpired, m.ExpiresAt.UTC().Format(time.RFC3339))
	}
	var missing []string
	for _, a := range need {
		if !s.cache.Has(a.SHA256, a.SizeBytes) {
			missing = append(missing, a.ArtifactID)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("snapshot %d: %d artifacts not verified in the cache: %v", m.Sequence, len(missing), missing)
	}
	return nil
}

// self fetches the mirror record. When the allowed channels were never
// learned it retries transient failures and, if they last, ends the sync
// (a PermanentError): without the record the mirror would fetch every
// channel. Otherwise one try will do, the remembered channels standing in.
func (s *Syncer) self(ctx context.Context, ss SelfSource) (Self, error) {
	var self Self
	_, known, err := s.st.AllowedChannels()
	if err != nil {
		return self, err
	}
	get := func() (Self, error) {
		actx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
		return ss.Self(actx)
	}
	if known {
		return get()
	}
	err = s.retry(ctx, "mirror record", func() error {
		var err error
		self, err = get()
		return err
	})
	if err != nil && !IsPermanent(err) {
		err = &PermanentError{Err: fmt.Errorf("allowed channels unknown: %w", err)}
	}
	return self, err
}

// errStalled is the cause of an artifact download abandoned by its
// watchdog.
var errStalled = errors.New("source stalled")

// open opens an artifact from off under a watchdog: when no byte arrives
// for StallTimeout (nor the answer itself), the request is cancelled, the
// cache keeps what it wrote and the attempt fails as transient.
func (s *Syncer) open(ctx context.Context, a snapshot.Artifact, off int64) (*fetch.Body, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watched{ctx: ctx, cancel: cancel, d: s.cfg.StallTimeout}
	w.t = time.AfterFunc(w.d, func() { cancel(errStalled) })
	b, err := s.openArtifact(ctx, a, off)
	if err != nil {
		w.t.Stop()
		cancel(nil)
		return nil, w.why(err)
	}
	w.rc = b.ReadCloser
	return &fetch.Body{ReadCloser: w, Start: b.Start, Total: b.Total}, nil
}

// watched is an artifact body whose watchdog is pushed back by every read.
type watched struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	rc     io.ReadCloser
	t      *time.Timer
	d      time.Duration
}

func (w *watched) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	if n > 0 {
		w.t.Reset(w.d)
	}
	if err != nil && err != io.EOF {
		err = w.why(err)
	}
	return n, err
}

func (w *watched) Close() error {
	w.t.Stop()
	err := w.rc.Close()
	w.cancel(nil)
	return err
}

// why names a stall as the cause of err.
func (w *watched) why(err error) error {
	if errors.Is(context.Cause(w.ctx), errStalled) {
		return fmt.Errorf("no byte for %s: %w: %w", w.d, errStalled, err)
	}
	return err
}
