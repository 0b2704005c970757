package delta

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// The bsdiff-class coding of a segment against its dictionary D: a list
// of ops, each "seek in D, add copy bytes of D to as many difference
// bytes, then append extra new bytes". Executables change mostly by
// small shifts of addresses all over the code, which an exact matcher
// (zstd) sees as many short matches while here they are zero difference
// bytes with a few small non-zero ones, which zstd then compresses well.
// Unlike bsdiff, the matcher uses a fixed-size hash table of D, not a
// suffix array: memory is bounded whatever D's size.
//
// The three streams are stored one after another in one zstd frame
// (with D as its dictionary, so extra bytes can still refer to D):
//
//	ctrl:  per op uvarint copy, uvarint extra, varint seek (from the
//	       previous copy's end to this copy's start in D)
//	diff:  copy bytes, target minus D, byte-wise, run-length coded
//	       (appendRuns)
//	extra: extra bytes

const (
	diffTableBits = 22 // 16 MiB of uint32
	diffSeed      = 8  // bytes hashed to find a candidate
)

// diffIndex finds candidate positions of 8-byte strings in D; it also
// keeps the encoder's stream buffers from one segment to the next.
type diffIndex struct {
	tab                []uint32 // position+1, 0 for none
	d                  []byte
	ctrl, diffs, extra []byte
}

func newDiffIndex() *diffIndex { return &diffIndex{tab: make([]uint32, 1<<diffTableBits)} }

func diffHash(b []byte) uint32 {
	return uint32((binary.LittleEndian.Uint64(b) * 0x9e3779b97f4a7c15) >> (64 - diffTableBits))
}

// reset indexes d (later positions win: they sit closer to the target's
// likely alignment when d is a base region in order).
func (ix *diffIndex) reset(d []byte) {
	clear(ix.tab)
	ix.d = d
	for p := 0; p+diffSeed <= len(d); p++ {
		ix.tab[diffHash(d[p:])] = uint32(p + 1)
	}
}

// search returns the longest exact match of t[i:] among the table's
// candidate and the current alignment's.
func (ix *diffIndex) search(t []byte, i, alignPos int) (length, pos int) {
	d := ix.d
	try := func(p int) {
		if p < 0 || p >= len(d) {
			return
		}
		n := commonPrefix(d[p:], t[i:])
		if n > length {
			length, pos = n, p
		}
	}
	if i+diffSeed <= len(t) {
		if c := ix.tab[diffHash(t[i:])]; c != 0 {
			try(int(c) - 1)
		}
	}
	try(alignPos)
	return length, pos
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// diffEncode codes t against the indexed dictionary, bsdiff's loop with a
// hash table for the search. It appends the three streams to buf and
// returns them with their lengths.
func diffEncode(ix *diffIndex, t []byte, buf []byte) (out []byte, ctrlLen, diffLen, extraLen int) {
	d := ix.d
	n := len(t)
	ctrl, diffs, extra := ix.ctrl[:0], ix.diffs[:0], ix.extra[:0]
	defer func() { ix.ctrl, ix.diffs, ix.extra = ctrl, diffs, extra }()
	var (
		scan, length, pos             int
		lastScan, lastPos, lastOffset int
		prevEnd                       int // end of the previous copy in d
	)
	at := func(p int) (byte, bool) {
		if p < 0 || p >= len(d) {
			return 0, false
		}
		return d[p], true
	}
	for scan < n {
		oldScore := 0
		scan += length
		scsc := scan
		for ; scan < n; scan++ {
			length, pos = ix.search(t, scan, scan+lastOffset)
			for ; scsc < scan+length; scsc++ {
				if b, ok := at(scsc + lastOffset); ok && b == t[scsc] {
					oldScore++
				}
			}
			if (length == oldScore && length != 0) || length > oldScore+8 {
				break
			}
			if b, ok := at(scan + lastOffset); ok && b == t[scan] {
				oldScore--
			}
		}
		if length == oldScore && scan != n {
			continue
		}
		// Extend the previous match forwards and the new one backwards,
		// as long as more than half of the bytes match.
		s, sf, lenf := 0, 0, 0
		for i := 0; lastScan+i < scan && lastPos+i < len(d); {
			if d[lastPos+i] == t[lastScan+i] {
				s++
			}
			i++
			if s*2-i > sf*2-lenf {
				sf, lenf = s, i
			}
		}
		lenb := 0
		if scan < n {
			s, sb := 0, 0
			for i := 1; scan >= lastScan+i && pos >= i; i++ {
				if d[pos-i] == t[scan-i] {
					s++
				}
				if s*2-i > sb*2-lenb {
					sb, lenb = s, i
				}
			}
		}
		if lastScan+lenf > scan-lenb {
			overlap := lastScan + lenf - (scan - lenb)
			s, ss, lens := 0, 0, 0
			for i := 0; i < overlap; i++ {
				if t[lastScan+lenf-overlap+i] == d[lastPos+lenf-overlap+i] {
					s++
				}
				if t[scan-lenb+i] == d[pos-lenb+i] {
					s--
				}
				if s > ss {
					ss, lens = s, i+1
				}
			}
			lenf += lens - overlap
			lenb -= lens
		}
		extraEnd := scan - lenb
		if lenf > 0 || extraEnd > lastScan+lenf {
			for i := 0; i < lenf; i++ {
				diffs = append(diffs, t[lastScan+i]-d[lastPos+i])
			}
			extra = append(extra, t[lastScan+lenf:extraEnd]...)
			ctrl = binary.AppendUvarint(ctrl, uint64(lenf))
			ctrl = binary.AppendUvarint(ctrl, uint64(extraEnd-(lastScan+lenf)))
			ctrl = binary.AppendVarint(ctrl, int64(lastPos-prevEnd))
			prevEnd = lastPos + lenf
		}
		lastScan, lastPos, lastOffset = scan-lenb, pos-lenb, pos-scan
	}
	out = append(buf[:0], ctrl...)
	out = appendRuns(out, diffs)
	diffLen = len(out) - len(ctrl)
	out = append(out, extra...)
	return out, len(ctrl), diffLen, len(extra)
}

// appendRuns appends b in run-length form: (uvarint zero bytes, uvarint
// other bytes, the other bytes)... Difference bytes are mostly zero with
// scattered small values; zstd codes this form about twice as compactly
// as the raw bytes (measured on the mirror pair, docs/deltas.md).
func appendRuns(out, b []byte) []byte {
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j] == 0 {
			j++
		}
		k := j
		for k < len(b) && b[k] != 0 {
			k++
		}
		out = binary.AppendUvarint(out, uint64(j-i))
		out = binary.AppendUvarint(out, uint64(k-j))
		out = append(out, b[j:k]...)
		i = k
	}
	return out
}

