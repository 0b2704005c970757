package httpapi_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
)

func TestServer_SweepOrphanBlobs(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	kept := h.upload([]byte("recorded"))
	orphan := "artifacts/" + catalog.NewID(catalog.PrefixArtifact)
	if _, err := h.blobs.Put(ctx, orphan, bytes.NewReader([]byte("crash leftover")), blob.Expect{}); err != nil {
		t.Fatal(err)
	}
	other := "elsewhere/not-an-artifact"
	h.blobs.Put(ctx, other, bytes.NewReader([]byte("x")), blob.Expect{})

	if n, err := h.app.SweepOrphanBlobs(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("a fresh orphan was swept (n=%d, %v): an upload in flight could lose its bytes", n, err)
	}
	n, err := h.app.SweepOrphanBlobs(ctx, -time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want 1", n, err)
	}
	if _, err := h.blobs.Stat(ctx, orphan); err == nil {
		t.Fatal("orphan still there")
	}
	for _, key := range []string{"artifacts/" + kept, other} {
		if _, err := h.blobs.Stat(ctx, key); err != nil {
			t.Fatalf("%s was swept: %v", key, err)
		}
	}
}
