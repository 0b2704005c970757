package blob

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestValidateKey_Cases(t *testing.T) {
	cases := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"sha256/ab/abcdef", true},
		{"art_01-x.tar.gz", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"..", false},
		{"a/../b", false},
		{".tmp/x", false},
		{"a b", false},
		{"a\\b", false},
		{strings.Repeat("a", MaxSegmentLen+1), false},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			err := ValidateKey(c.key)
			if got := err == nil; got != c.ok {
				t.Fatalf("ValidateKey(%q) = %v, want ok=%v", c.key, err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
		})
	}
}

func TestMeter_Limits(t *testing.T) {
	const body = "0123456789"
	cases := []struct {
		name    string
		e       Expect
		wantErr error
		maxRead int64
	}{
		{"none", Expect{}, nil, 10},
		{"exact size", Expect{Size: 10}, nil, 10},
		{"size short", Expect{Size: 4}, ErrMismatch, 5},
		{"size long", Expect{Size: 11}, ErrMismatch, 10},
		{"max hit", Expect{MaxSize: 3}, ErrTooLarge, 4},
		{"max exact", Expect{MaxSize: 10}, nil, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewMeter(context.Background(), strings.NewReader(body), c.e)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, m)
			if err == nil {
				_, _, err = m.Finish()
			}
			if !errors.Is(err, c.wantErr) && !(err == nil && c.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if m.N() > c.maxRead {
				t.Fatalf("read %d bytes, want at most %d", m.N(), c.maxRead)
			}
		})
	}
}
