package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
)

// DeltaSource is a Source that also serves the deltas a snapshot lists
// (docs/deltas.md): the control plane and an upstream mirror.
type DeltaSource interface {
	// Delta returns the delta's bytes from offset on (like Artifact).
	Delta(ctx context.Context, d snapshot.Delta, offset int64) (*fetch.Body, error)
}

// Delta implements DeltaSource: a ranged GET of the delta, from the
// control plane's mirror route or an upstream mirror's client route.
func (s *HTTPSource) Delta(ctx context.Context, d snapshot.Delta, offset int64) (*fetch.Body, error) {
	path := "/v1/mirror/deltas/" + url.PathEscape(d.DeltaID)
	if s.upstream {
		path = "/v1/deltas/" + url.PathEscape(d.DeltaID) + "/download"
	}
	open := fetch.HTTP(s.client.Do,
		func(ctx context.Context) (*http.Request, error) { return s.request(ctx, http.MethodGet, path, nil) },
		func(resp *http.Response) error { return statusError("fetch delta "+d.DeltaID, resp) })
	b, err := open(ctx, offset)
	if err != nil {
		return nil, fmt.Errorf("fetch delta %s: %w", d.DeltaID, err)
	}
	return b, nil
}

// Delta implements DeltaSource.
func (u *UpstreamSource) Delta(ctx context.Context, d snapshot.Delta, offset int64) (*fetch.Body, error) {
	return u.h.Delta(ctx, d, offset)
}

// deltaPlan is what a sync may use: the signed deltas by target sha256
// and the signed size of every artifact by sha256 (the bases').
type deltaPlan struct {
	to    map[string][]snapshot.Delta
	sizes map[string]int64
}

func deltaPlanOf(m *snapshot.Manifest) deltaPlan {
	if m == nil || len(m.Deltas) == 0 {
		return deltaPlan{}
	}
	p := deltaPlan{to: map[string][]snapshot.Delta{}, sizes: map[string]int64{}}
	for _, a := range m.Artifacts {
		p.sizes[a.SHA256] = a.SizeBytes
	}
	for _, d := range m.Deltas {
		p.to[d.ToSHA256] = append(p.to[d.ToSHA256], d)
	}
	return p
}

// bestDelta is the smallest delta to a whose base the cache holds, or nil
// (also when the source serves no deltas). In TUF mode the deltas come
// from the verified product documents (tuf.Repository.Manifest).
func (s *Syncer) bestDelta(a snapshot.Artifact, p deltaPlan) *snapshot.Delta {
	if !s.servesDeltas() {
		return nil
	}
	var best *snapshot.Delta
	for i, d := range p.to[a.SHA256] {
		size, ok := p.sizes[d.FromSHA256]
		if !ok || !s.cache.Has(d.FromSHA256, size) {
			continue
		}
		if best == nil || d.SizeBytes < best.SizeBytes {
			best = &p.to[a.SHA256][i]
		}
	}
	return best
}

// fetchVia gets one artifact: rebuilt from a held base and the signed
// delta d when d is not nil, else (or when that fails) whole.
func (s *Syncer) fetchVia(ctx context.Context, a snapshot.Artifact, d *snapshot.Delta, p deltaPlan) (rebuilt bool, n int64, err error) {
	if d == nil {
		n, err = s.fetch(ctx, a)
		return false, n, err
	}
	n, err = s.rebuild(ctx, a, *d, p.sizes[d.FromSHA256])
	if err == nil {
		s.cfg.Logger.Info("artifact rebuilt from a delta", "artifact_id", a.ArtifactID, "delta_id", d.DeltaID,
			"delta_bytes", d.SizeBytes, "artifact_bytes", a.SizeBytes)
		return true, n, nil
	}
	if ctx.Err() != nil {
		return false, n, ctx.Err()
	}
	s.cfg.Logger.Warn("delta not used; fetching the whole artifact", "artifact_id", a.ArtifactID, "delta_id", d.DeltaID, "err", err)
	m, err := s.fetch(ctx, a)
	return false, n + m, err
}

// rebuild fetches delta d into the cache (verified against its signed
// sha256 and size), applies it to the cached base and commits the
// result as a's blob only when it verifies against a's signed sha256 and
// size (cache.Ingest hashes it again on the way in). It returns the delta
// bytes transferred.
func (s *Syncer) rebuild(ctx context.Context, a snapshot.Artifact, d snapshot.Delta, baseSize int64) (int64, error) {
	n, err := s.fetchDelta(ctx, d)
	if err != nil {
		return n, err
	}
	return n, s.applyCached(ctx, a, d, baseSize)
}

