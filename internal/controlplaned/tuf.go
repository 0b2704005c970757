package controlplaned

import (
	"path/filepath"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/tufkeys"
)

// TUFDir is the TUF key directory under the keys directory.
func TUFDir(keysDir string) tufkeys.Dir { return tufkeys.Dir(filepath.Join(keysDir, "tuf")) }

// EnableTUF turns on TUF publishing when `controlplane root init` has
// made the keys; without them it stores unsigned build records only and
// no site can sync.
func EnableTUF(app *controlplane.App, keysDir string) error {
	d := TUFDir(keysDir)
	if !d.Exists() {
		return nil
	}
	return app.EnableTUF(controlplane.TUFOptions{Keys: d})
}
