package tarsafe

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// rawHeader builds one 512-byte tar header block by hand, the way a hostile
// archive would, since archive/tar refuses to write sparse and special
// headers itself. gnu selects the GNU magic (needed for type 'S').
func rawHeader(name string, typ byte, size int64, gnu bool, fill func(b []byte)) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	if gnu {
		copy(b[257:265], "ustar  \x00")
	} else {
		copy(b[257:265], "ustar\x0000")
	}
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

func pad(data []byte) []byte {
	if r := len(data) % 512; r != 0 {
		data = append(data, make([]byte, 512-r)...)
	}
	return data
}

// paxRecords encodes PAX extended header records.
func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		out = append(out, fmt.Sprintf("%d%s", n, rec)...)
	}
	return out
}

func archive(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, pad(p)...)
	}
	return append(b, make([]byte, 1024)...)
}

const huge = int64(1) << 40 // what the sparse entries claim: 1 TiB

// paxSparse is a GNU sparse 1.0 entry: 512 bytes of sparse map and 4 KiB
// of data (4.5 KiB stored) that archive/tar reads back as 1 TiB.
func paxSparse() []byte {
	pax := paxRecords("GNU.sparse.major", "1", "GNU.sparse.minor", "0",
		"GNU.sparse.name", "artifacts/"+strings.Repeat("a", 64), "GNU.sparse.realsize", fmt.Sprint(huge))
	data := append(pad([]byte("1\n0\n4096\n")), bytes.Repeat([]byte{'x'}, 4096)...)
	return archive(
		rawHeader("PaxHeaders/sparse", 'x', int64(len(pax)), false, nil), pax,
		rawHeader("GNUSparseFile.0/sparse", '0', int64(len(data)), false, nil), data,
	)
}

// paxSparse01 is a GNU sparse 0.1 entry: the map in PAX records, 4 KiB of
// data claiming 1 TiB.
func paxSparse01() []byte {
	pax := paxRecords("GNU.sparse.major", "0", "GNU.sparse.minor", "1", "GNU.sparse.numblocks", "1",
		"GNU.sparse.map", "0,4096", "GNU.sparse.name", "artifacts/b", "GNU.sparse.size", fmt.Sprint(huge))
	data := bytes.Repeat([]byte{'z'}, 4096)
	return archive(
		rawHeader("PaxHeaders/sparse", 'x', int64(len(pax)), false, nil), pax,
		rawHeader("GNUSparseFile.0/b", '0', int64(len(data)), false, nil), data,
	)
}

// gnuSparse is an old GNU sparse entry (type 'S') of 4 KiB stored data
// claiming 1 TiB.
func gnuSparse() []byte {
	data := bytes.Repeat([]byte{'y'}, 4096)
	return archive(rawHeader("artifacts/s", 'S', int64(len(data)), true, func(b []byte) {
		copy(b[386:398], fmt.Sprintf("%011o\x00", 0))
		copy(b[398:410], fmt.Sprintf("%011o\x00", 4096))
		b[483] = 0x80 // base-256: the size does not fit 11 octal digits
		binary.BigEndian.PutUint64(b[487:495], uint64(huge))
	}), data)
}