// applyCached rebuilds a from its cached base and the cached delta d and
// commits it to the cache only when it verifies against a's signed
// sha256 and size.
func (s *Syncer) applyCached(ctx context.Context, a snapshot.Artifact, d snapshot.Delta, baseSize int64) error {
	df, err := s.cache.Open(d.SHA256)
	if err != nil {
		return err
	}
	defer df.Close()
	return s.rebuildFrom(ctx, a, d, baseSize, df)
}

// rebuildFrom rebuilds a from its cached base and delta d read from df,
// and commits it to the cache only when it verifies against a's signed
// sha256 and size.
func (s *Syncer) rebuildFrom(ctx context.Context, a snapshot.Artifact, d snapshot.Delta, baseSize int64, df io.Reader) error {
	want, err := deltaWant(a, d, baseSize)
	if err != nil {
		return err
	}
	base, err := s.cache.Open(d.FromSHA256)
	if err != nil {
		return err
	}
	defer base.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		// The cache's blobs were hashed on the way in: the base need not
		// be hashed again; the rebuilt bytes are verified either way.
		err := delta.Apply(ctx, pw, df, base, want, delta.ApplyOptions{BaseVerified: true})
		pw.CloseWithError(err)
		done <- err
	}()
	ierr := s.cache.Ingest(ctx, a.SHA256, a.SizeBytes, pr)
	pr.CloseWithError(errors.New("rebuild abandoned"))
	aerr := <-done
	if aerr != nil {
		return fmt.Errorf("apply delta %s: %w", d.DeltaID, aerr)
	}
	if ierr != nil {
		return fmt.Errorf("commit rebuilt artifact %s: %w", a.ArtifactID, ierr)
	}
	return nil
}

// deltaWant is what delta d must rebuild: a, from a base of baseSize.
func deltaWant(a snapshot.Artifact, d snapshot.Delta, baseSize int64) (delta.Want, error) {
	want := delta.Want{BaseSize: baseSize, Size: a.SizeBytes}
	var err error
	if want.BaseSHA256, err = delta.ParseDigest(d.FromSHA256); err != nil {
		return want, err
	}
	if want.SHA256, err = delta.ParseDigest(a.SHA256); err != nil {
		return want, err
	}
	return want, nil
}

// fetchDelta makes sure delta d is in the cache, verified against its
// signed sha256 and size, in one attempt (a caller falls back to the
// whole artifact).
func (s *Syncer) fetchDelta(ctx context.Context, d snapshot.Delta) (int64, error) {
	if s.cache.Has(d.SHA256, d.SizeBytes) {
		return 0, nil
	}
	var n int64
	var err error = errors.New("the source serves no deltas")
	// A delta is a target of its product's role: fetched by its target
	// path first (any TUF repository serves it), then, from a source that
	// predates delta targets, by the delta routes.
	if path, known := s.tufPaths[d.SHA256]; known && s.src != nil {
		n, err = s.cache.Fetch(ctx, d.SHA256, d.SizeBytes, func(ctx context.Context, off int64) (*fetch.Body, error) {
			return s.src.TUFTarget(ctx, path, off)
		})
		if err == nil || ctx.Err() != nil {
			return n, wrapDelta(d, err)
		}
	}
	if src, ok := s.src.(DeltaSource); ok {
		var m int64
		m, err = s.cache.Fetch(ctx, d.SHA256, d.SizeBytes, func(ctx context.Context, off int64) (*fetch.Body, error) {
			return src.Delta(ctx, d, off)
		})
		n += m
	}
	return n, wrapDelta(d, err)
}

func wrapDelta(d snapshot.Delta, err error) error {
	if err != nil {
		return fmt.Errorf("delta %s: %w", d.DeltaID, err)
	}
	return nil
}

// servesDeltas says whether there is a source to fetch deltas from (as
// TUF targets, or by the delta routes).
func (s *Syncer) servesDeltas() bool { return s.src != nil }

// fetchDeltas fetches, best effort, every delta of the plan whose target
// is needed, so the mirror can serve deltas to its clients. A failure is
// logged: a client offered a delta the mirror lacks falls back to the
// whole artifact.
func (s *Syncer) fetchDeltas(ctx context.Context, need []snapshot.Artifact, p deltaPlan, res *state.SyncResult) {
	if !s.servesDeltas() || len(p.to) == 0 {
		return
	}
	for _, a := range need {
		for _, d := range p.to[a.SHA256] {
			if ctx.Err() != nil {
				return
			}
			n, err := s.fetchDelta(ctx, d)
			res.Bytes += n
			if err != nil {
				s.cfg.Logger.Warn("delta not cached", "delta_id", d.DeltaID, "err", err)
			}
		}
	}
}
