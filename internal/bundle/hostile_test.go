package bundle_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/tarsafe"
)

// block is one hand-made 512-byte ustar header (archive/tar will not
// write sparse or special headers itself).
func block(name string, typ byte, size int64, link string) []byte {
	return blockWith(name, typ, size, link, nil)
}

func blockWith(name string, typ byte, size int64, link string, fill func([]byte)) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[157:257], link)
	copy(b[257:265], "ustar\x0000")
	if fill != nil {
		fill(b)
	}
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padded(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

func record(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec) + 1
	for len(fmt.Sprint(n))+len(rec) != n {
		n++
	}
	return fmt.Sprintf("%d%s", n, rec)
}

// withEntry is a TUF bundle holding its manifest and one file, then raw.
func withEntry(t *testing.T, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := bundle.NewTUFWriter(&buf, bundle.TUFManifest{TenantID: "ten_1", Files: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteFile("metadata/timestamp.json", []byte("{}"))
	w.WriteFile("metadata/1.root.json", []byte("{}")) // the count Close checks
	w.Close()
	out := buf.Bytes()
	// Drop the last file and the end marker: raw takes the file's place.
	i := bytes.LastIndex(out, []byte("metadata/1.root.json"))
	out = out[:i-(i%512)]
	return append(append(out, raw...), make([]byte, 1024)...)
}

// countingReader counts the bytes handed out of an entry body.
func drain(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }

func TestReader_RefusesUnsafeEntries(t *testing.T) {
	sha := strings.Repeat("c", 64)
	const claimed = 1 << 30
	pax := record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
		record("GNU.sparse.name", "artifacts/"+sha) + record("GNU.sparse.realsize", fmt.Sprint(claimed))
	sparseData := append(padded([]byte("1\n0\n4096\n")), bytes.Repeat([]byte{'x'}, 4096)...)
	paxSparse := append(append(block("PaxHeaders/s", 'x', int64(len(pax)), ""), padded([]byte(pax))...),
		append(block("GNUSparseFile.0/s", '0', int64(len(sparseData)), ""), padded(sparseData)...)...)

	cases := []struct {
		name string
		raw  []byte
		want string
	}{
		{"pax sparse 1.0 claiming 1 GiB", paxSparse, "sparse"},
		{"gnu sparse type S", append(blockWith("artifacts/"+sha, 'S', 512, "", func(b []byte) {
			copy(b[257:265], "ustar  \x00") // GNU magic
			copy(b[386:398], fmt.Sprintf("%011o\x00", 0))
			copy(b[398:410], fmt.Sprintf("%011o\x00", 512))
			copy(b[483:495], fmt.Sprintf("%011o\x00", claimed))
		}), make([]byte, 512)...), "sparse"},
		{"symlink", block("artifacts/"+sha, '2', 0, "/etc/passwd"), "symlink"},
		{"hard link", block("artifacts/"+sha, '1', 0, "snapshot.dsse.json"), "hard link"},
		{"char device", block("artifacts/"+sha, '3', 0, ""), "character device"},
		{"fifo", block("artifacts/"+sha, '6', 0, ""), "fifo"},
		{"dot dot", append(block("artifacts/../"+sha, '0', 1, ""), padded([]byte("x"))...), "'..'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := bundle.NewReader(bytes.NewReader(withEntry(t, c.raw)))
			if _, err := r.TUFManifest(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.NextFile(); err != nil {
				t.Fatal(err)
			}
			_, err := r.NextFile()
			if !errors.Is(err, bundle.ErrInvalid) || !errors.Is(err, tarsafe.ErrUnsafe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Next = %v, want ErrInvalid wrapping tarsafe.ErrUnsafe naming %q", err, c.want)
			}
			if n, _ := drain(r.Body()); n != 0 {
				t.Errorf("the refused entry still yielded %d bytes", n)
			}
		})
	}
}
