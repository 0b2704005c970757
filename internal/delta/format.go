package delta

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The delta format, version 1 (all integers little endian or uvarint):
//
//	header (HeaderSize bytes):
//	  magic      [8]  "OPDELTA\x00"
//	  version    u16  1
//	  algorithm  u16  1 = AlgZstdSegments
//	  flags      u32  0
//	  base size  u64, base sha256 [32]
//	  target size u64, target sha256 [32]
//	  segment max u32  most target bytes one segment rebuilds
//	  dict max    u32  most base bytes one segment's dictionary holds
//	  crc32c      u32  of the bytes above
//	records, in target order:
//	  'S' segment: uvarint target length, uvarint range count, per range
//	      (uvarint base offset, uvarint length), uvarint frame length,
//	      a zstd frame (content checksum on) whose raw dictionary is the
//	      concatenation of the ranges of the base, in the order listed
//	  'D' diff segment: as 'S' but, before the frame length, uvarint
//	      ctrl length and uvarint diff length: the frame holds the
//	      bsdiff-class streams of diff.go, not the segment itself
//	  'E' end: uvarint segment count; nothing may follow
//
// A segment's output is its frame decoded with that dictionary; the
// target is the segments' outputs in order.

// HeaderSize is the encoded size of a Header.
const HeaderSize = 8 + 2 + 2 + 4 + 8 + 32 + 8 + 32 + 4 + 4 + 4

// AlgZstdSegments is the only algorithm of format version 1.
const AlgZstdSegments = 1

const (
	formatVersion = 1
	tagSegment    = 'S'
	tagDiff       = 'D'
	tagEnd        = 'E'
	// maxRanges bounds the dictionary ranges of one segment.
	maxRanges = 1 << 12
	// Hard ceilings a header may declare, whatever the options say.
	ceilSegment = 64 << 20
	ceilDict    = 256 << 20
)

var magic = [8]byte{'O', 'P', 'D', 'E', 'L', 'T', 'A', 0}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors a caller may test for with errors.Is.
var (
	// ErrFormat: the delta is not a well-formed delta (corrupt, truncated,
	// another format or version, beyond the decoder's limits).
	ErrFormat = errors.New("delta: malformed delta")
	// ErrMismatch: the delta is for another base or target than expected,
	// or the base given does not match the delta.
	ErrMismatch = errors.New("delta: delta does not match")
	// ErrVerify: the rebuilt file's size or sha256 is not the target's.
	ErrVerify = errors.New("delta: rebuilt file does not verify")
)

// Digest is a sha256.
type Digest [sha256.Size]byte

// String is the digest in lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest reads a 64-character hex sha256.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(d) {
		return d, fmt.Errorf("parse sha256 %q: want 64 hex characters", s)
	}
	copy(d[:], b)
	return d, nil
}

// Header identifies a delta: what it applies to and what it rebuilds.
type Header struct {
	Version    uint16
	Algorithm  uint16
	BaseSize   int64
	BaseSHA256 Digest
	Size       int64 // the target's
	SHA256     Digest
	SegmentMax int // most target bytes per segment
	DictMax    int // most base bytes per segment dictionary
}

func (h Header) marshal() []byte {
	b := make([]byte, 0, HeaderSize)
	b = append(b, magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, h.Version)
	b = binary.LittleEndian.AppendUint16(b, h.Algorithm)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.BaseSize))
	b = append(b, h.BaseSHA256[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Size))
	b = append(b, h.SHA256[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.SegmentMax))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.DictMax))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// ReadHeader reads and checks a delta's header from r, consuming exactly
// HeaderSize bytes.
func ReadHeader(r io.Reader) (Header, error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, fmt.Errorf("%w: read header: %v", ErrFormat, err)
	}
	return parseHeader(b[:])
}

func parseHeader(b []byte) (Header, error) {
	var h Header
	if !bytes.Equal(b[:8], magic[:]) {
		return h, fmt.Errorf("%w: not a delta (bad magic)", ErrFormat)
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[HeaderSize-4:]), crc32.Checksum(b[:HeaderSize-4], castagnoli); got != want {
		return h, fmt.Errorf("%w: header checksum mismatch", ErrFormat)
	}
	h.Version = le.Uint16(b[8:])
	h.Algorithm = le.Uint16(b[10:])
	if h.Version != formatVersion {
		return h, fmt.Errorf("%w: unsupported version %d", ErrFormat, h.Version)
	}
	if h.Algorithm != AlgZstdSegments {
		return h, fmt.Errorf("%w: unsupported algorithm %d", ErrFormat, h.Algorithm)
	}
	if flags := le.Uint32(b[12:]); flags != 0 {
		return h, fmt.Errorf("%w: unsupported flags %#x", ErrFormat, flags)
	}
	baseSize, size := le.Uint64(b[16:]), le.Uint64(b[56:])
	if baseSize > 1<<62 || size > 1<<62 {
		return h, fmt.Errorf("%w: size out of range", ErrFormat)
	}
	h.BaseSize, h.Size = int64(baseSize), int64(size)
	copy(h.BaseSHA256[:], b[24:56])
	copy(h.SHA256[:], b[64:96])
	h.SegmentMax = int(le.Uint32(b[96:]))
	h.DictMax = int(le.Uint32(b[100:]))
	if h.SegmentMax < 1 || h.SegmentMax > ceilSegment {
		return h, fmt.Errorf("%w: segment size %d out of range", ErrFormat, h.SegmentMax)
	}
	if h.DictMax < 0 || h.DictMax > ceilDict {
		return h, fmt.Errorf("%w: dictionary size %d out of range", ErrFormat, h.DictMax)
	}
	return h, nil
}

