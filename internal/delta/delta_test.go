package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// structured returns n bytes that compress like a program or a document:
// repeated records with varying numbers and some noise.
func structured(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	for b.Len() < n {
		switch r.IntN(4) {
		case 0:
			b.WriteString(words[r.IntN(len(words))])
		case 1:
			b.Write([]byte{0x48, 0x8b, 0x44, 0x24, byte(r.IntN(256)), 0xe8, byte(r.IntN(256)), byte(r.IntN(256)), 0, 0})
		case 2:
			b.Write(make([]byte, r.IntN(64)))
		default:
			b.WriteString("record ")
			b.WriteByte(byte('0' + r.IntN(10)))
			b.WriteByte('\n')
		}
	}
	return b.Bytes()[:n]
}

// edit returns a copy of b with a few in-place changes, an insertion and
// a deletion, like a new version.
func edit(seed uint64, b []byte) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	out := bytes.Clone(b)
	for i := 0; i < 8 && len(out) > 0; i++ {
		p := r.IntN(len(out))
		copy(out[p:], randBytes(seed+uint64(i), min(100, len(out)-p)))
	}
	if len(out) > 2 {
		p := r.IntN(len(out))
		out = append(out[:p:p], append(randBytes(seed+99, 1000), out[p:]...)...)
		q := r.IntN(len(out) / 2)
		out = append(out[:q:q], out[q+min(500, len(out)/4):]...)
	}
	return out
}

func wantFor(base, target []byte) Want {
	return Want{BaseSize: int64(len(base)), BaseSHA256: sha256.Sum256(base), Size: int64(len(target)), SHA256: sha256.Sum256(target)}
}

func build(t testing.TB, base, target []byte, o Options) []byte {
	t.Helper()
	var d bytes.Buffer
	st, err := Build(context.Background(), &d, Source{R: bytes.NewReader(base), Size: int64(len(base))},
		Source{R: bytes.NewReader(target), Size: int64(len(target))}, o)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if st.Size != int64(d.Len()) {
		t.Fatalf("Stats.Size = %d, wrote %d", st.Size, d.Len())
	}
	return d.Bytes()
}

func apply(base, delta []byte, want Want) ([]byte, error) {
	var out bytes.Buffer
	err := Apply(context.Background(), &out, bytes.NewReader(delta), bytes.NewReader(base), want, ApplyOptions{})
	return out.Bytes(), err
}

// small options exercise the indexed mode (base larger than DictMax) and
// several segments on inputs of a few MiB.
var small = Options{SegmentSize: 64 << 10, DictMax: 128 << 10, Level: zstd.SpeedBetterCompression}

// whole leaves the base whole as the dictionary; the tests use a faster
// level than the default (one case keeps the default).
var whole = Options{Level: zstd.SpeedBetterCompression}

func TestBuildApply_RoundTrip(t *testing.T) {
	rnd := randBytes(1, 3<<17)
	str := structured(2, 3<<17)
	cases := []struct {
		name         string
		base, target []byte
		o            Options
		maxShare     float64 // delta size ÷ target size must stay below
	}{
		{"empty both", nil, nil, whole, 1},
		{"empty base", nil, str[:100000], whole, 1},
		{"empty target", str[:1000], nil, whole, 1},
		{"identical whole-base", str, str, whole, 0.01},
		{"default level", str, edit(4, str), Options{}, 0.02},
		{"identical indexed", str, str, small, 0.01},
		{"random edited whole-base", rnd, edit(3, rnd), whole, 0.02},
		{"random edited indexed", rnd, edit(3, rnd), small, 0.03},
		{"structured edited whole-base", str, edit(4, str), whole, 0.02},
		{"structured edited indexed", str, edit(4, str), small, 0.03},
		{"unrelated", rnd, str, small, 1.01},
		{"tiny", []byte("hello"), []byte("hello, world"), whole, 20},
	}
	codings := []struct {
		name string
		c    Coding
	}{{"auto", CodingAuto}, {"zstd", CodingZstd}, {"diff", CodingDiff}}
	for _, c := range cases {
		for _, cd := range codings {
			t.Run(c.name+"/"+cd.name, func(t *testing.T) {
				o := c.o
				o.Coding = cd.c
				roundTrip(t, c.base, c.target, o, c.maxShare)
			})
		}
	}
}

func roundTrip(t *testing.T, base, target []byte, o Options, maxShare float64) {
	t.Helper()
	d := build(t, base, target, o)
	got, err := apply(base, d, wantFor(base, target))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !bytes.Equal(got, target) {
		t.Fatalf("rebuilt %d bytes, not the target's %d", len(got), len(target))
	}
	if len(target) > 0 {
		if share := float64(len(d)) / float64(len(target)); share > maxShare {
			t.Errorf("delta is %.4f of the target, want at most %.4f", share, maxShare)
		}
	}
}

