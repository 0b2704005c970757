package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/kv"
)

// deltaPrefix is where delta bytes live in the blob store.
const deltaPrefix = "deltas/"

// EventDeltaBuilt is the audit event of a finished delta build (offered,
// skipped by the share rule, or failed).
const EventDeltaBuilt = "delta.built"

// DeltaJob is a delta build as the API shows it.
type DeltaJob = deltajob.Job

// deltaQueueOf is the delta build queue on the store's own backend; nil
// when the store is not on store/kv.
func deltaQueueOf(st store.Store) *deltajob.Queue {
	if b, ok := st.(interface{ Backend() kv.Backend }); ok {
		return deltajob.New(b.Backend())
	}
	return nil
}

// deltasEnabled reports whether new releases get deltas.
func (a *App) deltasEnabled() bool { return a.deltas != nil && a.cfg.DeltaPrevious > 0 }

// wakeDeltas nudges the worker (RunDeltaWorker) without blocking.
func (a *App) wakeDeltas() {
	select {
	case a.deltaWake <- struct{}{}:
	default:
	}
}

// enqueueDeltas queues the deltas of a newly attached release artifact:
// from the artifacts of the DeltaPrevious releases of the same product
// published before it that have an artifact of the same platform, arch
// and installer type. Only MANAGED artifacts (bytes in the blob store)
// get deltas. A failure is logged: the attach has committed already.
func (a *App) enqueueDeltas(ctx context.Context, ra *catalog.ReleaseArtifact) {
	if !a.deltasEnabled() {
		return
	}
	jobs, err := a.deltaJobsFor(ctx, ra)
	if err == nil && len(jobs) > 0 {
		jobs, err = a.deltas.Enqueue(ctx, jobs)
	}
	if err != nil {
		a.log.Error("queue delta builds", "release", ra.ReleaseID, "artifact", ra.ArtifactID, "err", err)
		return
	}
	for _, j := range jobs {
		a.log.Info("delta build queued", "delta", j.DeltaID, "release", j.ReleaseID, "from_version", j.FromVersion,
			"from_artifact", j.FromArtifactID, "to_artifact", j.ToArtifactID)
	}
	if len(jobs) > 0 {
		a.wakeDeltas()
	}
}

