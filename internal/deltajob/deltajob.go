// Package deltajob is the control plane's durable queue of delta builds
// (issue 13) on the store's transactional key-value backend (store/kv),
// so one implementation serves bbolt and PostgreSQL and a restart resumes
// where it stopped: a job is pending until a worker claims it, running
// under a lease the worker renews, and finally done (offered or not) or
// failed. A running job whose lease ran out (its worker died) is claimed
// again.
package deltajob

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store/kv"
)

// States of a job.
const (
	Pending = "pending"
	Running = "running"
	Done    = "done"    // built and offered
	Skipped = "skipped" // built, but over the share rule: not offered
	Failed  = "failed"
)

var (
	bJobs    = []byte("delta_jobs")       // id → job
	bQueue   = []byte("delta_queue")      // id → nil while pending or running (ids sort by creation)
	bRelease = []byte("delta_by_release") // release id + 0 + id → nil
	bPair    = []byte("delta_by_pair")    // to artifact id + 0 + from artifact id → id
	bOffered = []byte("delta_offered")    // id → nil, done and offered

	// Buckets lists the buckets the queue uses; a backend that needs its
	// buckets created (bbolt) creates these too.
	Buckets = [][]byte{bJobs, bQueue, bRelease, bPair, bOffered}
)

// Job is one delta to build: from an artifact of an earlier release to an
// artifact of a new one (same product, platform, arch, installer type).
type Job struct {
	DeltaID        string `json:"delta_id"`
	ProductID      string `json:"product_id"`
	ReleaseID      string `json:"release_id"`      // the release of the target
	FromReleaseID  string `json:"from_release_id"` // the release of the base
	FromVersion    string `json:"from_version"`
	FromArtifactID string `json:"from_artifact_id"`
	ToArtifactID   string `json:"to_artifact_id"`
	FromSHA256     string `json:"from_sha256"`
	ToSHA256       string `json:"to_sha256"`
	FromSize       int64  `json:"from_size_bytes"`
	ToSize         int64  `json:"to_size_bytes"`
	Platform       string `json:"platform"`
	Arch           string `json:"arch"`
	InstallerType  string `json:"installer_type"`

	State string `json:"state"`
	// The delta, once built.
	SHA256    string  `json:"sha256,omitempty"`
	SizeBytes int64   `json:"size_bytes,omitempty"`
	Share     float64 `json:"share,omitempty"` // SizeBytes ÷ ToSize
	Offered   bool    `json:"offered"`
	BlobKey   string  `json:"-"`
	Error     string  `json:"error,omitempty"`
	Attempts  int     `json:"attempts"`
	// BuildSeconds is how long the last build took.
	BuildSeconds float64 `json:"build_seconds,omitempty"`

	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
}

// jobRecord stores BlobKey too (Job hides it from API answers).
type jobRecord struct {
	Job
	BlobKey string `json:"blob_key,omitempty"`
}

// Queue is the job queue on one backend.
type Queue struct{ b kv.Backend }

// New returns the queue on b, whose Buckets must exist.
func New(b kv.Backend) *Queue { return &Queue{b: b} }

func join(a, b string) []byte {
	k := append([]byte(a), 0)
	return append(k, b...)
}

func get(b kv.Bucket, id string) (*Job, error) {
	raw := b.Get([]byte(id))
	if raw == nil {
		return nil, catalog.NotFound("delta", id)
	}
	var r jobRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode delta job %s: %w", id, err)
	}
	r.Job.BlobKey = r.BlobKey
	return &r.Job, nil
}

func put(b kv.Bucket, j *Job) error {
	raw, err := json.Marshal(jobRecord{Job: *j, BlobKey: j.BlobKey})
	if err != nil {
		return err
	}
	return b.Put([]byte(j.DeltaID), raw)
}

// Enqueue adds the jobs whose (to, from) artifact pair has no job yet, as
// pending, in one transaction, and returns those it added.
func (q *Queue) Enqueue(ctx context.Context, jobs []*Job) ([]*Job, error) {
	var added []*Job
	err := q.b.Update(ctx, func(tx kv.Tx) error {
		added = added[:0]
		pairs := tx.Bucket(bPair)
		for _, j := range jobs {
			pk := join(j.ToArtifactID, j.FromArtifactID)
			if pairs.Get(pk) != nil {
				continue
			}
			c := *j
			c.State = Pending
			if err := put(tx.Bucket(bJobs), &c); err != nil {
				return err
			}
			for _, kv := range [][2][]byte{{bQueue, []byte(c.DeltaID)}, {bRelease, join(c.ReleaseID, c.DeltaID)}} {
				if err := tx.Bucket(kv[0]).Put(kv[1], []byte{}); err != nil {
					return err
				}
			}
			if err := pairs.Put(pk, []byte(c.DeltaID)); err != nil {
				return err
			}
			added = append(added, &c)
		}
		return nil
	})
	return added, err
}

