package tuf

import (
	"context"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestCeremony_Threshold exports an unsigned root, signs it with key
// files "elsewhere" one at a time, imports the signatures and checks the
// threshold, for a first root and a rotation.
func TestCeremony_Threshold(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "ten_cer", ProductOptions{})
	newRootKeys := []Signer{testSigner(t, 90), testSigner(t, 91), testSigner(t, 92)}
	spec := f.rootSpec(f.ts)
	spec.Root = RoleKeys{Keys: pub(t, newRootKeys...), Threshold: 2}
	next, err := NextRoot(f.root, spec)
	if err != nil {
		t.Fatal(err)
	}
	exported, err := Export(next)
	if err != nil {
		t.Fatal(err)
	}
	sigOf := func(s Signer) metadata.Signature {
		sig, err := SignExported(ctx, exported, s)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	for _, tc := range []struct {
		name    string
		signers []Signer
		want    string // "" when the root may be published
	}{
		{"no signature", nil, "own threshold"},
		{"new keys only", newRootKeys[:2], "previous threshold"},
		{"old keys only", f.rootKeys[:2], "own threshold"},
		{"one old, two new", []Signer{f.rootKeys[0], newRootKeys[0], newRootKeys[2]}, "previous threshold"},
		{"two old, one new", []Signer{f.rootKeys[0], f.rootKeys[2], newRootKeys[1]}, "own threshold"},
		{"a signature by an unknown key does not count", []Signer{f.rootKeys[0], f.rootKeys[1], newRootKeys[0], testSigner(t, 99)}, "own threshold"},
		{"two old, two new", []Signer{f.rootKeys[0], f.rootKeys[1], newRootKeys[0], newRootKeys[1]}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sigs []metadata.Signature
			for _, s := range tc.signers {
				sigs = append(sigs, sigOf(s))
			}
			got, data, err := AddSignatures[metadata.RootType](exported, sigs...)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckRoot(f.root, got)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want a publishable root", err)
				}
				if strings.Contains(string(data), "\n") {
					t.Fatal("imported root is not compact")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about the %s", err, tc.want)
			}
		})
	}
	t.Run("tenant cannot change", func(t *testing.T) {
		spec := f.rootSpec(f.ts)
		spec.TenantID, spec.Version = "ten_x", 2
		r, err := NewRoot(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := SignRoot(ctx, r, f.rootKeys...); err != nil {
			t.Fatal(err)
		}
		if err := CheckRoot(f.root, r); err == nil || !strings.Contains(err.Error(), "tenant") {
			t.Fatalf("got %v, want a tenant error", err)
		}
	})
	t.Run("threshold above the keys refused", func(t *testing.T) {
		spec := f.rootSpec(f.ts)
		spec.Root.Threshold = 4
		if _, err := NewRoot(spec); err == nil {
			t.Fatal("root with threshold 4 of 3 keys accepted")
		}
	})
}

func TestCheckTopLevel_Threshold(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "ten_cer", ProductOptions{})
	f.build(func() *snapshot.Manifest {
		m := view(1, 2, 1)
		m.TenantID, m.Tenant.TenantID = "ten_cer", "ten_cer"
		return m
	}())
	ts := f.repo.get("metadata/timestamp.json")
	m, err := metadata.Timestamp().FromBytes(ts)
	if err != nil {
		t.Fatal(err)
	}
	m.ClearSignatures()
	unsigned, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignExported(ctx, unsigned, f.ts)
	if err != nil {
		t.Fatal(err)
	}
	_, signed, err := AddSignatures[metadata.TimestampType](unsigned, sig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"signed by the timestamp key", signed, true},
		{"unsigned", unsigned, false},
		{"genuine published", ts, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckTopLevel(f.root, tc.data); (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
