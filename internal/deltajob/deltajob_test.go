package deltajob_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/store/postgres"
)

// opener opens the same store again (a restart).
type opener func(t *testing.T) (io.Closer, *deltajob.Queue)

func boltOpener(t *testing.T) opener {
	path := filepath.Join(t.TempDir(), "cp.db")
	return func(t *testing.T) (io.Closer, *deltajob.Queue) {
		t.Helper()
		db, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db, deltajob.New(db.Backend())
	}
}

// postgresOpener needs OUTPOST_TEST_POSTGRES_URL (scripts/postgres.sh), or
// OUTPOST_SKIP_POSTGRES=1 to skip; each test gets a schema of its own.
func postgresOpener(t *testing.T) opener {
	url := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
			t.Skip("OUTPOST_SKIP_POSTGRES=1")
		}
		t.Fatal("OUTPOST_TEST_POSTGRES_URL is not set: `export OUTPOST_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\"`, or OUTPOST_SKIP_POSTGRES=1 to skip")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "outpost_test_dj_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return func(t *testing.T) (io.Closer, *deltajob.Queue) {
		t.Helper()
		db, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatalf("open %s: %v", schema, err)
		}
		return db, deltajob.New(db.Backend())
	}
}

func job(id, rel, to, from string) *deltajob.Job {
	return &deltajob.Job{DeltaID: id, ReleaseID: rel, ToArtifactID: to, FromArtifactID: from, CreatedAt: time.Unix(1, 0).UTC()}
}

func TestQueue_SurvivesRestart(t *testing.T) {
	t.Run("bolt", func(t *testing.T) { testSurvivesRestart(t, boltOpener(t)) })
	t.Run("postgres", func(t *testing.T) { testSurvivesRestart(t, postgresOpener(t)) })
}

func testSurvivesRestart(t *testing.T, open opener) {
	ctx := context.Background()
	db, q := open(t)
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

	db, q = open(t)
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
