package snapshot_test

import (
	"encoding/json"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
)

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
