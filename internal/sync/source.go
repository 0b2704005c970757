// Package sync is the mirror's syncer: it fetches the newest signed
// snapshot from a Source (the control plane over HTTP, an S3 bucket, an
// upstream mirror) or reads it from an offline bundle, verifies it before
// anything else, downloads the artifacts it needs into the blob cache with
// bounded concurrency, resume and retries, and only then commits it to the
// mirror's state in one transaction.
package sync

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/outpost/outpost/internal/snapshot"
)

// ErrNotModified is returned by Source.Snapshot when nothing is newer
// than the held sequence.
var ErrNotModified = errors.New("no newer snapshot")

// Source is where snapshots and artifact bytes come from. Everything it
// returns is untrusted: the syncer verifies the envelope and every byte.
type Source interface {
	// Name says what the source is, for logs and status.
	Name() string
	// Snapshot returns the newest envelope, or ErrNotModified when it is
	// not newer than after. Sources should cap the size they read.
	Snapshot(ctx context.Context, after int64) ([]byte, error)
	// Artifact returns the artifact's bytes from offset on.
	Artifact(ctx context.Context, a snapshot.Artifact, offset int64) (io.ReadCloser, error)
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
