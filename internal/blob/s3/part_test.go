package s3

import (
	"bytes"
	"testing"

	"github.com/outpost/outpost/internal/blob"
)

func TestStore_PartSizeFor(t *testing.T) {
	s := &Store{partSize: DefaultPartSize}
	cases := []struct {
		name string
		e    blob.Expect
		want int64
	}{
		{"unknown", blob.Expect{}, DefaultPartSize},
		{"small", blob.Expect{Size: 100}, DefaultPartSize},
		{"at limit", blob.Expect{Size: DefaultPartSize * maxParts}, DefaultPartSize},
		{"above limit", blob.Expect{Size: DefaultPartSize*maxParts + 1}, DefaultPartSize + 1<<20},
		{"max size decides", blob.Expect{MaxSize: 200 << 30}, 21 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := s.partSizeFor(c.e)
			if got != c.want {
				t.Fatalf("partSizeFor(%+v) = %d, want %d", c.e, got, c.want)
			}
			n := max(c.e.Size, c.e.MaxSize)
			if got*maxParts < n {
				t.Fatalf("%d parts of %d hold less than %d", maxParts, got, n)
			}
		})
	}
}

func TestFill_Grows(t *testing.T) {
	cases := []struct {
		name  string
		n     int
		max   int64
		wantN int
	}{
		{"empty", 0, 1 << 20, 0},
		{"small", 10, 1 << 20, 10},
		{"grows", 300 << 10, 1 << 20, 300 << 10},
		{"capped", 2 << 20, 1 << 20, 1 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := bytes.Repeat([]byte{7}, c.n)
			buf, n, err := fill(bytes.NewReader(src), nil, c.max)
			if err != nil || n != c.wantN {
				t.Fatalf("fill = %d, %v; want %d, nil", n, err, c.wantN)
			}
			if int64(len(buf)) > c.max {
				t.Fatalf("buffer grew to %d, past max %d", len(buf), c.max)
			}
		})
	}
}
