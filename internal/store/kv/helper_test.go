package kv

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// testDB is a Store on a bbolt file, as store/bolt opens it.
type testDB struct {
	*Store
	bdb *bbolt.DB
}

func (d *testDB) Close() error {
	d.Store.Close()
	return d.bdb.Close()
}

func openFile(path string, opts Options) (*testDB, error) {
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	err = bdb.Update(func(tx *bbolt.Tx) error {
		for _, name := range Buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, err
	}
	return &testDB{Store: New(Bolt(bdb), opts), bdb: bdb}, nil
}

func openTemp(t testing.TB) (*testDB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outpost.db")
	db, err := openFile(path, Options{Cache: true})
	if err != nil {
		t.Fatal(err)
	}
	return db, path
}
