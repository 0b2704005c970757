package disk

import (
	"testing"

	"github.com/outpost/outpost/internal/blob/blobtest"
)

func BenchmarkStore_Put(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	blobtest.BenchmarkPut(b, s)
}