func (a *App) deltaJobsFor(ctx context.Context, ra *catalog.ReleaseArtifact) ([]*deltajob.Job, error) {
	rel, err := a.store.Release(ctx, ra.ReleaseID)
	if err != nil {
		return nil, err
	}
	to, err := a.store.Artifact(ctx, ra.ArtifactID)
	if err != nil {
		return nil, err
	}
	if to.SourceType != catalog.SourceManaged {
		return nil, nil
	}
	var earlier []*catalog.Release
	err = eachPage(ctx, func(ctx context.Context, p store.Page) ([]*catalog.Release, string, error) {
		return a.store.Releases(ctx, rel.ProductID, p)
	}, func(r *catalog.Release) error {
		before := r.PublishedAt.Before(rel.PublishedAt) || r.PublishedAt.Equal(rel.PublishedAt) && r.ReleaseID < rel.ReleaseID
		if before {
			earlier = append(earlier, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Newest first.
	slices.SortFunc(earlier, func(x, y *catalog.Release) int {
		if c := y.PublishedAt.Compare(x.PublishedAt); c != 0 {
			return c
		}
		return -compareString(x.ReleaseID, y.ReleaseID)
	})
	now := a.now()
	var jobs []*deltajob.Job
	seen := map[string]bool{to.SHA256: true}
	for _, r := range earlier {
		if len(jobs) >= a.cfg.DeltaPrevious {
			break
		}
		ras, err := a.store.ReleaseArtifacts(ctx, r.ReleaseID)
		if err != nil {
			return nil, err
		}
		for _, x := range ras {
			if x.Platform != ra.Platform || x.Arch != ra.Arch || x.InstallerType != ra.InstallerType {
				continue
			}
			from, err := a.store.Artifact(ctx, x.ArtifactID)
			if err != nil {
				return nil, err
			}
			if from.SourceType != catalog.SourceManaged || from.Status != catalog.ArtifactVerified || seen[from.SHA256] {
				continue
			}
			seen[from.SHA256] = true
			jobs = append(jobs, &deltajob.Job{
				DeltaID: catalog.NewID(catalog.PrefixDelta), ProductID: rel.ProductID, ReleaseID: rel.ReleaseID,
				FromReleaseID: r.ReleaseID, FromVersion: r.Version,
				FromArtifactID: from.ArtifactID, ToArtifactID: to.ArtifactID,
				FromSHA256: from.SHA256, ToSHA256: to.SHA256, FromSize: from.SizeBytes, ToSize: to.SizeBytes,
				Platform: ra.Platform, Arch: ra.Arch, InstallerType: ra.InstallerType, CreatedAt: now,
			})
			break
		}
	}
	return jobs, nil
}

func compareString(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// ReleaseDeltas lists the delta builds of a release's artifacts with their
// state (pending, running, done, skipped, failed) and sizes.
func (a *App) ReleaseDeltas(ctx context.Context, releaseID string) ([]*DeltaJob, error) {
	if err := checkID(catalog.PrefixRelease, "release", releaseID); err != nil {
		return nil, err
	}
	if _, err := a.store.Release(ctx, releaseID); err != nil {
		return nil, err
	}
	if a.deltas == nil {
		return []*DeltaJob{}, nil
	}
	out, err := a.deltas.ByRelease(ctx, releaseID)
	if out == nil {
		out = []*DeltaJob{}
	}
	return out, err
}

// offeredDeltas is what the next snapshot may list: every built delta
// under the share rule (snapshot.Build keeps those between artifacts it
// lists).
func (a *App) offeredDeltas(ctx context.Context) ([]snapshot.Delta, error) {
	if a.deltas == nil {
		return nil, nil
	}
	jobs, err := a.deltas.Offered(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]snapshot.Delta, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, snapshot.Delta{
			DeltaID: j.DeltaID, FromArtifactID: j.FromArtifactID, ToArtifactID: j.ToArtifactID,
			FromSHA256: j.FromSHA256, ToSHA256: j.ToSHA256, SHA256: j.SHA256, SizeBytes: j.SizeBytes,
		})
	}
	return out, nil
}

// DeltaDelivery is a delta's bytes.
type DeltaDelivery struct {
	Delta   *snapshot.Delta
	Body    io.ReadCloser // an io.ReadSeeker when local (Range requests)
	ModTime time.Time
}

// OpenDelta hands out an offered delta: to an admin any; to a tenant one
// its latest snapshot lists; to a mirror one whose target artifact is of
// an ACTIVE release in its allowed channels. The caller closes Body.
func (a *App) OpenDelta(ctx context.Context, id string) (*DeltaDelivery, error) {
	if err := checkID(catalog.PrefixDelta, "delta", id); err != nil {
		return nil, err
	}
	if a.deltas == nil {
		return nil, catalog.NotFound("delta", id)
	}
	j, err := a.deltas.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.State != deltajob.Done || !j.Offered {
		return nil, catalog.NotFound("delta", id)
	}
	if p := principal(ctx); p.Role != catalog.RoleAdmin {
		v, err := a.view(ctx, p.TenantID)
		if err != nil {
			return nil, err
		}
		allowed := v.deltas[id]
		if allowed && p.Role == RoleMirror {
			allowed = false
			for _, ch := range p.Mirror.AllowedChannels {
				allowed = allowed || v.channels[j.ToArtifactID][ch]
			}
		}
		if !allowed {
			return nil, catalog.NotFound("delta", id)
		}
	}
	obj, info, err := a.blobs.Open(ctx, j.BlobKey)
	if err != nil {
		return nil, fmt.Errorf("open delta %s: %w", id, err)
	}
	mod := info.ModTime
	if mod.IsZero() && j.FinishedAt != nil {
		mod = *j.FinishedAt
	}
	return &DeltaDelivery{Delta: &snapshot.Delta{
		DeltaID: j.DeltaID, FromArtifactID: j.FromArtifactID, ToArtifactID: j.ToArtifactID,
		FromSHA256: j.FromSHA256, ToSHA256: j.ToSHA256, SHA256: j.SHA256, SizeBytes: j.SizeBytes,
	}, Body: obj, ModTime: mod}, nil
}

// RunDeltaWorker builds queued deltas one at a time until ctx ends: a job
// claimed under a lease the worker renews, so a job whose worker died is
// taken over once its lease lapses (at start after a restart). It wakes
// when a release artifact is attached and at least every poll.
func (a *App) RunDeltaWorker(ctx context.Context, poll time.Duration) error {
	if a.deltas == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	if poll <= 0 {
		poll = time.Minute
	}
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorSystem, ID: "delta-builder"})
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for {
			ran, err := a.RunDeltaJob(ctx)
			if err != nil && ctx.Err() == nil {
				a.log.Error("delta build", "err", err)
			}
			if !ran || err != nil || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.deltaWake:
		case <-t.C:
		}
	}
}