// expandRuns decodes appendRuns's form into dst, refusing more than max
// bytes.
func expandRuns(dst, runs []byte, max int) ([]byte, error) {
	dst = dst[:0]
	for len(runs) > 0 {
		z, n1 := binary.Uvarint(runs)
		if n1 <= 0 {
			return nil, fmt.Errorf("%w: bad difference run", ErrFormat)
		}
		nz, n2 := binary.Uvarint(runs[n1:])
		if n2 <= 0 {
			return nil, fmt.Errorf("%w: bad difference run", ErrFormat)
		}
		runs = runs[n1+n2:]
		left := uint64(max - len(dst))
		if z > left || nz > left-z || nz > uint64(len(runs)) {
			return nil, fmt.Errorf("%w: difference run out of range", ErrFormat)
		}
		at := len(dst)
		dst = slices.Grow(dst, int(z+nz))[:at+int(z)]
		clear(dst[at:])
		dst = append(dst, runs[:nz]...)
		runs = runs[nz:]
	}
	return dst, nil
}

// diffDecode rebuilds a segment of size bytes from d and the decoded
// streams, appending to dst; every op is checked against the bounds.
// scratch holds the expanded difference bytes (returned for reuse).
func diffDecode(dst, scratch, d, streams []byte, ctrlLen, diffLen, size int) ([]byte, []byte, error) {
	ctrl, runs, extra := streams[:ctrlLen], streams[ctrlLen:ctrlLen+diffLen], streams[ctrlLen+diffLen:]
	diffs, err := expandRuns(scratch, runs, size)
	if err != nil {
		return nil, scratch, err
	}
	scratch = diffs
	start := len(dst)
	prevEnd := int64(0)
	for len(ctrl) > 0 {
		cp, n1 := binary.Uvarint(ctrl)
		if n1 <= 0 {
			return nil, scratch, fmt.Errorf("%w: bad op", ErrFormat)
		}
		ex, n2 := binary.Uvarint(ctrl[n1:])
		if n2 <= 0 {
			return nil, scratch, fmt.Errorf("%w: bad op", ErrFormat)
		}
		seek, n3 := binary.Varint(ctrl[n1+n2:])
		if n3 <= 0 {
			return nil, scratch, fmt.Errorf("%w: bad op", ErrFormat)
		}
		ctrl = ctrl[n1+n2+n3:]
		left := uint64(size - (len(dst) - start))
		if cp+ex == 0 || cp > left || ex > left-cp || cp > uint64(len(diffs)) || ex > uint64(len(extra)) {
			return nil, scratch, fmt.Errorf("%w: op out of range", ErrFormat)
		}
		from := prevEnd + seek
		if seek < -int64(len(d)) || seek > int64(len(d)) || from < 0 || from+int64(cp) > int64(len(d)) {
			return nil, scratch, fmt.Errorf("%w: copy outside the dictionary", ErrFormat)
		}
		at := len(dst)
		dst = slices.Grow(dst, int(cp))[:at+int(cp)]
		addBytes(dst[at:], d[from:from+int64(cp)], diffs[:cp])
		diffs = diffs[cp:]
		dst = append(dst, extra[:ex]...)
		extra = extra[ex:]
		prevEnd = from + int64(cp)
	}
	if len(dst)-start != size || len(diffs) != 0 || len(extra) != 0 {
		return nil, scratch, fmt.Errorf("%w: ops rebuild %d bytes of %d", ErrFormat, len(dst)-start, size)
	}
	return dst, scratch, nil
}

// addBytes sets dst[i] = a[i] + b[i] (mod 256), eight bytes at a time:
// the low seven bits of each byte are added without carrying into the
// next byte, then the top bits are set by xor.
func addBytes(dst, a, b []byte) {
	const hi = 0x8080808080808080
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x, y := le.Uint64(a[i:]), le.Uint64(b[i:])
		le.PutUint64(dst[i:], ((x&^hi)+(y&^hi))^((x^y)&hi))
	}
	for ; i < len(a); i++ {
		dst[i] = a[i] + b[i]
	}
}
