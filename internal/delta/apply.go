package delta

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/outpost/outpost/internal/fsutil"
)

// Want is what the caller expects a delta to do, from signed metadata:
// the base it holds and the target it wants.
type Want struct {
	BaseSize   int64
	BaseSHA256 Digest
	Size       int64
	SHA256     Digest
}

// ApplyOptions bound what Apply accepts. The zero value means the defaults.
type ApplyOptions struct {
	// MaxSegment and MaxDict refuse deltas whose header declares larger
	// segments or dictionaries (defaults 16 MiB and 64 MiB): they bound
	// Apply's memory.
	MaxSegment int
	MaxDict    int
	// BaseVerified skips hashing the base before applying, for a caller
	// that has just verified it (e.g. content-addressed storage). The
	// rebuilt file is verified either way.
	BaseVerified bool
}

// Apply defaults.
const (
	DefaultApplyMaxSegment = 16 << 20
	DefaultApplyMaxDict    = 64 << 20
)

// Check reads a delta's header from r and refuses it unless it turns
// want's base into want's target; it consumes HeaderSize bytes.
func Check(r io.Reader, want Want) (Header, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return h, err
	}
	switch {
	case h.BaseSize != want.BaseSize || h.BaseSHA256 != want.BaseSHA256:
		return h, fmt.Errorf("%w: delta is for base %s (%d bytes), not %s (%d bytes)",
			ErrMismatch, h.BaseSHA256, h.BaseSize, want.BaseSHA256, want.BaseSize)
	case h.Size != want.Size || h.SHA256 != want.SHA256:
		return h, fmt.Errorf("%w: delta rebuilds %s (%d bytes), not %s (%d bytes)",
			ErrMismatch, h.SHA256, h.Size, want.SHA256, want.Size)
	}
	return h, nil
}

// Apply rebuilds the target from base and the delta read from r and
// writes it to w, streaming. Before writing anything it refuses a delta
// for another base or target than want's, and (unless BaseVerified) a
// base whose size or sha256 is not want's. Bytes reach w as segments are
// rebuilt and the whole is verified at the end: on any error the caller
// must discard what was written (ApplyFile does).
func Apply(ctx context.Context, w io.Writer, r io.Reader, base io.ReaderAt, want Want, opts ApplyOptions) error {
	if opts.MaxSegment <= 0 {
		opts.MaxSegment = DefaultApplyMaxSegment
	}
	if opts.MaxDict <= 0 {
		opts.MaxDict = DefaultApplyMaxDict
	}
	h, err := Check(r, want)
	if err != nil {
		return err
	}
	if h.SegmentMax > opts.MaxSegment || h.DictMax > opts.MaxDict {
		return fmt.Errorf("%w: segments of %d bytes with %d-byte dictionaries exceed the limits (%d, %d)",
			ErrFormat, h.SegmentMax, h.DictMax, opts.MaxSegment, opts.MaxDict)
	}
	if !opts.BaseVerified {
		if err := verifyBase(ctx, base, want); err != nil {
			return err
		}
	}
	br := bufio.NewReaderSize(r, 256<<10)
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(maxStreams(h.SegmentMax))),
		zstd.WithDecoderMaxWindow(uint64(windowFor(h.DictMax+h.SegmentMax))))
	if err != nil {
		return fmt.Errorf("zstd decoder: %w", err)
	}
	defer dec.Close()
	sum := sha256.New()
	pipe := newWritePipe(w, sum)
	defer pipe.close()
	var (
		done     int64
		segments int
		frame    []byte
		streams  []byte
		scratch  []byte
		dict     []byte
		lastDict []extent
		haveDict bool
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, end, err := readSegmentHead(br, h)
		if err != nil {
			return fmt.Errorf("segment %d: %w", segments, err)
		}
		if end {
			if s.size != segments {
				return fmt.Errorf("%w: end record counts %d segments, read %d", ErrFormat, s.size, segments)
			}
			break
		}
		if int64(s.size) > h.Size-done {
			return fmt.Errorf("%w: segments exceed the target size %d", ErrFormat, h.Size)
		}
		if !haveDict || !slices.Equal(s.ranges, lastDict) {
			if dict, err = readRanges(base, s.ranges, dict); err != nil {
				return err
			}
			if err := dec.ResetWithOptions(nil, zstd.WithDecoderDictRaw(dictID, dict)); err != nil {
				return fmt.Errorf("zstd decoder: %w", err)
			}
			lastDict, haveDict = slices.Clone(s.ranges), true
		}
		if cap(frame) < s.frame {
			frame = make([]byte, s.frame)
		}
		frame = frame[:s.frame]
		if _, err := io.ReadFull(br, frame); err != nil {
			return fmt.Errorf("%w: segment %d: read frame: %v", ErrFormat, segments, noEOF(err))
		}
		out := pipe.get()
		if cap(out) < s.size {
			out = make([]byte, 0, s.size)
		}
		if s.kind == tagDiff {
			streams, err = dec.DecodeAll(frame, streams[:0])
			if err == nil && (len(streams) < s.ctrlLen+s.diffLen || len(streams) > maxStreams(s.size)) {
				err = fmt.Errorf("streams of %d bytes do not fit the record", len(streams))
			}
			if err == nil {
				out, scratch, err = diffDecode(out[:0], scratch, dict, streams, s.ctrlLen, s.diffLen, s.size)
			}
		} else {
			out, err = dec.DecodeAll(frame, out[:0])
		}
		if err != nil {
			return fmt.Errorf("%w: segment %d: %v", ErrFormat, segments, err)
		}
		if len(out) != s.size {
			return fmt.Errorf("%w: segment %d rebuilt %d bytes, want %d", ErrFormat, segments, len(out), s.size)
		}
		pipe.put(out)
		done += int64(s.size)
		segments++
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: data after the end record", ErrFormat)
	}
	if done != h.Size {
		return fmt.Errorf("%w: rebuilt %d bytes, want %d", ErrVerify, done, h.Size)
	}
	if err := pipe.close(); err != nil {
		return err
	}
	if got := Digest(sum.Sum(nil)); got != h.SHA256 {
		return fmt.Errorf("%w: rebuilt sha256 %s, want %s", ErrVerify, got, h.SHA256)
	}
	return nil
}

