package tuf

import "testing"

func TestParseVersionID_RoundTripAndRefusals(t *testing.T) {
	for _, v := range []int64{1, 42, 999999999999999999} {
		got, ok := ParseVersionID(VersionID(v))
		if !ok || got != v {
			t.Errorf("ParseVersionID(VersionID(%d)) = %d, %v; want %d, true", v, got, ok, v)
		}
	}
	for _, id := range []string{"", "tuf-", "tuf-0", "tuf-01", "tuf--1", "tuf-+1", "tuf-1x", "snp_abc", "TUF-1", "tuf-1234567890123456789"} {
		if got, ok := ParseVersionID(id); ok {
			t.Errorf("ParseVersionID(%q) = %d, true; want false", id, got)
		}
	}
}
