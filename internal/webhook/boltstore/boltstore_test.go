package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/boltstore"
	"github.com/outpost/outpost/internal/webhook/storetest"
)

func open(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore_Contract(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) webhook.Store { return open(t, filepath.Join(t.TempDir(), "outbox.db")) },
		Reopen: func(t *testing.T, s webhook.Store) webhook.Store {
			bs := s.(*boltstore.Store)
			path := bs.Path()
			if err := bs.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, path)
		},
	})
}
