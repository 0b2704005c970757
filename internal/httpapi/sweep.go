package httpapi

import (
	"context"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
)

// SweepOrphanBlobs deletes artifact bytes that no artifact record names:
// what a crash between storing an upload and recording it leaves behind.
// Only objects older than olderThan go, so an upload finishing right now is
// never taken. It returns how many it deleted.
func (s *Server) SweepOrphanBlobs(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := s.now().Add(-olderThan)
	var orphans []string
	err := s.Blobs.List(ctx, artifactPrefix, func(i blob.Info) error {
		if i.ModTime.After(cutoff) {
			return nil
		}
		id := strings.TrimPrefix(i.Key, artifactPrefix)
		if !catalog.ValidID(catalog.PrefixArtifact, id) {
			return nil // not ours to judge
		}
		_, err := s.Store.Artifact(ctx, id)
		switch catalog.ErrorCode(err) {
		case "":
		case catalog.ENOTFOUND:
			orphans = append(orphans, i.Key)
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range orphans {
		if err := s.Blobs.Delete(ctx, key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