func TestApply_RefusesMismatch(t *testing.T) {
	base := structured(5, 256<<10)
	target := edit(6, base)
	other := edit(7, base)
	d := build(t, base, target, whole)
	cases := []struct {
		name string
		base []byte
		want Want
		err  error
	}{
		{"other target", base, wantFor(base, other), ErrMismatch},
		{"other base in metadata", base, wantFor(other, target), ErrMismatch},
		{"base file differs", other[:len(base)], wantFor(base, target), ErrMismatch},
		{"base file short", base[:len(base)-1], wantFor(base, target), ErrMismatch},
		{"base file long", append(bytes.Clone(base), 0), wantFor(base, target), ErrMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := apply(c.base, d, c.want)
			if !errors.Is(err, c.err) {
				t.Fatalf("Apply error = %v, want %v", err, c.err)
			}
			if len(got) != 0 {
				t.Errorf("wrote %d bytes before refusing, want none", len(got))
			}
		})
	}
}

func TestApply_RefusesCorruptAndTruncated(t *testing.T) {
	base := structured(8, 384<<10)
	target := edit(9, base)
	d := build(t, base, target, small)
	want := wantFor(base, target)
	flip := func(i int) []byte {
		c := bytes.Clone(d)
		c[i] ^= 0x40
		return c
	}
	cases := []struct {
		name  string
		delta []byte
	}{
		{"empty", nil},
		{"header only", d[:HeaderSize]},
		{"truncated in header", d[:HeaderSize/2]},
		{"truncated mid-frame", d[:len(d)/2]},
		{"truncated before end record", d[:len(d)-2]},
		{"trailing data", append(bytes.Clone(d), 0)},
		{"flipped magic", flip(0)},
		{"flipped header field", flip(20)},
		{"flipped first record", flip(HeaderSize + 1)},
		{"flipped frame middle", flip(HeaderSize + (len(d)-HeaderSize)/2)},
		{"flipped last byte", flip(len(d) - 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := apply(base, c.delta, want)
			if err == nil {
				t.Fatal("Apply accepted a damaged delta")
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrVerify) && !errors.Is(err, ErrMismatch) {
				t.Errorf("Apply error = %v, want ErrFormat, ErrVerify or ErrMismatch", err)
			}
		})
	}
}

func TestApplyFile_AtomicOnFailure(t *testing.T) {
	dir := t.TempDir()
	base := structured(10, 256<<10)
	target := edit(11, base)
	d := build(t, base, target, whole)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bp, dp := write("base", base), write("good.delta", d)
	bad := bytes.Clone(d)
	bad[len(bad)/2] ^= 1
	badp := write("bad.delta", bad)
	out := write("out", []byte("previous"))

	t.Run("bad delta leaves the file", func(t *testing.T) {
		if err := ApplyFile(context.Background(), out, badp, bp, wantFor(base, target), ApplyOptions{}); err == nil {
			t.Fatal("ApplyFile accepted a corrupt delta")
		}
		if got, _ := os.ReadFile(out); string(got) != "previous" {
			t.Errorf("out = %q, want it untouched", got)
		}
	})
	t.Run("good delta replaces it", func(t *testing.T) {
		if err := ApplyFile(context.Background(), out, dp, bp, wantFor(base, target), ApplyOptions{}); err != nil {
			t.Fatalf("ApplyFile: %v", err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, target) {
			t.Error("out is not the target")
		}
	})
}

func TestApply_Limits(t *testing.T) {
	base := structured(12, 256<<10)
	target := edit(13, base)
	d := build(t, base, target, Options{DictMax: 32 << 20, SegmentSize: 8 << 20, Level: zstd.SpeedBetterCompression})
	var out bytes.Buffer
	err := Apply(context.Background(), &out, bytes.NewReader(d), bytes.NewReader(base), wantFor(base, target),
		ApplyOptions{MaxDict: 16 << 20})
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("Apply over MaxDict: error = %v, want ErrFormat", err)
	}
}

func TestOffer_Share(t *testing.T) {
	cases := []struct {
		delta, full int64
		share       float64
		want        bool
	}{
		{60, 100, 0, true},
		{61, 100, 0, false},
		{0, 100, 0, true},
		{30, 100, 0.25, false},
		{25, 100, 0.25, true},
		{1, 0, 0, false},
		{-1, 100, 0, false},
	}
	for _, c := range cases {
		if got := Offer(c.delta, c.full, c.share); got != c.want {
			t.Errorf("Offer(%d, %d, %v) = %v, want %v", c.delta, c.full, c.share, got, c.want)
		}
	}
}

func TestInspect_Layout(t *testing.T) {
	base := structured(14, 384<<10)
	target := edit(15, base)
	d := build(t, base, target, small)
	h, segs, err := Inspect(bytes.NewReader(d))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if h.Size != int64(len(target)) || h.BaseSize != int64(len(base)) {
		t.Errorf("header sizes %d/%d, want %d/%d", h.BaseSize, h.Size, len(base), len(target))
	}
	var sum int
	for _, s := range segs {
		sum += s.Size
		if s.DictBytes > int64(small.DictMax) {
			t.Errorf("segment dictionary %d bytes over DictMax %d", s.DictBytes, small.DictMax)
		}
	}
	if sum != len(target) {
		t.Errorf("segments cover %d bytes, want %d", sum, len(target))
	}
}