// RunDeltaJob claims and builds one queued delta; ran is false when the
// queue had nothing to claim. A build that fails is recorded as failed
// (the error is in the job), not returned.
func (a *App) RunDeltaJob(ctx context.Context) (ran bool, err error) {
	if a.deltas == nil {
		return false, nil
	}
	lease := a.cfg.DeltaLease
	j, err := a.deltas.Claim(ctx, a.now(), lease)
	if err != nil || j == nil {
		return false, err
	}
	a.log.Info("delta build started", "delta", j.DeltaID, "release", j.ReleaseID, "from_artifact", j.FromArtifactID,
		"to_artifact", j.ToArtifactID, "to_size", j.ToSize, "attempt", j.Attempts)
	bctx, cancel := context.WithCancel(ctx)
	renewDone := make(chan struct{})
	go func() { // renew the lease while building
		defer close(renewDone)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-t.C:
				ok, err := a.deltas.Renew(bctx, j.DeltaID, j.Attempts, a.now().Add(lease))
				if err == nil && !ok {
					cancel() // taken over: stop building
					return
				}
			}
		}
	}()
	start := time.Now()
	res, berr := a.buildDelta(bctx, j)
	cancel()
	<-renewDone
	if ctx.Err() != nil {
		// Stopping: leave the job running; its lease lapses and the next
		// start (or another instance) builds it again.
		return true, ctx.Err()
	}
	fin := a.now()
	j.FinishedAt = &fin
	j.BuildSeconds = time.Since(start).Seconds()
	switch {
	case berr != nil:
		j.State, j.Error = deltajob.Failed, berr.Error()
	default:
		j.SHA256, j.SizeBytes, j.BlobKey = res.sha256, res.size, res.key
		if j.ToSize > 0 {
			j.Share = float64(res.size) / float64(j.ToSize)
		}
		j.Offered = res.key != ""
		j.State = deltajob.Skipped
		if j.Offered {
			j.State = deltajob.Done
		}
	}
	ok, err := a.deltas.Finish(ctx, j)
	if err != nil || !ok {
		if res.key != "" {
			_ = a.blobs.Delete(context.WithoutCancel(ctx), res.key)
		}
		return true, err
	}
	a.log.Info("delta build finished", "delta", j.DeltaID, "state", j.State, "size", j.SizeBytes, "to_size", j.ToSize,
		"share", fmt.Sprintf("%.4f", j.Share), "seconds", fmt.Sprintf("%.1f", j.BuildSeconds), "err", j.Error)
	a.auditDelta(ctx, j)
	if j.Offered {
		a.republishFor(ctx, j.ToArtifactID)
	}
	return true, nil
}

func (a *App) auditDelta(ctx context.Context, j *deltajob.Job) {
	payload, err := json.Marshal(map[string]any{
		"delta_id": j.DeltaID, "release_id": j.ReleaseID, "from_release_id": j.FromReleaseID,
		"from_artifact_id": j.FromArtifactID, "to_artifact_id": j.ToArtifactID, "state": j.State,
		"size_bytes": j.SizeBytes, "to_size_bytes": j.ToSize, "offered": j.Offered, "error": j.Error,
	})
	if err == nil {
		ev := &catalog.AuditEvent{EventType: EventDeltaBuilt, Payload: payload, CreatedAt: a.now()}
		_, err = a.store.AppendAudit(ctx, ev, fmt.Sprintf("delta:%s:%d", j.DeltaID, j.Attempts))
	}
	if err != nil {
		a.log.Error("audit delta build", "delta", j.DeltaID, "err", err)
	}
}

