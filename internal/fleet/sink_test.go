package fleet_test

import (
	"context"
	"testing"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/storetest"
)

func TestMemSink_Contract(t *testing.T) {
	storetest.RunSink(t, func(t *testing.T) storetest.SinkUnderTest {
		s := fleet.NewMemSink()
		return storetest.SinkUnderTest{
			Run:     func(ctx context.Context, fn func(fleet.Sink) error) error { return fn(s) },
			Sources: func(rel string) ([]fleet.Source, error) { return s.Sources(rel), nil },
			Cursor:  func(o fleet.Origin) (uint64, error) { return s.Cursor(o), nil },
			Events:  func(o fleet.Origin) (int, error) { return s.Events(), nil },
		}
	})
}
