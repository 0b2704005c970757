package delta

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// Defaults of Options.
const (
	DefaultSegmentSize = 8 << 20
	DefaultDictMax     = 24 << 20
	// DefaultMaxShare: a delta over 60% of the full artifact is not offered.
	DefaultMaxShare = 0.60
)

// dictID is the raw dictionary id frames carry (any non-zero value: the
// dictionary is the segment's, not a trained one).
const dictID = 1

// Options tune Build. The zero value means the defaults.
type Options struct {
	// SegmentSize is how many target bytes one zstd frame rebuilds
	// (DefaultSegmentSize).
	SegmentSize int
	// DictMax is the most base bytes a segment's dictionary holds
	// (DefaultDictMax). A base up to DictMax is every segment's whole
	// dictionary; a larger one is indexed and each segment gets the
	// regions of the base its content was found in.
	DictMax int
	// Level is the zstd encoder level (zstd.SpeedBestCompression).
	Level zstd.EncoderLevel
	// Coding chooses how segments are coded (CodingAuto).
	Coding Coding
}

// Coding is how a segment is coded against its dictionary.
type Coding int

const (
	// CodingAuto codes each segment both ways and keeps the smaller.
	CodingAuto Coding = iota
	// CodingZstd: a zstd frame of the segment with the dictionary.
	CodingZstd
	// CodingDiff: bsdiff-class streams (diff.go) in a zstd frame with the
	// dictionary, unless the segment has no dictionary.
	CodingDiff
)

func (o Options) withDefaults() (Options, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.DictMax == 0 {
		o.DictMax = DefaultDictMax
	}
	if o.Level == 0 {
		o.Level = zstd.SpeedBestCompression
	}
	if o.SegmentSize < 64<<10 || o.SegmentSize > ceilSegment {
		return o, fmt.Errorf("delta: segment size %d outside [64 KiB, %d MiB]", o.SegmentSize, ceilSegment>>20)
	}
	if o.DictMax < 64<<10 || o.DictMax > ceilDict {
		return o, fmt.Errorf("delta: dictionary size %d outside [64 KiB, %d MiB]", o.DictMax, ceilDict>>20)
	}
	return o, nil
}

// Source is a file Build reads: random access, its size, and its sha256
// when the caller knows it already (nil: Build hashes it).
type Source struct {
	R      io.ReaderAt
	Size   int64
	SHA256 *Digest
}

// Stats describe a built delta.
type Stats struct {
	Size         int64 // of the delta
	Segments     int
	DictBytes    int64 // base bytes read into dictionaries, summed over segments
	MatchedBytes int64 // target bytes whose chunk was found in the base index (indexed mode)
	Indexed      bool  // the base was larger than DictMax
	DiffSegments int   // segments stored with the bsdiff-class coding
}