// Claim takes the oldest job that is pending, or running with its lease
// expired at now, marks it running under a lease until now+lease and
// returns it; nil when there is none.
func (q *Queue) Claim(ctx context.Context, now time.Time, lease time.Duration) (*Job, error) {
	var out *Job
	err := q.b.Update(ctx, func(tx kv.Tx) error {
		out = nil
		jobs := tx.Bucket(bJobs)
		c := tx.Bucket(bQueue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			j, err := get(jobs, string(k))
			if err != nil {
				return err
			}
			if j.State == Running && j.LeaseUntil != nil && now.Before(*j.LeaseUntil) {
				continue
			}
			until := now.Add(lease)
			start := now
			j.State, j.StartedAt, j.LeaseUntil = Running, &start, &until
			j.Attempts++
			if err := put(jobs, j); err != nil {
				return err
			}
			out = j
			return nil
		}
		return nil
	})
	return out, err
}

// Renew extends the lease of a running job; it reports false when the job
// is no longer running (another worker took it over after a lapse).
func (q *Queue) Renew(ctx context.Context, id string, attempts int, until time.Time) (bool, error) {
	ok := false
	err := q.b.Update(ctx, func(tx kv.Tx) error {
		jobs := tx.Bucket(bJobs)
		j, err := get(jobs, id)
		if err != nil {
			return err
		}
		if ok = j.State == Running && j.Attempts == attempts; !ok {
			return nil
		}
		j.LeaseUntil = &until
		return put(jobs, j)
	})
	return ok, err
}

// Finish records the outcome of the claim j (State Done, Skipped or
// Failed, and the delta's fields) and takes the job off the queue. It
// reports false, writing nothing, when the job was claimed again since
// (the stored attempt is not j's).
func (q *Queue) Finish(ctx context.Context, j *Job) (bool, error) {
	switch j.State {
	case Done, Skipped, Failed:
	default:
		return false, fmt.Errorf("finish delta job %s: state %q is not final", j.DeltaID, j.State)
	}
	ok := false
	err := q.b.Update(ctx, func(tx kv.Tx) error {
		jobs := tx.Bucket(bJobs)
		cur, err := get(jobs, j.DeltaID)
		if err != nil {
			return err
		}
		if ok = cur.State == Running && cur.Attempts == j.Attempts; !ok {
			return nil
		}
		c := *j
		c.LeaseUntil = nil
		if err := put(jobs, &c); err != nil {
			return err
		}
		if err := tx.Bucket(bQueue).Delete([]byte(c.DeltaID)); err != nil {
			return err
		}
		if c.State == Done && c.Offered {
			return tx.Bucket(bOffered).Put([]byte(c.DeltaID), []byte{})
		}
		return nil
	})
	return ok, err
}

// Job returns one job.
func (q *Queue) Job(ctx context.Context, id string) (*Job, error) {
	var out *Job
	err := q.b.View(ctx, func(tx kv.Tx) error {
		var err error
		out, err = get(tx.Bucket(bJobs), id)
		return err
	})
	return out, err
}

// ByRelease lists the jobs of a release's artifacts, oldest first.
func (q *Queue) ByRelease(ctx context.Context, releaseID string) ([]*Job, error) {
	var out []*Job
	err := q.b.View(ctx, func(tx kv.Tx) error {
		out = nil
		pfx := join(releaseID, "")
		jobs := tx.Bucket(bJobs)
		c := tx.Bucket(bRelease).Cursor()
		for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
			j, err := get(jobs, string(k[len(pfx):]))
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	return out, err
}

// Offered lists every delta that is built and offered, by id.
func (q *Queue) Offered(ctx context.Context) ([]*Job, error) {
	var out []*Job
	err := q.b.View(ctx, func(tx kv.Tx) error {
		out = nil
		jobs := tx.Bucket(bJobs)
		return tx.Bucket(bOffered).ForEach(func(k, _ []byte) error {
			j, err := get(jobs, string(k))
			if err != nil {
				return err
			}
			out = append(out, j)
			return nil
		})
	})
	return out, err
}

// Pending counts the jobs on the queue (pending or running).
func (q *Queue) Pending(ctx context.Context) (int, error) {
	n := 0
	err := q.b.View(ctx, func(tx kv.Tx) error {
		n = 0
		return tx.Bucket(bQueue).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	return n, err
}
