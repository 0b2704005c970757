package kv

import (
	"context"
	"fmt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// TUF buckets: published files by scope \0 name, and current sets by
// scope \0 set name (a JSON list of file names).
var (
	bTUFFiles = []byte("tuf_files")
	bTUFSets  = []byte("tuf_sets")
)

func init() { Buckets = append(Buckets, bTUFFiles, bTUFSets) }

var _ store.TUFFiles = (*Store)(nil)

// maxTUFName bounds a file or set name (tuf.CheckPath allows 512 bytes).
const maxTUFName = 1024

func checkTUFKey(what, s string) error {
	if s == "" || len(s) > maxTUFName {
		return catalog.Invalid(what, "must be 1 to %d bytes", maxTUFName)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return catalog.Invalid(what, "must not contain NUL")
		}
	}
	return nil
}

// PutTUFFiles writes files and sets of scope in one transaction.
func (db *Store) PutTUFFiles(ctx context.Context, scope string, files []store.TUFFile, sets map[string][]string) error {
	if err := checkTUFKey("scope", scope); err != nil {
		return err
	}
	for _, f := range files {
		if err := checkTUFKey("name", f.Name); err != nil {
			return err
		}
	}
	for name := range sets {
		if err := checkTUFKey("set", name); err != nil {
			return err
		}
	}
	return db.update(ctx, func(w *wtx) error {
		b := w.Bucket(bTUFFiles)
		for _, f := range files {
			if err := b.Put(key(scope, f.Name), f.Data); err != nil {
				return fmt.Errorf("put tuf file %s: %w", f.Name, err)
			}
		}
		for name, list := range sets {
			for _, n := range list {
				if b.Get(key(scope, n)) == nil {
					return catalog.Invalid("sets", "set %s names %s, which scope %s does not hold", name, n, scope)
				}
			}
			if err := putJSON(w, bTUFSets, key(scope, name), list); err != nil {
				return err
			}
		}
		return nil
	})
}

// TUFFile returns one file of scope.
func (db *Store) TUFFile(ctx context.Context, scope, name string) ([]byte, error) {
	var out []byte
	err := db.view(ctx, func(tx Tx) error {
		v := tx.Bucket(bTUFFiles).Get(key(scope, name))
		if v == nil {
			return catalog.NotFound("tuf file", name)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// TUFSet returns the files of a set of scope, in the set's order.
func (db *Store) TUFSet(ctx context.Context, scope, set string) ([]store.TUFFile, error) {
	var out []store.TUFFile
	err := db.view(ctx, func(tx Tx) error {
		var names []string
		ok, err := getJSON(tx, bTUFSets, key(scope, set), &names)
		if err != nil || !ok {
			return err
		}
		b := tx.Bucket(bTUFFiles)
		for _, n := range names {
			v := b.Get(key(scope, n))
			if v == nil {
				return fmt.Errorf("tuf set %s of %s names missing file %s", set, scope, n)
			}
			out = append(out, store.TUFFile{Name: n, Data: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}
