package main

import (
	"slices"
	"testing"
)

func TestParseSizes_Forms(t *testing.T) {
	cases := []struct {
		in      string
		want    []int64
		wantErr bool
	}{
		{in: "1", want: []int64{1 << 20}},
		{in: "1,64", want: []int64{1 << 20, 64 << 20}},
		{in: "2x3", want: []int64{2 << 20, 2 << 20, 2 << 20}},
		{in: "1, 128x2", want: []int64{1 << 20, 128 << 20, 128 << 20}},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "1x0", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "99999999", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseSizes(c.in)
			if (err != nil) != c.wantErr {
				t.Fatalf("parseSizes(%q) error = %v, want error %v", c.in, err, c.wantErr)
			}
			if !c.wantErr && !slices.Equal(got, c.want) {
				t.Errorf("parseSizes(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}
