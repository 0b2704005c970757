package state

import (
	"github.com/outpost/outpost/internal/fleet/boltstore"
)

// FleetStore is the durable store of client events (fleet_meta,
// fleet_aggregates, fleet_events buckets) inside mirror.db, created on
// first use. It shares the state's database and lives as long as the
// state: Close does not close it separately. Only one fleet.Aggregator
// should write through it.
func (s *State) FleetStore() (*boltstore.Store, error) {
	return boltstore.New(s.db)
}
