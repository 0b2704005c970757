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
		{"copy past dict", append([]byte{17, 0, 0}, make([]byte, 17)...), 3, 17, 17},
		{"negative seek", append([]byte{1, 0, 1}, 0), 3, 1, 1},
		{"over size", append([]byte{4, 0, 0}, make([]byte, 4)...), 3, 4, 3},
		{"missing extra", []byte{0, 5, 0, 'x'}, 3, 0, 5},
		{"leftover diff", append([]byte{1, 0, 0}, 0, 0), 3, 2, 1},
		{"truncated op", []byte{0x80}, 1, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := diffDecode(nil, d, c.streams, c.cl, c.dl, c.size); err == nil {
				t.Fatal("diffDecode accepted bad ops")
			}
		})
	}
}
