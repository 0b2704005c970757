package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// tufRepo is the tufhttp.Repo of the mirror: the committed repository
// version's metadata and documents from mirror.db, artifacts from the
// cache as *os.File (sendfile). An artifact is served only when the held
// version needs it (its channels), at its signed size; a delta target
// only when it is a signed delta to such an artifact that the cache holds.
type tufRepo struct{ s *Server }

// Metadata implements tufhttp.Repo.
func (r tufRepo) Metadata(_ context.Context, name string) ([]byte, error) {
	if name == "timestamp.json" {
		// From the view, not mirror.db: a commit lands in mirror.db a
		// moment before the view that serves its artifacts, and a client
		// told of the new version in between would find one missing.
		if v := r.s.cur.Load(); v.held != nil && v.held.Timestamp != nil {
			return v.held.Timestamp, nil
		}
	}
	return r.s.o.State.TUFMetadata(name)
}

// Target implements tufhttp.Repo.
func (r tufRepo) Target(_ context.Context, path, sum string) (io.ReadSeekCloser, error) {
	doc, err := r.s.o.State.TUFDocument(tuf.TargetPath(path, sum))
	if err == nil {
		return nopCloser{bytes.NewReader(doc)}, nil
	}
	if !errors.Is(err, tuf.ErrNotFound) {
		return nil, err
	}
	v := r.s.cur.Load()
	if v.held == nil {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	a, ok := v.bySHA[sum]
	if _, from, to, isDelta := tuf.ParseDeltaTarget(path); isDelta {
		// A delta target: a signed delta to an artifact this mirror
		// serves, when the cache holds it (docs/deltas.md).
		a, ok = snapshot.Artifact{}, false
		for _, d := range v.held.Manifest.Deltas {
			if d.SHA256 == sum && d.FromSHA256 == from && d.ToSHA256 == to {
				a, ok = v.deltas[d.DeltaID]
				break
			}
		}
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	f, err := r.s.o.Cache.Open(sum)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != a.SizeBytes {
		f.Close()
		return nil, fmt.Errorf("artifact %s in the cache has the wrong size", a.ArtifactID)
	}
	return f, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