func TestCheck_CraftedArchives(t *testing.T) {
	cases := []struct {
		name    string
		archive []byte
		wantErr string // "" accepts
	}{
		{"plain file", archive(rawHeader("artifacts/ok", '0', 5, false, nil), []byte("hello")), ""},
		{"legacy NUL type", archive(rawHeader("artifacts/ok", 0, 5, false, nil), []byte("hello")), ""},
		{"pax sparse 1.0", paxSparse(), "sparse file (PAX record GNU.sparse."},
		{"gnu sparse S", gnuSparse(), "sparse file (type 'S')"},
		{"pax sparse 0.1", paxSparse01(), "sparse file (PAX record GNU.sparse."},
		{"symlink", archive(rawHeader("artifacts/l", '2', 0, false, func(b []byte) { copy(b[157:], "/etc/passwd") })), "symlink"},
		{"hard link", archive(rawHeader("artifacts/h", '1', 0, false, func(b []byte) { copy(b[157:], "artifacts/ok") })), "hard link"},
		{"char device", archive(rawHeader("artifacts/c", '3', 0, false, nil)), "character device"},
		{"block device", archive(rawHeader("artifacts/b", '4', 0, false, nil)), "block device"},
		{"fifo", archive(rawHeader("artifacts/f", '6', 0, false, nil)), "fifo"},
		{"directory", archive(rawHeader("artifacts/", '5', 0, false, nil)), "directory"},
		{"dot dot", archive(rawHeader("artifacts/../../etc/x", '0', 0, false, nil)), "'..'"},
		{"absolute", archive(rawHeader("/etc/x", '0', 0, false, nil)), "absolute"},
		{"over cap", archive(rawHeader("artifacts/big", '0', 2048, false, nil), make([]byte, 2048)), "over the 1024 byte cap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := tar.NewReader(bytes.NewReader(c.archive))
			hdr, err := tr.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			err = Check(hdr, 1024)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Check = %v, want ErrUnsafe containing %q", err, c.wantErr)
			}
		})
	}
}

// TestCheck_SparseClaimsHugeSize shows the attack the check stops: without
// it, a 4.5 KiB sparse entry reads as 1 TiB of zeros.
func TestCheck_SparseClaimsHugeSize(t *testing.T) {
	for name, a := range map[string][]byte{"pax 1.0": paxSparse(), "pax 0.1": paxSparse01(), "gnu S": gnuSparse()} {
		t.Run(name, func(t *testing.T) {
			tr := tar.NewReader(bytes.NewReader(a))
			hdr, err := tr.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if got := len(a); got > 8<<10 {
				t.Fatalf("archive is %d bytes, want a small one", got)
			}
			if hdr.Size != huge {
				t.Fatalf("archive/tar reports size %d, want the claimed %d (the attack)", hdr.Size, huge)
			}
			// Reading the first MiB already yields more than the archive holds.
			n, _ := io.Copy(io.Discard, io.LimitReader(tr, 1<<20))
			if n != 1<<20 {
				t.Fatalf("read %d bytes, want 1 MiB of expanded holes", n)
			}
			if err := Check(hdr, -1); !errors.Is(err, ErrUnsafe) {
				t.Fatalf("Check = %v, want ErrUnsafe even with no size cap", err)
			}
		})
	}
}

func TestCheck_WrittenByArchiveTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("artifact bytes")
	for _, f := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		hdr := &tar.Header{Name: "artifacts/x" + f.String(), Size: int64(len(body)), Mode: 0o644, Typeflag: tar.TypeReg, Format: f}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(hdr, 1<<20); err != nil {
			t.Errorf("Check(%s) = %v, want nil", hdr.Name, err)
		}
		got, err := io.ReadAll(Body(tr, hdr))
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("Body(%s) = %q, %v; want %q", hdr.Name, got, err, body)
		}
	}
}

func TestCheck_Header(t *testing.T) {
	ok := func() *tar.Header { return &tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Size: 10} }
	cases := []struct {
		name    string
		mod     func(h *tar.Header)
		wantErr string
	}{
		{"ok", func(h *tar.Header) {}, ""},
		{"zero size", func(h *tar.Header) { h.Size = 0 }, ""},
		{"exactly cap", func(h *tar.Header) { h.Size = 100 }, ""},
		{"negative size", func(h *tar.Header) { h.Size = -1 }, "negative size"},
		{"over cap", func(h *tar.Header) { h.Size = 101 }, "cap"},
		{"linkname on regular", func(h *tar.Header) { h.Linkname = "x" }, "link target"},
		{"pax sparse 0.1 keys", func(h *tar.Header) { h.PAXRecords = map[string]string{"GNU.sparse.map": "0,10"} }, "GNU.sparse.map"},
		{"harmless pax", func(h *tar.Header) { h.PAXRecords = map[string]string{"mtime": "1"} }, ""},
		{"unknown type", func(h *tar.Header) { h.Typeflag = 'Z' }, "type 'Z'"},
		{"contiguous", func(h *tar.Header) { h.Typeflag = tar.TypeCont }, "contiguous"},
		{"global pax", func(h *tar.Header) { h.Typeflag = tar.TypeXGlobalHeader }, "type 'g'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := ok()
			c.mod(h)
			err := Check(h, 100)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Check = %v, want ErrUnsafe containing %q", err, c.wantErr)
			}
		})
	}
	if err := Check(nil, 1); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Check(nil) = %v, want ErrUnsafe", err)
	}
}

