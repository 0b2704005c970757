package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/boltstore"
	"github.com/outpost/outpost/internal/fleet/storetest"
)

type fleetStore = *boltstore.Store

var openStore = boltstore.Open

func TestStore_Contract(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) fleet.Store { return open(t, filepath.Join(t.TempDir(), "fleet.db")) },
		Reopen: func(t *testing.T, s fleet.Store) fleet.Store {
			bs := s.(*boltstore.Store)
			path := bs.Path()
			if err := bs.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, path)
		},
	})
}
