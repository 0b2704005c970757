package wire

import "io"

// StreamChunk is how much a streaming answer may send per extension of
// its write deadline when it is copied with ReadFrom (ReadFromInChunks).
const StreamChunk = 4 << 20

// ReadFromInChunks copies r through rf (a ResponseWriter's ReadFrom, which
// sends a file by sendfile) in chunks of StreamChunk, calling extend
// before each to push the write deadline on: a client that keeps reading
// gets the whole answer however slowly, one that stops is cut after one
// deadline. An *io.LimitedReader over a file stays one level deep, so
// sendfile still applies, and its N is kept up to date.
func ReadFromInChunks(rf io.ReaderFrom, r io.Reader, extend func()) (int64, error) {
	src, remain := r, int64(-1)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		src, remain = lr.R, lr.N
	}
	var n int64
	for remain != 0 {
		extend()
		chunk := int64(StreamChunk)
		if remain > 0 {
			chunk = min(chunk, remain)
		}
		m, err := rf.ReadFrom(&io.LimitedReader{R: src, N: chunk})
		n += m
		if remain > 0 {
			remain -= m
		}
		if limited {
			lr.N -= m
		}
		if err != nil || m < chunk {
			return n, err
		}
	}
	return n, nil
}

// IdleBody pushes the read deadline on (Extend) before each read of a
// streamed request body: an upload may last as long as bytes keep
// arriving, and one that stalls is cut after one deadline.
type IdleBody struct {
	io.ReadCloser
	Extend func()
}

func (b *IdleBody) Read(p []byte) (int, error) {
	b.Extend()
	return b.ReadCloser.Read(p)
}