// Build writes to w a delta that rebuilds target from base. It reads
// base and target through ReaderAt, streaming: memory stays within the
// bound in the package documentation whatever the sizes.
func Build(ctx context.Context, w io.Writer, base, target Source, opts Options) (Stats, error) {
	var st Stats
	o, err := opts.withDefaults()
	if err != nil {
		return st, err
	}
	if base.Size < 0 || target.Size < 0 {
		return st, fmt.Errorf("delta: negative size")
	}
	h := Header{Version: formatVersion, Algorithm: AlgZstdSegments, BaseSize: base.Size, Size: target.Size,
		SegmentMax: o.SegmentSize, DictMax: o.DictMax}
	if h.BaseSHA256, err = digestOf(ctx, base); err != nil {
		return st, fmt.Errorf("hash base: %w", err)
	}
	if h.SHA256, err = digestOf(ctx, target); err != nil {
		return st, fmt.Errorf("hash target: %w", err)
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if _, err := bw.Write(h.marshal()); err != nil {
		return st, fmt.Errorf("write header: %w", err)
	}

	sel, err := newSelector(ctx, base, target.Size, o)
	if err != nil {
		return st, err
	}
	st.Indexed = sel.idx != nil
	var enc *zstd.Encoder
	defer func() {
		if enc != nil {
			enc.Close()
		}
	}()
	var (
		seg      = make([]byte, o.SegmentSize)
		frame    []byte
		frameD   []byte
		streams  []byte
		dix      *diffIndex
		head     []byte
		dict     []byte
		lastDict []extent
	)
	for off := int64(0); off < target.Size; off += int64(len(seg)) {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		seg = seg[:min(int64(o.SegmentSize), target.Size-off)]
		if _, err := target.R.ReadAt(seg, off); err != nil {
			return st, fmt.Errorf("read target at %d: %w", off, noEOF(err))
		}
		ranges, matched := sel.ranges(off, seg)
		st.MatchedBytes += matched
		if enc == nil || !slices.Equal(ranges, lastDict) {
			if dict, err = readRanges(base.R, ranges, dict); err != nil {
				return st, err
			}
			st.DictBytes += int64(len(dict))
			dopt := zstd.WithEncoderDictDelete()
			if len(dict) > 0 {
				dopt = zstd.WithEncoderDictRaw(dictID, dict)
			}
			// The window must reach from the segment's end back to the
			// dictionary's start; the encoder keeps about one window of
			// history, so it is sized once, to the largest dictionary
			// this base can give plus a segment.
			if enc == nil {
				window := windowFor(int(min(int64(o.DictMax), base.Size)) + o.SegmentSize)
				enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(o.Level), zstd.WithEncoderConcurrency(1),
					zstd.WithWindowSize(window), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(true), dopt)
			} else {
				err = enc.ResetWithOptions(nil, dopt)
			}
			if err != nil {
				return st, fmt.Errorf("zstd encoder: %w", err)
			}
			lastDict = slices.Clone(ranges)
			if o.Coding != CodingZstd && len(dict) > 0 {
				if dix == nil {
					dix = newDiffIndex()
				}
				dix.reset(dict)
			}
		}
		rec := segment{kind: tagSegment, size: len(seg), ranges: ranges}
		out := frame[:0]
		if o.Coding != CodingZstd && len(dict) > 0 {
			var cl, dl int
			streams, cl, dl, _ = diffEncode(dix, seg, streams)
			if cl <= maxCtrl(len(seg)) && dl <= len(seg) {
				frameD = enc.EncodeAll(streams, frameD[:0])
				if len(frameD) <= maxFrame(len(seg)) {
					rec.kind, rec.ctrlLen, rec.diffLen = tagDiff, cl, dl
					out = frameD
				}
			}
		}
		if rec.kind == tagSegment || o.Coding == CodingAuto {
			frame = enc.EncodeAll(seg, frame[:0])
			if rec.kind == tagSegment || len(frame) < len(out) {
				rec.kind, out = tagSegment, frame
			}
		}
		if rec.kind == tagDiff {
			st.DiffSegments++
		}
		rec.frame = len(out)
		head = appendSegmentHead(head[:0], rec)
		if _, err := bw.Write(head); err != nil {
			return st, fmt.Errorf("write segment: %w", err)
		}
		if _, err := bw.Write(out); err != nil {
			return st, fmt.Errorf("write segment: %w", err)
		}
		st.Segments++
	}
	head = append(head[:0], tagEnd)
	if _, err := bw.Write(binary.AppendUvarint(head, uint64(st.Segments))); err != nil {
		return st, fmt.Errorf("write end: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write delta: %w", err)
	}
	st.Size = cw.n
	return st, nil
}

// windowFor returns the smallest zstd window (a power of two, at least
// 1 MiB) covering n bytes.
func windowFor(n int) int {
	w := 1 << 20
	for w < n && w < zstd.MaxWindowSize {
		w <<= 1
	}
	return w
}

