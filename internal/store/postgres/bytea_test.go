package postgres

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestByteaArray_MatchesPgx: byteaArray encodes byte for byte as pgx's
// own bytea[] encoding of the same values (empty arrays, empty and nil
// elements, large ones), and reads back from PostgreSQL unchanged.
func TestByteaArray_MatchesPgx(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][][]byte{nil, {}, {{}}, {nil}, {[]byte("a"), nil, {}}, {bytes.Repeat([]byte{0xff}, 70000)}}
	for range 20 {
		var a [][]byte
		for range rng.IntN(40) {
			e := make([]byte, rng.IntN(3000))
			for i := range e {
				e[i] = byte(rng.Uint32())
			}
			a = append(a, e)
		}
		cases = append(cases, a)
	}
	plain := pgtype.NewMap()
	ours := pgtype.NewMap()
	registerByteaArray(ours)
	registerByteaArray(ours) // a second registration changes nothing
	for i, a := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want, err := plain.Encode(pgtype.ByteaArrayOID, pgtype.BinaryFormatCode, pgtype.FlatArray[[]byte](a), []byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ours.Encode(pgtype.ByteaArrayOID, pgtype.BinaryFormatCode, byteaArray(a), []byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from pgx's:\n got %x\nwant %x", trim(got), trim(want))
			}
		})
	}
	t.Run("through PostgreSQL", func(t *testing.T) {
		db, _ := openSchema(t, testURL(t))
		defer db.Close()
		c, err := db.pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := c.Conn().TypeMap().TypeForOID(pgtype.ByteaArrayOID)
		c.Release()
		if _, ok := typ.Codec.(byteaArrayCodec); !ok {
			t.Fatalf("the store's connections encode bytea[] with %T, want byteaArrayCodec", typ.Codec)
		}
		for i, a := range cases {
			var got [][]byte
			if err := db.pool.QueryRow(context.Background(), "SELECT $1::bytea[]", byteaArray(a)).Scan(&got); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			if len(a) == 0 {
				a = nil // PostgreSQL's empty array reads back as nil
			}
			if len(got) != len(a) {
				t.Fatalf("case %d: %d elements back, want %d", i, len(got), len(a))
			}
			for j := range a {
				if !bytes.Equal(got[j], a[j]) || (got[j] == nil) != (a[j] == nil) {
					t.Fatalf("case %d element %d: %x back, want %x", i, j, trim(got[j]), trim(a[j]))
				}
			}
		}
	})
}

func trim(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
