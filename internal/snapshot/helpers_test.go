package snapshot_test

import (
	"encoding/json"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// small returns a fresh manifest with every list non-empty.
func small() *snapshot.Manifest { return snapshottest.Manifest(2, 3, 2) }

// encode is m as JSON (what the TUF builder's documents and the stored
// records hold).
func encode(t testing.TB, m *snapshot.Manifest) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