// republishFor builds a new snapshot for every active tenant whose latest
// snapshot lists artifact through an ACTIVE release, so a new delta
// reaches mirrors without waiting for the next build.
func (a *App) republishFor(ctx context.Context, artifactID string) {
	err := eachPage(ctx, a.store.Tenants, func(t *catalog.Tenant) error {
		if t.Status != catalog.TenantActive {
			return nil
		}
		v, err := a.view(ctx, t.TenantID)
		if catalog.ErrorCode(err) == catalog.ENOTFOUND {
			return nil
		}
		if err != nil {
			return err
		}
		if len(v.channels[artifactID]) == 0 {
			return nil
		}
		snap, err := a.buildSnapshot(ctx, t.TenantID)
		if err != nil {
			return err
		}
		a.log.Info("snapshot rebuilt to list a new delta", "tenant", t.TenantID, "sequence", snap.Sequence)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		a.log.Error("rebuild snapshots for a new delta", "artifact", artifactID, "err", err)
	}
}

type builtDelta struct {
	key    string // "" when not offered (nothing stored)
	sha256 string
	size   int64
}

// buildDelta copies both artifacts from the blob store to temp files
// (hashing them against their records), builds the delta into a third
// temp file and, when the share rule offers it, stores it in the blob
// store. Nothing is held in memory beyond delta.Build's bound.
func (a *App) buildDelta(ctx context.Context, j *deltajob.Job) (builtDelta, error) {
	dir, err := os.MkdirTemp(a.cfg.DeltaTempDir, "outpost-delta-")
	if err != nil {
		return builtDelta{}, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	from, err := a.artifactFile(ctx, dir, j.FromArtifactID, j.FromSHA256, j.FromSize)
	if err != nil {
		return builtDelta{}, fmt.Errorf("base: %w", err)
	}
	defer from.Close()
	to, err := a.artifactFile(ctx, dir, j.ToArtifactID, j.ToSHA256, j.ToSize)
	if err != nil {
		return builtDelta{}, fmt.Errorf("target: %w", err)
	}
	defer to.Close()
	fromSum, _ := delta.ParseDigest(j.FromSHA256)
	toSum, _ := delta.ParseDigest(j.ToSHA256)
	out, err := os.CreateTemp(dir, "delta-")
	if err != nil {
		return builtDelta{}, err
	}
	defer out.Close()
	h := sha256.New()
	st, err := delta.Build(ctx, io.MultiWriter(out, h),
		delta.Source{R: from, Size: j.FromSize, SHA256: &fromSum},
		delta.Source{R: to, Size: j.ToSize, SHA256: &toSum}, delta.Options{})
	if err != nil {
		return builtDelta{}, fmt.Errorf("build: %w", err)
	}
	res := builtDelta{sha256: hex.EncodeToString(h.Sum(nil)), size: st.Size}
	if !delta.Offer(st.Size, j.ToSize, a.cfg.DeltaMaxShare) {
		return res, nil
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return builtDelta{}, err
	}
	key := deltaPrefix + j.DeltaID
	if _, err := a.blobs.Put(ctx, key, out, blob.Expect{SHA256: res.sha256, Size: res.size}); err != nil {
		return builtDelta{}, fmt.Errorf("store delta: %w", blob.NoSpace("the blob store", err))
	}
	res.key = key
	return res, nil
}

// artifactFile copies an artifact's bytes from the blob store into a temp
// file in dir, checking its size and sha256 on the way.
func (a *App) artifactFile(ctx context.Context, dir, id, sum string, size int64) (*os.File, error) {
	art, err := a.store.Artifact(ctx, id)
	if err != nil {
		return nil, err
	}
	obj, _, err := a.blobs.Open(ctx, art.StoragePath)
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", id, err)
	}
	defer obj.Close()
	f, err := os.CreateTemp(dir, "artifact-")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(&ctxReader{ctx, obj}, size+1))
	if err == nil && (n != size || hex.EncodeToString(h.Sum(nil)) != sum) {
		err = errors.New("stored bytes do not match the artifact's size and sha256")
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("copy artifact %s: %w", id, err)
	}
	return f, nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
