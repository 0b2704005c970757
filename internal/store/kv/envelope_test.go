package kv

import (
	"bytes"
	"strings"
	"testing"
)

func TestEnvelope_PackUnpack(t *testing.T) {
	view := []byte(`{"payloadType":"application/vnd.outpost.build-record+json","payload":"` + strings.Repeat("eyJyZWxlYXNlcyI6W119", 4096) + `"}`)
	t.Run("round trip, smaller stored", func(t *testing.T) {
		packed := packEnvelope(view)
		if !bytes.HasPrefix(packed, zstdMagic) || len(packed) >= len(view)/4 {
			t.Fatalf("stored %d bytes for %d, want a zstd frame under a quarter", len(packed), len(view))
		}
		got, err := unpackEnvelope(packed)
		if err != nil || !bytes.Equal(got, view) {
			t.Fatalf("unpack = %d bytes, %v; want the record back", len(got), err)
		}
	})
	t.Run("value stored before compression", func(t *testing.T) {
		got, err := unpackEnvelope(view)
		if err != nil || !bytes.Equal(got, view) {
			t.Fatalf("unpack legacy = %v; want it as stored", err)
		}
		got[0] = 'x'
		if view[0] == 'x' {
			t.Fatal("unpack returned the stored memory, want a copy")
		}
	})
	t.Run("corrupt frame is an error", func(t *testing.T) {
		bad := append(append([]byte{}, zstdMagic...), 0xff, 0xff, 0xff, 0xff)
		if _, err := unpackEnvelope(bad); err == nil {
			t.Fatal("a corrupt frame decoded")
		}
	})
}
