package delta

import (
	"bytes"
	"context"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzApply feeds arbitrary deltas to Apply for a fixed base and target:
// it must never panic, and whatever it accepts must be the target.
func FuzzApply(f *testing.F) {
	base := structured(20, 96<<10)
	target := edit(21, base)
	want := wantFor(base, target)
	small := Options{SegmentSize: 64 << 10, DictMax: 64 << 10, Level: zstd.SpeedBetterCompression}
	for _, c := range []Coding{CodingZstd, CodingDiff} {
		o := small
		o.Coding = c
		f.Add(build(f, base, target, o))
	}
	f.Add(build(f, nil, target, small))
	f.Add([]byte("OPDELTA\x00"))
	f.Fuzz(func(t *testing.T, d []byte) {
		var out bytes.Buffer
		err := Apply(context.Background(), &out, bytes.NewReader(d), bytes.NewReader(base), want, ApplyOptions{BaseVerified: true})
		if err == nil && !bytes.Equal(out.Bytes(), target) {
			t.Fatal("Apply accepted a delta that does not rebuild the target")
		}
		_, _, _ = Inspect(bytes.NewReader(d))
	})
}

// FuzzDiffDecode runs the bsdiff-class decoder on arbitrary streams: it
// must never panic nor write past the segment size.
func FuzzDiffDecode(f *testing.F) {
	d := structured(22, 8<<10)
	t0 := edit(23, d)
	ix := newDiffIndex()
	ix.reset(d)
	streams, cl, dl, _ := diffEncode(ix, t0, nil)
	f.Add(bytes.Clone(streams), cl, dl, len(t0))
	f.Add([]byte{0, 0, 0}, 3, 0, 1)
	f.Fuzz(func(t *testing.T, streams []byte, cl, dl, size int) {
		if cl < 0 || dl < 0 || cl+dl > len(streams) || size < 0 || size > 1<<20 {
			return
		}
		out, _, err := diffDecode(nil, nil, d, streams, cl, dl, size)
		if err == nil && len(out) != size {
			t.Fatalf("decoded %d bytes, want %d", len(out), size)
		}
	})
}