func TestCheckName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"envelope.json", true},
		{"artifacts/" + fmt.Sprintf("%x", sha256.Sum256(nil)), true},
		{"a/b/c", true},
		{"", false},
		{"/abs", false},
		{"../up", false},
		{"a/../../b", false},
		{"a/..", false},
		{"..", false},
		{".", false},
		{"./a", false},
		{"a//b", false},
		{"a/", false},
		{"a/./b", false},
		{"a\x00b", false},
		{`a\..\b`, false},
		{"C:/windows", false},
		{"bad\xffutf8", false},
		{strings.Repeat("a", MaxNameLen+1), false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%.40q", c.name), func(t *testing.T) {
			err := CheckName(c.name)
			if got := err == nil; got != c.ok {
				t.Fatalf("CheckName(%q) = %v, want ok=%v", c.name, err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrUnsafe) {
				t.Fatalf("error %v does not wrap ErrUnsafe", err)
			}
		})
	}
}

func TestBody_ExactSize(t *testing.T) {
	hdr := &tar.Header{Name: "a", Size: 10}
	cases := []struct {
		name    string
		src     io.Reader
		want    string
		wantErr error
	}{
		{"exact", strings.NewReader("0123456789"), "0123456789", nil},
		{"longer source is cut", strings.NewReader("0123456789abc"), "0123456789", nil},
		{"short source", strings.NewReader("01234"), "01234", io.ErrUnexpectedEOF},
		{"short one byte at a time", iotest.OneByteReader(strings.NewReader("012")), "012", io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := io.ReadAll(Body(c.src, hdr))
			if string(got) != c.want {
				t.Errorf("read %q, want %q", got, c.want)
			}
			if c.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if c.wantErr != nil && (!errors.Is(err, c.wantErr) || !errors.Is(err, ErrUnsafe)) {
				t.Fatalf("err = %v, want ErrUnsafe and %v", err, c.wantErr)
			}
		})
	}
	t.Run("truncated archive", func(t *testing.T) {
		a := archive(rawHeader("a", '0', 2048, false, nil), make([]byte, 2048))
		tr := tar.NewReader(bytes.NewReader(a[:512+1000]))
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, Body(tr, hdr))
		if n != 1000 || !errors.Is(err, ErrUnsafe) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("copied %d, %v; want 1000 and a truncation error", n, err)
		}
	})
}

func FuzzCheck(f *testing.F) {
	f.Add(paxSparse())
	f.Add(gnuSparse())
	f.Add(archive(rawHeader("artifacts/ok", '0', 5, false, nil), []byte("hello")))
	f.Fuzz(func(t *testing.T, a []byte) {
		tr := tar.NewReader(bytes.NewReader(a))
		for range 8 {
			hdr, err := tr.Next()
			if err != nil {
				return
			}
			if Check(hdr, 1<<20) != nil {
				continue
			}
			// An accepted entry yields at most its size, which is capped.
			n, _ := io.Copy(io.Discard, Body(tr, hdr))
			if n > 1<<20 || n > int64(len(a)) {
				t.Fatalf("accepted entry %q yielded %d bytes from a %d byte archive", hdr.Name, n, len(a))
			}
		}
	})
}
