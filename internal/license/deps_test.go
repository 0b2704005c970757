package license_test

import (
	"testing"

	"github.com/outpost/outpost/internal/testenv"
)

// TestLicense_Dependencies: lease admission and tokens are pure, shared
// by the control plane's store and the mirror's ledger; neither's storage
// is under them.
func TestLicense_Dependencies(t *testing.T) {
	testenv.ForbidDeps(t, "github.com/outpost/outpost/internal/license",
		"go.etcd.io/bbolt",
		"github.com/outpost/outpost/internal/store",
		"github.com/outpost/outpost/internal/mirror",
		"github.com/outpost/outpost/internal/controlplane",
	)
}
