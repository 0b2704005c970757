package controlplane_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/outpost/outpost/internal/controlplane"
)

func TestSealer_OpensWithEveryKeySealsWithTheFirst(t *testing.T) {
	oldKey, newKey, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	old, err := controlplane.NewSealer(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealedOld, err := old.Seal("id", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	both, err := controlplane.NewSealer(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealedNew, err := both.Seal("id", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := controlplane.NewSealer(newKey)
	wrong, _ := controlplane.NewSealer(other)
	for _, c := range []struct {
		name      string
		s         *controlplane.Sealer
		sealed    []byte
		id        string
		wantFirst bool
		wantErr   error
	}{
		{"old value, both keys", both, sealedOld, "id", false, nil},
		{"new value, both keys", both, sealedNew, "id", true, nil},
		{"new value, new key", onlyNew, sealedNew, "id", true, nil},
		{"new value, old key only", old, sealedNew, "id", false, controlplane.ErrWrongKey},
		{"old value, new key only", onlyNew, sealedOld, "id", false, controlplane.ErrWrongKey},
		{"another key", wrong, sealedNew, "id", false, controlplane.ErrWrongKey},
		{"another id", both, sealedNew, "other", false, controlplane.ErrWrongKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, first, err := c.s.OpenWhich(c.id, c.sealed)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if err != nil {
				if got != nil {
					t.Fatalf("a failed open returned %q", got)
				}
				return
			}
			if string(got) != "secret" || first != c.wantFirst {
				t.Fatalf("got %q first=%v, want secret first=%v", got, first, c.wantFirst)
			}
		})
	}
	t.Run("SetKeys swaps the sealing key", func(t *testing.T) {
		s, _ := controlplane.NewSealer(oldKey)
		if err := s.SetKeys(newKey); err != nil {
			t.Fatal(err)
		}
		v, _ := s.Seal("id", []byte("x"))
		if _, err := onlyNew.Open("id", v); err != nil {
			t.Fatalf("sealed after SetKeys does not open with the new key: %v", err)
		}
		if err := s.SetKeys(make([]byte, 5)); err == nil {
			t.Fatal("a 5-byte key was accepted")
		}
	})
}
