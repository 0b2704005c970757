package deltajob_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/store/bolt"
)

func open(t *testing.T, path string) (*bolt.DB, *deltajob.Queue) {
	t.Helper()
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, deltajob.New(db.Backend())
}

func job(id, rel, to, from string) *deltajob.Job {
	return &deltajob.Job{DeltaID: id, ReleaseID: rel, ToArtifactID: to, FromArtifactID: from, CreatedAt: time.Unix(1, 0).UTC()}
}

func TestQueue_SurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	db, q := open(t, path)
	added, err := q.Enqueue(ctx, []*deltajob.Job{job("dlt_1", "rel_b", "art_b", "art_a"), job("dlt_2", "rel_c", "art_c", "art_b")})
	if err != nil || len(added) != 2 {
		t.Fatalf("Enqueue: %d added, %v", len(added), err)
	}
	now := time.Unix(1000, 0)
	// dlt_1 is running when the process dies; dlt_2 never started.
	if j, err := q.Claim(ctx, now, time.Minute); err != nil || j.DeltaID != "dlt_1" {
		t.Fatalf("Claim: %+v, %v", j, err)
	}
	db.Close()

	db, q = open(t, path)
	defer db.Close()
	t.Run("a pending job resumes, a running one waits for its lease", func(t *testing.T) {
		j, err := q.Claim(ctx, now.Add(time.Second), time.Minute)
		if err != nil || j == nil || j.DeltaID != "dlt_2" {
			t.Fatalf("got %+v, %v, want dlt_2", j, err)
		}
		if j, _ := q.Claim(ctx, now.Add(2*time.Second), time.Minute); j != nil {
			t.Fatalf("got %s while both leases hold, want none", j.DeltaID)
		}
	})
	t.Run("a lapsed lease is claimed again", func(t *testing.T) {
		j, err := q.Claim(ctx, now.Add(2*time.Minute), time.Minute)
		if err != nil || j == nil || j.DeltaID != "dlt_1" || j.Attempts != 2 {
			t.Fatalf("got %+v, %v, want dlt_1 attempt 2", j, err)
		}
		stale := *j
		stale.Attempts = 1
		stale.State = deltajob.Done
		if ok, err := q.Finish(ctx, &stale); ok || err != nil {
			t.Errorf("Finish of the lapsed attempt: %v, %v, want refused", ok, err)
		}
		j.State, j.Offered, j.SizeBytes = deltajob.Done, true, 10
		if ok, err := q.Finish(ctx, j); !ok || err != nil {
			t.Fatalf("Finish: %v, %v", ok, err)
		}
	})
	t.Run("done jobs are listed, the pair is not queued twice", func(t *testing.T) {
		offered, err := q.Offered(ctx)
		if err != nil || len(offered) != 1 || offered[0].DeltaID != "dlt_1" {
			t.Fatalf("Offered: %+v, %v", offered, err)
		}
		added, err := q.Enqueue(ctx, []*deltajob.Job{job("dlt_3", "rel_b", "art_b", "art_a")})
		if err != nil || len(added) != 0 {
			t.Errorf("Enqueue of a known pair: %d added, %v", len(added), err)
		}
		byRel, err := q.ByRelease(ctx, "rel_b")
		if err != nil || len(byRel) != 1 || byRel[0].State != deltajob.Done {
			t.Errorf("ByRelease: %+v, %v", byRel, err)
		}
		if n, _ := q.Pending(ctx); n != 1 {
			t.Errorf("Pending = %d, want 1 (dlt_2 running)", n)
		}
	})
}
