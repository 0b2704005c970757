package kvsink_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/kvsink"
	"github.com/outpost/outpost/internal/fleet/storetest"
	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/store/postgres"
)

func underTest(s *kvsink.Sink) storetest.SinkUnderTest {
	ctx := context.Background()
	return storetest.SinkUnderTest{
		Run:     s.Run,
		Sources: func(rel string) ([]fleet.Source, error) { return s.Sources(ctx, rel) },
		Cursor: func(o fleet.Origin) (uint64, error) {
			cs, err := s.Cursors(ctx)
			for _, c := range cs {
				if c.MirrorID == o.MirrorID && c.StoreID == o.StoreID {
					return c.Through, err
				}
			}
			return 0, err
		},
		Events: func(o fleet.Origin) (int, error) {
			n := 0
			err := s.Events(ctx, o, 0, func(fleet.Record) error { n++; return nil })
			return n, err
		},
	}
}

func TestSink_ContractBolt(t *testing.T) {
	storetest.RunSink(t, func(t *testing.T) storetest.SinkUnderTest {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "cp.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range kvsink.Buckets {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return underTest(kvsink.New(kv.Bolt(db)))
	})
}

// TestSink_ContractPostgres needs OUTPOST_TEST_POSTGRES_URL
// (scripts/postgres.sh), or OUTPOST_SKIP_POSTGRES=1 to skip.
func TestSink_ContractPostgres(t *testing.T) {
	url := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
			t.Skip("OUTPOST_SKIP_POSTGRES=1")
		}
		t.Fatal("OUTPOST_TEST_POSTGRES_URL is not set: `export OUTPOST_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\"`, or OUTPOST_SKIP_POSTGRES=1 to skip")
	}
	storetest.RunSink(t, func(t *testing.T) storetest.SinkUnderTest {
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "outpost_test_fleet_" + hex.EncodeToString(b[:])
		ctx := context.Background()
		db, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatalf("open %s: %v", schema, err)
		}
		t.Cleanup(func() {
			db.Close()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return
			}
			defer conn.Close(ctx)
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		})
		return underTest(kvsink.New(db.Backend()))
	})
}

func TestSink_PruneEvents(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "cp.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.Update(func(tx *bolt.Tx) error {
		for _, b := range kvsink.Buckets {
			_, _ = tx.CreateBucket(b)
		}
		return nil
	})
	s := kvsink.New(kv.Bolt(db))
	o := fleet.Origin{MirrorID: "mir_01jdk0000000000000000000aa", StoreID: "s1"}
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	err = s.Run(ctx, func(sink fleet.Sink) error {
		for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(48 * time.Hour)} {
			r := fleet.Record{Seq: uint64(i + 1), ReceivedAt: at, Event: fleet.Event{Type: fleet.TypeCheck, ClientID: "client-0001", Time: at}}
			if _, err := sink.PutEvent(ctx, o, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, t0.Add(24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	var left []uint64
	_ = s.Events(ctx, o, 0, func(r fleet.Record) error { left = append(left, r.Seq); return nil })
	if len(left) != 1 || left[0] != 3 {
		t.Errorf("events left = %v, want [3]", left)
	}
}
