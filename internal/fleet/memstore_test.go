package fleet_test

import (
	"testing"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/storetest"
)

func TestMemStore_Contract(t *testing.T) {
	storetest.Run(t, storetest.Factory{New: func(t *testing.T) fleet.Store { return fleet.NewMemStore() }})
}