// Offer reports whether a delta of deltaSize bytes is worth offering for
// an artifact of fullSize bytes: only when it is at most maxShare of it
// (DefaultMaxShare when maxShare <= 0).
func Offer(deltaSize, fullSize int64, maxShare float64) bool {
	if maxShare <= 0 {
		maxShare = DefaultMaxShare
	}
	if deltaSize < 0 || fullSize <= 0 {
		return false
	}
	return float64(deltaSize) <= maxShare*float64(fullSize)
}

// selector picks each target segment's dictionary: the whole base when it
// fits, else the base regions where the segment's chunks were found.
type selector struct {
	o        Options
	baseSize int64
	idx      *index
	chunk    chunker
	diag     int64 // last segment's dominant diagonal (base offset - target offset)
	scratch  []extent
	weights  map[int64]int64
}

// slack widens every matched region (content around an exact chunk match
// is often similar), and the dominant diagonal's region more.
const (
	matchSlack = 64 << 10
	diagSlack  = 512 << 10
)

func newSelector(ctx context.Context, base Source, targetSize int64, o Options) (*selector, error) {
	s := &selector{o: o, baseSize: base.Size, weights: map[int64]int64{}}
	if base.Size <= int64(o.DictMax) {
		return s, nil
	}
	avg := minAvgChunk
	for base.Size/int64(avg) > maxIndexEntries {
		avg <<= 1
	}
	s.chunk = newChunker(avg)
	idx, err := buildIndex(ctx, base, s.chunk)
	if err != nil {
		return nil, err
	}
	s.idx = idx
	return s, nil
}

// ranges returns the dictionary of the segment at target offset off and
// how many of its bytes were found in the base index.
func (s *selector) ranges(off int64, seg []byte) ([]extent, int64) {
	if s.baseSize == 0 {
		return nil, 0
	}
	if s.idx == nil {
		return []extent{{0, s.baseSize}}, 0
	}
	clear(s.weights)
	type cand struct {
		e extent
		w int64
	}
	var cands []cand
	var matched int64
	for p := 0; p < len(seg); {
		n := s.chunk.next(seg[p:])
		if b, ok := s.idx.lookup(seg[p : p+n]); ok {
			matched += int64(n)
			s.weights[b-(off+int64(p))] += int64(n)
			cands = append(cands, cand{extent{b - matchSlack, int64(n) + 2*matchSlack}, int64(n)})
		}
		p += n
	}
	var best int64
	for d, w := range s.weights {
		if w > best || (w == best && d < s.diag) {
			best, s.diag = w, d
		}
	}
	budget := int64(s.o.DictMax)
	out := s.scratch[:0]
	// The dominant diagonal first, then the matched regions by weight.
	d := extent{off + s.diag - diagSlack, int64(len(seg)) + 2*diagSlack}
	out = appendClipped(out, d, s.baseSize, &budget)
	slices.SortFunc(cands, func(a, b cand) int { return int(b.w - a.w) })
	for _, c := range cands {
		if budget <= 0 {
			break
		}
		out = appendClipped(out, c.e, s.baseSize, &budget)
	}
	out = mergeExtents(out)
	s.scratch = out
	return out, matched
}

// appendClipped appends e clipped to the budget left (around its middle)
// and to [0, size), unless an extent of out already holds it. Overlaps
// between extents are charged twice (mergeExtents removes them): the
// budget may under-fill, never overflow.
func appendClipped(out []extent, e extent, size int64, budget *int64) []extent {
	if e.n > *budget { // keep the middle: the slack is on both sides
		e.off += (e.n - *budget) / 2
		e.n = *budget
	}
	lo, hi := max(e.off, 0), min(e.off+e.n, size)
	if hi <= lo {
		return out
	}
	for _, o := range out {
		if lo >= o.off && hi <= o.off+o.n {
			return out // already inside
		}
	}
	*budget -= hi - lo
	return append(out, extent{lo, hi - lo})
}

