package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestBundleCmd_SmallPair runs the air-gap bundle measurement of
// bench/delta.sh on a small pair: the export, the --since bundle with its
// delta, and the mirror's rebuild from it (bundleCmd fails if the mirror
// did not rebuild the new artifact). make bench alone had run it, and it
// broke unseen when bundles became TUF repositories.
func TestBundleCmd_SmallPair(t *testing.T) {
	dir := t.TempDir()
	base := make([]byte, 1<<20)
	rand.Read(base)
	target := append(bytes.Clone(base), "a new version"...)
	bp, tp := filepath.Join(dir, "base"), filepath.Join(dir, "target")
	if err := os.WriteFile(bp, base, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tp, target, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bundleCmd(context.Background(), []string{"-base", bp, "-target", tp, "-dir", filepath.Join(dir, "work")}); err != nil {
		t.Fatalf("bundle: %v", err)
	}
}