// writePipe hashes and writes rebuilt segments on its own goroutine while
// the next one is decoded: two buffers circulate between them.
type writePipe struct {
	full, free chan []byte
	done       chan struct{}
	closed     bool
	err        error // set by the goroutine, read after done
}

func newWritePipe(w io.Writer, h hash.Hash) *writePipe {
	p := &writePipe{full: make(chan []byte, 1), free: make(chan []byte, 2), done: make(chan struct{})}
	p.free <- nil
	p.free <- nil
	go func() {
		defer close(p.done)
		for b := range p.full {
			if p.err == nil {
				h.Write(b)
				if _, err := w.Write(b); err != nil {
					p.err = fmt.Errorf("write target: %w", err)
				}
			}
			p.free <- b[:0]
		}
	}()
	return p
}

// get returns an empty buffer (nil until both have been allocated).
func (p *writePipe) get() []byte { return <-p.free }

// put queues b to be hashed and written.
func (p *writePipe) put(b []byte) { p.full <- b }

// close waits for every queued buffer and returns the first write error.
func (p *writePipe) close() error {
	if !p.closed {
		p.closed = true
		close(p.full)
		<-p.done
	}
	return p.err
}

// verifyBase checks that base holds exactly want.BaseSize bytes with
// sha256 want.BaseSHA256.
func verifyBase(ctx context.Context, base io.ReaderAt, want Want) error {
	got, err := hashReaderAt(ctx, base, want.BaseSize)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: base shorter than %d bytes", ErrMismatch, want.BaseSize)
		}
		return fmt.Errorf("hash base: %w", err)
	}
	var one [1]byte
	if n, _ := base.ReadAt(one[:], want.BaseSize); n > 0 {
		return fmt.Errorf("%w: base longer than %d bytes", ErrMismatch, want.BaseSize)
	}
	if got != want.BaseSHA256 {
		return fmt.Errorf("%w: base sha256 %s, want %s", ErrMismatch, got, want.BaseSHA256)
	}
	return nil
}

// ApplyFile applies the delta file at deltaPath to the base file at
// basePath and atomically writes the verified target to outPath: on any
// error outPath is left as it was.
func ApplyFile(ctx context.Context, outPath, deltaPath, basePath string, want Want, opts ApplyOptions) error {
	df, err := os.Open(deltaPath)
	if err != nil {
		return fmt.Errorf("open delta: %w", err)
	}
	defer df.Close()
	bf, err := os.Open(basePath)
	if err != nil {
		return fmt.Errorf("open base: %w", err)
	}
	defer bf.Close()
	return fsutil.WriteFrom(outPath, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := Apply(ctx, bw, df, bf, want, opts); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// Inspect reads a whole delta without a base and reports its header and
// layout, for tools; it refuses a malformed delta like Apply does.
func Inspect(r io.Reader) (Header, []SegmentInfo, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return h, nil, err
	}
	br := bufio.NewReader(r)
	var segs []SegmentInfo
	var done int64
	for {
		s, end, err := readSegmentHead(br, h)
		if err != nil {
			return h, segs, err
		}
		if end {
			if s.size != len(segs) {
				return h, segs, fmt.Errorf("%w: end record counts %d segments, read %d", ErrFormat, s.size, len(segs))
			}
			break
		}
		var dict int64
		for _, e := range s.ranges {
			dict += e.n
		}
		if int64(s.size) > h.Size-done {
			return h, segs, fmt.Errorf("%w: segments exceed the target size %d", ErrFormat, h.Size)
		}
		done += int64(s.size)
		segs = append(segs, SegmentInfo{Size: s.size, Ranges: len(s.ranges), DictBytes: dict, FrameBytes: s.frame})
		if _, err := br.Discard(s.frame); err != nil {
			return h, segs, fmt.Errorf("%w: read frame: %v", ErrFormat, noEOF(err))
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return h, segs, fmt.Errorf("%w: data after the end record", ErrFormat)
	}
	if done != h.Size {
		return h, segs, fmt.Errorf("%w: segments cover %d bytes, want %d", ErrFormat, done, h.Size)
	}
	return h, segs, nil
}

// SegmentInfo describes one segment of a delta (Inspect).
type SegmentInfo struct {
	Size       int   // target bytes
	Ranges     int   // base ranges in its dictionary
	DictBytes  int64 // their total
	FrameBytes int   // its zstd frame
}
