// Package bolt is the embedded implementation of store.Store on a single
// bbolt file: the shared logic of store/kv on bbolt, plus what only a local
// file has (an exclusive lock, online Backup) and the in-memory catalog
// cache that only a single writer can keep.
//
// Layout (for tests that edit the file behind the store's back, see
// store/bolt/bolttest):
// objects are JSON under their id in one bucket per kind; index buckets
// ("idx_…") hold composite keys joined by a NUL byte; audit events are JSON
// in bucket "audit" under their sequence as 8 big-endian bytes, and the
// chain head is meta["audit_head"].
package bolt

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/kv"
)

// SchemaVersion is the layout version kept in meta["schema_version"].
const SchemaVersion = 1

// ErrInUse is returned by Open when another process holds the file.
var ErrInUse = errors.New("data dir is in use by another process (is the daemon running?)")

var (
	bMeta          = []byte("meta")
	kSchemaVersion = []byte("schema_version")
)

// AuditBucket is the bucket holding audit events, keyed by sequence (8
// bytes, big-endian).
const AuditBucket = "audit"

// Options tunes Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock (default 100ms), so a
	// second process fails at once instead of hanging.
	LockTimeout time.Duration
	// NoSync skips fsync on commit. Only for benchmarks: a crash loses
	// committed data.
	NoSync bool
	// NoWarm skips decoding the vendor-wide catalog in the background at
	// Open; the first snapshot build then decodes it (about a second for
	// 100,000 releases). For short-lived commands that build no snapshot.
	NoWarm bool
}

// DB is a bbolt-backed store.Store.
type DB struct {
	*kv.Store
	bdb *bbolt.DB
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed, mode 0600) the store file at path.
func Open(path string, opts Options) (*DB, error) {
	bdb, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	err = bdb.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets() {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bMeta)
		v := meta.Get(kSchemaVersion)
		if v == nil {
			return meta.Put(kSchemaVersion, []byte(strconv.Itoa(SchemaVersion)))
		}
		if string(v) != strconv.Itoa(SchemaVersion) {
			return fmt.Errorf("store schema version %s, this build reads %d", v, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// This process alone writes the file, so it may cache the catalog.
	s := kv.New(kv.Bolt(bdb), kv.Options{Cache: true, NoWarm: opts.NoWarm})
	return &DB{Store: s, bdb: bdb}, nil
}

func openBolt(path string, opts Options) (*bbolt.DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		NoSync:       opts.NoSync,
		FreelistType: bbolt.FreelistMapType,
		// Address space only: growing the file within it needs no remap,
		// which would wait for every reader and copy every node of the
		// writing transaction (a snapshot envelope of 100,000 releases
		// is ~80 MB, so the file grows by that much per snapshot).
		InitialMmapSize: 1 << 30,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return bdb, nil
}

// Close stops the background catalog load, if running, and closes the
// file.
func (db *DB) Close() error {
	db.Store.Close()
	return db.bdb.Close()
}
