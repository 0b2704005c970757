package client

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDownload measures a verified download of a 16 MiB artifact over
// loopback: snapshot fetch and verification, streaming, hashing, fsync and
// rename.
func BenchmarkDownload(b *testing.B) {
	const size = 16 << 20
	v := newVendor(b, size)
	s := newServer(b, v)
	c, err := New(s.srv.URL, v.options(b)...)
	if err != nil {
		b.Fatal(err)
	}
	d, err := c.Check(context.Background(), Query{Product: v.m.Products[0].ProductID, Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	b.SetBytes(size)
	for b.Loop() {
		dest := filepath.Join(dir, "app.zip")
		if err := c.Download(context.Background(), d, dest, nil); err != nil {
			b.Fatal(err)
		}
		os.Remove(dest)
	}
}
