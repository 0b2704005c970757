package s3_test

import (
	"context"
	"testing"

	"github.com/outpost/outpost/internal/blob/blobtest"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/testenv"
)

func BenchmarkStore_Put(b *testing.B) {
	s, err := s3.New(context.Background(), testenv.S3(b))
	if err != nil {
		b.Fatal(err)
	}
	blobtest.BenchmarkPut(b, s)
}
