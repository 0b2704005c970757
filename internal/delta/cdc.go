package delta

// Content-defined chunking (FastCDC-class: a gear rolling hash with
// normalised chunk sizes). Chunks are only used to find where the content
// of a target segment lies in the base, so a boundary never has to be
// stable across versions of this package: nothing chunk-shaped is stored
// in a delta.

// gear is the gear hash's byte table, fixed pseudo-random values
// (splitmix64 from a constant seed) so that chunking is deterministic.
var gear = func() (t [256]uint64) {
	x := uint64(0x6f7574706f737464) // "outpostd"
	for i := range t {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		t[i] = z ^ (z >> 31)
	}
	return t
}()

// chunker cuts byte slices into content-defined chunks of average size
// avg (a power of two), at least avg/4 and at most avg*4 bytes.
type chunker struct {
	min, avg, max int
	maskS, maskL  uint64 // harder before avg, easier after (normalised chunking)
}

func newChunker(avg int) chunker {
	bits := 0
	for 1<<bits < avg {
		bits++
	}
	avg = 1 << bits
	return chunker{
		min:   avg / 4,
		avg:   avg,
		max:   avg * 4,
		maskS: spreadMask(bits + 1),
		maskL: spreadMask(bits - 1),
	}
}

// spreadMask returns a mask with n one bits spread over the high half of
// the word, where the gear hash mixes best.
func spreadMask(n int) uint64 {
	var m uint64
	for i := 0; i < n; i++ {
		m |= 1 << (63 - 2*i)
	}
	return m
}

// next returns the length of the chunk that starts at b[0]; all of b when
// b is shorter than the maximum chunk and no boundary is found (the caller
// treats the end of its data as a boundary).
func (c chunker) next(b []byte) int {
	n := len(b)
	if n <= c.min {
		return n
	}
	if n > c.max {
		n = c.max
	}
	norm := c.avg
	if norm > n {
		norm = n
	}
	var h uint64
	i := c.min
	for ; i < norm; i++ {
		h = h<<1 + gear[b[i]]
		if h&c.maskS == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + gear[b[i]]
		if h&c.maskL == 0 {
			return i + 1
		}
	}
	return n
}
