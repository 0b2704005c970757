package wire_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/wire"
)

// readerFrom records the readers ReadFrom is given, as a ResponseWriter
// handing them to sendfile would see them.
type readerFrom struct {
	buf  bytes.Buffer
	seen []io.Reader
}

func (r *readerFrom) ReadFrom(src io.Reader) (int64, error) {
	r.seen = append(r.seen, src)
	return r.buf.ReadFrom(src)
}

func TestReadFromInChunks_ChunksAndKeepsTheFileReader(t *testing.T) {
	data := strings.Repeat("x", 2*wire.StreamChunk+123)
	cases := []struct {
		name       string
		src        func() io.Reader
		want       int
		wantChunks int
	}{
		{"a limited reader", func() io.Reader {
			return &io.LimitedReader{R: strings.NewReader(data), N: int64(wire.StreamChunk + 10)}
		}, wire.StreamChunk + 10, 2},
		{"a plain reader to its end", func() io.Reader { return strings.NewReader(data) }, len(data), 3},
		{"an empty limited reader", func() io.Reader { return &io.LimitedReader{R: strings.NewReader(data), N: 0} }, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src()
			rf := &readerFrom{}
			extends := 0
			n, err := wire.ReadFromInChunks(rf, src, func() { extends++ })
			if err != nil || n != int64(tc.want) || rf.buf.Len() != tc.want {
				t.Fatalf("copied %d (%d buffered), %v; want %d", n, rf.buf.Len(), err, tc.want)
			}
			if len(rf.seen) != tc.wantChunks || extends != tc.wantChunks {
				t.Errorf("%d chunks, %d deadline extensions; want %d of each", len(rf.seen), extends, tc.wantChunks)
			}
			for i, r := range rf.seen {
				lr, ok := r.(*io.LimitedReader)
				if !ok {
					t.Fatalf("chunk %d is a %T, want an *io.LimitedReader", i, r)
				}
				if _, nested := lr.R.(*io.LimitedReader); nested {
					t.Errorf("chunk %d nests limited readers: sendfile would not see the file", i)
				}
			}
			if lr, ok := src.(*io.LimitedReader); ok && lr.N != 0 {
				t.Errorf("the caller's limited reader has N = %d left, want 0", lr.N)
			}
		})
	}
}
