package cache

import (
	"hash"
	"io"
	"os"
	"sync"
)

// copyBufs are 1 MiB: a multi-GiB blob then costs a few thousand write
// syscalls instead of tens of thousands with io.Copy's 32 KiB.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyToDisk copies r to f and into h.
func copyToDisk(f *os.File, h hash.Hash, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(io.MultiWriter(f, h), r, *bp)
}
