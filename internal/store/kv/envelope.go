package kv

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Stored envelopes (build records) are zstd-compressed: a record holds a
// tenant's whole view as JSON, and with retention keeping a tenant's
// newest few, uncompressed records dominated the database (bbolt keeps
// values as they are; PostgreSQL's TOAST compressed them). The store's
// callers never see the compressed form: Envelope and Hash are the
// record's own bytes. Values written before compression (which begin
// with '{', never with zstd's magic number) are read as they are.

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

var (
	zenc = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err) // only for invalid options
		}
		return e
	})
	zdec = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<32))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// packEnvelope is the stored form of env.
func packEnvelope(env []byte) []byte {
	return zenc().EncodeAll(env, make([]byte, 0, len(env)/4))
}

// unpackEnvelope returns the envelope a stored value holds, in memory of
// its own (v may point into the transaction's pages).
func unpackEnvelope(v []byte) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if !bytes.HasPrefix(v, zstdMagic) {
		return bytes.Clone(v), nil
	}
	env, err := zdec().DecodeAll(v, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress stored envelope: %w", err)
	}
	return env, nil
}
