package delta

import (
	"bytes"
	"testing"
)

func TestAddBytes_MatchesBytewise(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 64, 1000} {
		a, b := randBytes(uint64(n), n), randBytes(uint64(n)+1, n)
		want := make([]byte, n)
		for i := range want {
			want[i] = a[i] + b[i]
		}
		got := make([]byte, n)
		addBytes(got, a, b)
		if !bytes.Equal(got, want) {
			t.Errorf("n=%d: addBytes differs from byte-wise addition", n)
		}
	}
}

func TestDiffDecode_RefusesBadOps(t *testing.T) {
	d := []byte("0123456789abcdef")
	cases := []struct {
		name    string
		streams []byte
		cl, dl  int
		size    int
	}{
		{"empty op", []byte{0, 0, 0}, 3, 0, 1},
		{"copy past dict", []byte{17, 0, 0, 17, 0}, 3, 2, 17},
		{"negative seek", []byte{1, 0, 1, 1, 0}, 3, 2, 1},
		{"over size", []byte{4, 0, 0, 4, 0}, 3, 2, 3},
		{"missing extra", []byte{0, 5, 0, 'x'}, 3, 0, 5},
		{"leftover diff", []byte{1, 0, 0, 2, 0}, 3, 2, 1},
		{"truncated op", []byte{0x80}, 1, 0, 1},
		{"bad run", []byte{1, 0, 0, 0x80}, 3, 1, 1},
		{"run past size", []byte{1, 0, 0, 9, 0}, 3, 2, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := diffDecode(nil, nil, d, c.streams, c.cl, c.dl, c.size); err == nil {
				t.Fatal("diffDecode accepted bad ops")
			}
		})
	}
}
