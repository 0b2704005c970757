package main_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sync/synctest"
)

// tarBlock builds one 512-byte ustar header by hand, the way a hostile
// archive would (archive/tar will not write sparse headers itself).
func tarBlock(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec) + 1
	for len(fmt.Sprint(n))+len(rec) != n {
		n++
	}
	return fmt.Sprintf("%d%s", n, rec)
}

// sparseBundle is a bundle whose one artifact entry is a GNU sparse 1.0
// file: 512 bytes of map and 4 KiB of data (4.5 KiB stored) that expand,
// through archive/tar, into exactly the artifact: size zero bytes but its
// last 4 KiB. Without tarsafe the mirror writes and hashes the full size,
// and the hash even matches.
func sparseBundle(t *testing.T, good []byte, art []byte) []byte {
	t.Helper()
	// Every entry of the genuine bundle but the artifact, then the
	// artifact's entry as a sparse file.
	var head bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(good))
	tw := tar.NewWriter(&head)
	name := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(hdr.Name, "targets/") {
			name = hdr.Name
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if name == "" {
		t.Fatal("the bundle carries no artifact")
	}
	tw.Flush() // no end marker
	out := head.Bytes()
	tail := art[len(art)-4096:]
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) +
		paxRecord("GNU.sparse.realsize", fmt.Sprint(len(art)))
	data := append(pad512([]byte(fmt.Sprintf("1\n%d\n4096\n", len(art)-4096))), tail...)
	out = append(out, tarBlock("PaxHeaders/sparse", 'x', int64(len(pax)))...)
	out = append(out, pad512([]byte(pax))...)
	out = append(out, tarBlock("GNUSparseFile.0/sparse", '0', int64(len(data)))...)
	out = append(out, pad512(data)...)
	return append(out, make([]byte, 1024)...)
}

// blobBytes sums the bytes of every file under the cache's blob directory.
func blobBytes(t *testing.T, dataDir string) (files int, n int64) {
	t.Helper()
	filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				files++
				n += fi.Size()
			}
		}
		return nil
	})
	return files, n
}

// TestMirror_RefusesSparseBundles mounts the sparse-entry attack against
// the real binary: a 4.5 KiB entry claiming the artifact's full size is
// refused by `mirror import` and by a serving mirror's inbox, and nothing
// is written to the cache.
func TestMirror_RefusesSparseBundles(t *testing.T) {
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	art := make([]byte, 8<<20)
	copy(art[len(art)-4096:], synctest.Random(4096))
	a := synctest.Art{ID: "art_sparse", Data: art}
	v.Publish(v.Manifest(1, []synctest.Art{a}))
	evil := sparseBundle(t, v.Bundle(t, 0), art)
	if len(evil) > 32<<10 {
		t.Fatalf("crafted bundle is %d bytes, want a few KiB", len(evil))
	}
	config := func(t *testing.T) (dir, path string) {
		dir = t.TempDir()
		cfg := trustConfig(t, dir, v) + "source: none\ninbox_interval: 100ms\nlog_level: warn\n"
		path = filepath.Join(dir, "mirror.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir, path
	}

	t.Run("mirror import", func(t *testing.T) {
		dir, cfg := config(t)
		file := filepath.Join(t.TempDir(), "evil.tar")
		os.WriteFile(file, evil, 0o600)
		_, stderr, err := run(bin, "import", "--config", cfg, file)
		if err == nil {
			t.Fatal("import of a sparse bundle succeeded")
		}
		if !strings.Contains(stderr, "sparse") {
			t.Errorf("stderr = %q, want it to name the sparse entry", stderr)
		}
		if files, n := blobBytes(t, dir); files != 0 || n != 0 {
			t.Errorf("cache holds %d files, %d bytes after the refusal, want none", files, n)
		}
	})
	t.Run("inbox", func(t *testing.T) {
		dir, cfg := config(t)
		d := startDaemon(t, bin, cfg)
		inbox := filepath.Join(dir, "inbox")
		os.MkdirAll(inbox, 0o700)
		os.WriteFile(filepath.Join(inbox, "evil.tar.part"), evil, 0o600)
		os.Rename(filepath.Join(inbox, "evil.tar.part"), filepath.Join(inbox, "evil.tar"))
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(inbox, "evil.tar")); os.IsNotExist(err) {
				break // the inbox took it: moved to done/ or failed/
			}
			if time.Now().After(deadline) {
				t.Fatal("the inbox never took the bundle")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(inbox, "done", "evil.tar")); err == nil {
			t.Error("the sparse bundle was imported (moved to done/)")
		}
		if got := d.check(t); got != 0 {
			t.Errorf("mirror serves sequence %d, want none", got)
		}
		if files, n := blobBytes(t, dir); files != 0 || n != 0 {
			t.Errorf("cache holds %d files, %d bytes after the refusal, want none", files, n)
		}
	})
}
