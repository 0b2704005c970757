package snapshot_test

import (
	"testing"

	"github.com/outpost/outpost/internal/testenv"
)

// TestSnapshot_Dependencies: the trust core is pure; it imports nothing
// of Outpost's stores, transports or daemons.
func TestSnapshot_Dependencies(t *testing.T) {
	testenv.ForbidDeps(t, "github.com/outpost/outpost/internal/snapshot",
		"go.etcd.io/bbolt",
		"github.com/outpost/outpost/internal/store",
		"github.com/outpost/outpost/internal/wire",
		"github.com/outpost/outpost/internal/controlplane",
		"github.com/outpost/outpost/internal/mirror",
	)
}