// mergeExtents sorts by offset and merges overlapping or touching ranges.
func mergeExtents(es []extent) []extent {
	slices.SortFunc(es, func(a, b extent) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	out := es[:0]
	for _, e := range es {
		if k := len(out) - 1; k >= 0 && e.off <= out[k].off+out[k].n {
			if end := e.off + e.n; end > out[k].off+out[k].n {
				out[k].n = end - out[k].off
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// Index sizing: chunks average at least minAvgChunk bytes, more for a
// base so large that it would exceed maxIndexEntries (16 bytes each).
const (
	minAvgChunk     = 1 << 10
	maxIndexEntries = 1 << 20
)

// index maps the hash of each chunk of the base to its first offset.
type index struct {
	seed    maphash.Seed
	entries []indexEntry // sorted by hash
}

type indexEntry struct{ h, off uint64 }

func buildIndex(ctx context.Context, base Source, c chunker) (*index, error) {
	ix := &index{seed: maphash.MakeSeed()}
	buf := make([]byte, max(4<<20, 2*c.max))
	var have int // bytes of buf holding unchunked data
	for off := int64(0); ; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := base.R.ReadAt(buf[have:min(int64(len(buf)), int64(have)+base.Size-off)], off)
		off += int64(n)
		have += n
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read base: %w", err)
		}
		eof := off >= base.Size
		if !eof && n == 0 {
			return nil, fmt.Errorf("read base: %w", io.ErrUnexpectedEOF)
		}
		p := 0
		for p < have {
			if !eof && have-p < c.max {
				break // the chunk may continue in the next read
			}
			k := c.next(buf[p:have])
			start := off - int64(have) + int64(p)
			ix.entries = append(ix.entries, indexEntry{maphash.Bytes(ix.seed, buf[p:p+k]), uint64(start)})
			p += k
		}
		have = copy(buf, buf[p:have])
		if eof {
			break
		}
	}
	slices.SortStableFunc(ix.entries, func(a, b indexEntry) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	// Keep the first occurrence of each hash.
	out := ix.entries[:0]
	for i, e := range ix.entries {
		if i > 0 && e.h == ix.entries[i-1].h {
			continue
		}
		out = append(out, e)
	}
	ix.entries = slices.Clip(out)
	return ix, nil
}

func (ix *index) lookup(chunk []byte) (int64, bool) {
	h := maphash.Bytes(ix.seed, chunk)
	i, ok := slices.BinarySearchFunc(ix.entries, h, func(e indexEntry, h uint64) int {
		switch {
		case e.h < h:
			return -1
		case e.h > h:
			return 1
		}
		return 0
	})
	if !ok {
		return 0, false
	}
	return int64(ix.entries[i].off), true
}

// readRanges reads the ranges of base, concatenated, into buf.
func readRanges(base io.ReaderAt, ranges []extent, buf []byte) ([]byte, error) {
	var total int64
	for _, r := range ranges {
		total += r.n
	}
	if int64(cap(buf)) < total {
		buf = make([]byte, total)
	}
	buf = buf[:total]
	p := int64(0)
	for _, r := range ranges {
		if _, err := base.ReadAt(buf[p:p+r.n], r.off); err != nil {
			return nil, fmt.Errorf("read base at %d: %w", r.off, noEOF(err))
		}
		p += r.n
	}
	return buf, nil
}

// digestOf returns src's sha256, hashing it unless it is given.
func digestOf(ctx context.Context, src Source) (Digest, error) {
	if src.SHA256 != nil {
		return *src.SHA256, nil
	}
	return hashReaderAt(ctx, src.R, src.Size)
}

func hashReaderAt(ctx context.Context, r io.ReaderAt, size int64) (Digest, error) {
	var d Digest
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return d, err
		}
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if off < size && err != nil {
			return d, noEOF(err)
		}
	}
	copy(d[:], h.Sum(nil))
	return d, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
