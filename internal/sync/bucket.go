package sync

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/snapshot"
)

// BucketSource reads a customer-side bucket (S3/MinIO through
// internal/blob/s3, or any blob.Store) laid out as:
//
//	<prefix>snapshots/latest.dsse.json   the newest envelope (key configurable)
//	<prefix>artifacts/<sha256>           artifact bytes by content
type BucketSource struct {
	store       blob.Store
	prefix      string
	snapshotKey string
	maxEnv      int64
}

// DefaultSnapshotKey is the envelope's key under the prefix.
const DefaultSnapshotKey = "snapshots/latest.dsse.json"

// NewBucket is a source over store. snapshotKey "" means
// DefaultSnapshotKey; it is relative to prefix.
func NewBucket(store blob.Store, prefix, snapshotKey string, maxEnvelope int64) *BucketSource {
	if snapshotKey == "" {
		snapshotKey = DefaultSnapshotKey
	}
	if maxEnvelope <= 0 {
		maxEnvelope = snapshot.DefaultMaxSize
	}
	return &BucketSource{store: store, prefix: prefix, snapshotKey: snapshotKey, maxEnv: maxEnvelope}
}

// Name implements Source.
func (b *BucketSource) Name() string { return "bucket " + b.prefix + b.snapshotKey }

// Snapshot implements Source. A bucket has no "after": the syncer's
// verification tells an unchanged envelope apart.
func (b *BucketSource) Snapshot(ctx context.Context, after int64) ([]byte, error) {
	obj, info, err := b.store.Open(ctx, b.prefix+b.snapshotKey)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, permanent("snapshot %s: not in the bucket", b.prefix+b.snapshotKey)
	}
	if err != nil {
		return nil, fmt.Errorf("open snapshot: %w", err)
	}
	defer obj.Close()
	if info.Size > b.maxEnv {
		return nil, permanent("snapshot: %d bytes is over the %d byte cap", info.Size, b.maxEnv)
	}
	env, err := io.ReadAll(io.LimitReader(obj, b.maxEnv+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if int64(len(env)) > b.maxEnv {
		return nil, permanent("snapshot: over the %d byte cap", b.maxEnv)
	}
	return env, nil
}

// Artifact implements Source.
func (b *BucketSource) Artifact(ctx context.Context, a snapshot.Artifact, offset int64) (*fetch.Body, error) {
	key := b.prefix + "artifacts/" + a.SHA256
	obj, _, err := b.store.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, permanent("artifact %s: %s not in the bucket", a.ArtifactID, key)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", a.ArtifactID, err)
	}
	if offset > 0 {
		if _, err := obj.Seek(offset, io.SeekStart); err != nil {
			obj.Close()
			return nil, fmt.Errorf("seek artifact %s to %d: %w", a.ArtifactID, offset, err)
		}
	}
	return &fetch.Body{ReadCloser: obj, Start: offset, Total: -1}, nil
}
