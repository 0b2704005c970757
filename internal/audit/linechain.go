package audit

import (
	"crypto/sha256"
	"encoding/hex"
)

// LineChain is the hash chain over the lines of a signed JSON-lines file
// (the fleet report, the return file): sha256(format "\n" header), then
// sha256(previous || line) for each line. Its head, signed in the
// trailer, makes every line tamper-evident. The zero value is ready;
// call Start first.
type LineChain struct{ h [32]byte }

// Start begins the chain with the file's format name and header line.
func (c *LineChain) Start(format string, header []byte) {
	s := sha256.New()
	s.Write([]byte(format + "\n"))
	s.Write(header)
	copy(c.h[:], s.Sum(nil))
}

// Next links one more line.
func (c *LineChain) Next(line []byte) {
	s := sha256.New()
	s.Write(c.h[:])
	s.Write(line)
	copy(c.h[:], s.Sum(nil))
}

// Head is the chain's current hash, hex.
func (c *LineChain) Head() string { return hex.EncodeToString(c.h[:]) }
