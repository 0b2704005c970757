package keyshare

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store/kv"
)

func TestRekeyTx_OnlyTheNewKEKOpensAfterwards(t *testing.T) {
	ctx := context.Background()
	db := &memKV{m: map[string][]byte{}}
	oldKEK, newKEK := newKEK(t), newKEK(t)
	keysDir, dataKey := instance(t)
	pushed, err := Push(ctx, db, oldKEK, keysDir, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("no document", func(t *testing.T) {
		empty := &memKV{m: map[string][]byte{}}
		err := empty.Update(ctx, func(tx kv.Tx) error { _, err := RekeyTx(tx, oldKEK, newKEK); return err })
		if !errors.Is(err, ErrNone) {
			t.Fatalf("err = %v, want ErrNone", err)
		}
	})
	t.Run("a wrong KEK cannot rekey", func(t *testing.T) {
		err := db.Update(ctx, func(tx kv.Tx) error { _, err := RekeyTx(tx, newKEK, newKEK); return err })
		if !errors.Is(err, controlplane.ErrWrongKey) {
			t.Fatalf("err = %v, want ErrWrongKey", err)
		}
	})
	if err := db.Update(ctx, func(tx kv.Tx) error { _, err := RekeyTx(tx, oldKEK, newKEK); return err }); err != nil {
		t.Fatal(err)
	}
	both, _ := controlplane.NewSealer(keyOf(t, newKEK), keyOf(t, oldKEK))
	for _, c := range []struct {
		name    string
		kek     *controlplane.Sealer
		wantErr error
	}{
		{"the new KEK", newKEK, nil},
		{"the new KEK with the previous one", both, nil},
		{"the old KEK", oldKEK, controlplane.ErrWrongKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Get(ctx, db, c.kek)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "keys rekey") || got != nil {
					t.Fatalf("err %q does not name the rotation, or a document came back", err)
				}
				return
			}
			if got.Digest() != pushed.Digest() {
				t.Fatal("the rekeyed document differs from the pushed one")
			}
		})
	}
}

// keyOf recovers a test KEK's bytes by sealing with it (the Sealer does
// not export its key): the tests keep the bytes instead.
func keyOf(t *testing.T, s *controlplane.Sealer) []byte {
	t.Helper()
	k, ok := testKEKs[s]
	if !ok {
		t.Fatal("not a test KEK")
	}
	return k
}

func TestShare_PreviousDataKeyTravels(t *testing.T) {
	ctx := context.Background()
	db := &memKV{m: map[string][]byte{}}
	kek := newKEK(t)
	keysDir, dataKey := instance(t)
	prev := make([]byte, 32)
	rand.Read(prev)
	if err := os.WriteFile(PreviousDataKeyFile(dataKey), prev, 0o600); err != nil {
		t.Fatal(err)
	}
	pushed, err := Push(ctx, db, kek, keysDir, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pushed.DataKeyPrevious, prev) {
		t.Fatal("Pack left out the previous data key")
	}
	other := t.TempDir()
	oKeys, oData := filepath.Join(other, "keys"), filepath.Join(other, "data-encryption.key")
	if _, err := Pull(ctx, db, kek, oKeys, oData); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(PreviousDataKeyFile(oData)); !bytes.Equal(got, prev) {
		t.Fatalf("the other instance's previous key = %x, want %x", got, prev)
	}
	t.Run("a document without one removes it", func(t *testing.T) {
		if err := os.Remove(PreviousDataKeyFile(dataKey)); err != nil {
			t.Fatal(err)
		}
		s, err := Push(ctx, db, kek, keysDir, dataKey)
		if err != nil {
			t.Fatal(err)
		}
		if s.Digest() == pushed.Digest() {
			t.Fatal("the digest ignores the previous data key")
		}
		changed, err := Pull(ctx, db, kek, oKeys, oData)
		if err != nil || !changed {
			t.Fatalf("pull: changed %v, err %v", changed, err)
		}
		if _, err := os.Stat(PreviousDataKeyFile(oData)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the previous key file is still there: %v", err)
		}
	})
	t.Run("a previous key of the wrong size is refused", func(t *testing.T) {
		s := *pushed
		s.DataKeyPrevious = []byte("short")
		if err := s.check(); err == nil {
			t.Fatal("a 5-byte previous data key was accepted")
		}
	})
}

func TestReadKEK_Previous(t *testing.T) {
	dir := t.TempDir()
	write := func(name, hexByte string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat(hexByte, 32)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldFile, newFile := write("old", "ab"), write("new", "cd")
	old, err := ReadKEK(oldFile)
	if err != nil {
		t.Fatal(err)
	}
	sealedOld, _ := old.Seal(Format, []byte("doc"))
	both, err := ReadKEK(newFile, oldFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := both.Open(Format, sealedOld); err != nil {
		t.Fatalf("new+previous does not open what the old key sealed: %v", err)
	}
	sealedNew, _ := both.Seal(Format, []byte("doc"))
	if _, err := old.Open(Format, sealedNew); !errors.Is(err, controlplane.ErrWrongKey) {
		t.Fatalf("new+previous sealed with the previous key: err %v", err)
	}
	t.Run("a loose previous file is refused", func(t *testing.T) {
		loose := write("loose", "ef")
		os.Chmod(loose, 0o644)
		if _, err := ReadKEK(newFile, loose); err == nil || !strings.Contains(err.Error(), "previous_key_encryption_key_file") {
			t.Fatalf("err = %v, want a refusal naming previous_key_encryption_key_file", err)
		}
	})
}
