package client_test

import (
	"testing"

	"github.com/outpost/outpost/internal/testenv"
)

// TestClient_Dependencies: the public client carries no database and no
// control plane code (docs/architecture.md, the mirror side's package
// map).
func TestClient_Dependencies(t *testing.T) {
	testenv.ForbidDeps(t, "github.com/outpost/outpost/client",
		"go.etcd.io/bbolt",
		"github.com/outpost/outpost/internal/store",
		"github.com/outpost/outpost/internal/mirror",
		"github.com/outpost/outpost/internal/controlplane",
		"github.com/outpost/outpost/internal/httpapi",
	)
}