// extent is a range of the base.
type extent struct{ off, n int64 }

// segment is one record's metadata (its frame follows it in the stream).
type segment struct {
	kind             byte // tagSegment or tagDiff
	size             int
	ranges           []extent
	ctrlLen, diffLen int // tagDiff only
	frame            int
}

func appendSegmentHead(b []byte, s segment) []byte {
	b = append(b, s.kind)
	b = binary.AppendUvarint(b, uint64(s.size))
	b = binary.AppendUvarint(b, uint64(len(s.ranges)))
	for _, r := range s.ranges {
		b = binary.AppendUvarint(b, uint64(r.off))
		b = binary.AppendUvarint(b, uint64(r.n))
	}
	if s.kind == tagDiff {
		b = binary.AppendUvarint(b, uint64(s.ctrlLen))
		b = binary.AppendUvarint(b, uint64(s.diffLen))
	}
	return binary.AppendUvarint(b, uint64(s.frame))
}

// maxFrame bounds a segment's zstd frame: zstd stores incompressible
// blocks raw, so a frame never needs much more than its content.
func maxFrame(size int) int { return size + size/8 + 1024 }

// maxCtrl bounds a diff segment's ctrl stream (a builder whose ops need
// more stores the segment as 'S'); its decoded streams are then at most
// maxStreams bytes.
func maxCtrl(size int) int    { return size/4 + 1024 }
func maxStreams(size int) int { return maxCtrl(size) + 2*size }

// readSegmentHead reads a record's head; end is true for the end record
// (then s.size holds the segment count it declares). Every field is
// checked against h before anything is allocated from it.
func readSegmentHead(r *bufio.Reader, h Header) (s segment, end bool, err error) {
	tag, err := r.ReadByte()
	if err != nil {
		return s, false, fmt.Errorf("%w: read record: %v", ErrFormat, noEOF(err))
	}
	uv := func(what string, max uint64) (uint64, error) {
		v, err := binary.ReadUvarint(r)
		if err != nil {
			return 0, fmt.Errorf("%w: read %s: %v", ErrFormat, what, noEOF(err))
		}
		if v > max {
			return 0, fmt.Errorf("%w: %s %d out of range", ErrFormat, what, v)
		}
		return v, nil
	}
	switch tag {
	case tagEnd:
		n, err := uv("segment count", 1<<40)
		return segment{size: int(n)}, true, err
	case tagSegment, tagDiff:
		s.kind = tag
	default:
		return s, false, fmt.Errorf("%w: unknown record %#x", ErrFormat, tag)
	}
	size, err := uv("segment size", uint64(h.SegmentMax))
	if err != nil {
		return s, false, err
	}
	if size == 0 {
		return s, false, fmt.Errorf("%w: empty segment", ErrFormat)
	}
	s.size = int(size)
	n, err := uv("range count", maxRanges)
	if err != nil {
		return s, false, err
	}
	var total int64
	s.ranges = make([]extent, 0, n)
	for i := uint64(0); i < n; i++ {
		off, err := uv("range offset", uint64(h.BaseSize))
		if err != nil {
			return s, false, err
		}
		ln, err := uv("range length", uint64(h.BaseSize)-off)
		if err != nil {
			return s, false, err
		}
		if ln == 0 {
			return s, false, fmt.Errorf("%w: empty range", ErrFormat)
		}
		total += int64(ln)
		if total > int64(h.DictMax) {
			return s, false, fmt.Errorf("%w: dictionary over %d bytes", ErrFormat, h.DictMax)
		}
		s.ranges = append(s.ranges, extent{int64(off), int64(ln)})
	}
	if s.kind == tagDiff {
		c, err := uv("ctrl length", uint64(maxCtrl(s.size)))
		if err != nil {
			return s, false, err
		}
		d, err := uv("diff length", uint64(s.size))
		if err != nil {
			return s, false, err
		}
		s.ctrlLen, s.diffLen = int(c), int(d)
	}
	fl, err := uv("frame length", uint64(maxFrame(s.size)))
	if err != nil {
		return s, false, err
	}
	if fl == 0 {
		return s, false, fmt.Errorf("%w: empty frame", ErrFormat)
	}
	s.frame = int(fl)
	return s, false, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
