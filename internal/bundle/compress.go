package bundle

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// Decompress returns r itself for a plain tar bundle, or a reader of its
// inflated bytes when r starts with the gzip magic (`gzip acme.tar`: a
// one-release TUF bundle shrinks about ninefold). A hostile stream gains
// nothing from compression: every entry is still checked and capped on
// the inflated bytes (tarsafe, the signed lengths). close releases the
// decompressor.
func Decompress(r io.Reader) (out io.Reader, close func(), err error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("bundle: read: %w", err)
	}
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, func() {}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: gzip: %w", err)
	}
	zr.Multistream(false)
	return zr, func() { zr.Close() }, nil
}
