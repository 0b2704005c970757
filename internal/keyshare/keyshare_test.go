package keyshare

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/tufkeys"
)

// memKV is a kv.Backend of one map per bucket (Get, Put only).
type memKV struct{ m map[string][]byte }

func (m *memKV) Update(_ context.Context, fn func(kv.Tx) error) error { return fn(memTx{m}) }
func (m *memKV) View(_ context.Context, fn func(kv.Tx) error) error   { return fn(memTx{m}) }

type memTx struct{ m *memKV }

func (t memTx) Bucket(name []byte) kv.Bucket { return memBucket{t.m, string(name)} }

type memBucket struct {
	m    *memKV
	name string
}

func (b memBucket) Get(k []byte) []byte { return b.m.m[b.name+"/"+string(k)] }
func (b memBucket) Put(k, v []byte) error {
	b.m.m[b.name+"/"+string(k)] = bytes.Clone(v)
	return nil
}
func (b memBucket) Delete(k []byte) error                 { delete(b.m.m, b.name+"/"+string(k)); return nil }
func (b memBucket) ForEach(func(k, v []byte) error) error { panic("unused") }
func (b memBucket) Cursor() kv.Cursor                     { panic("unused") }

// testKEKs keeps the bytes of the KEKs newKEK made.
var testKEKs = map[*controlplane.Sealer][]byte{}

func newKEK(t *testing.T) *controlplane.Sealer {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	s, err := controlplane.NewSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	testKEKs[s] = k
	return s
}

// instance makes a data dir with a signing key, TUF keys and a data key.
func instance(t *testing.T) (keysDir, dataKey string) {
	t.Helper()
	dir := t.TempDir()
	keysDir, dataKey = filepath.Join(dir, "keys"), filepath.Join(dir, "data-encryption.key")
	if _, err := keyring.Generate(keysDir); err != nil {
		t.Fatal(err)
	}
	if _, err := tufkeys.Dir(filepath.Join(keysDir, "tuf")).Init(1, 1, ""); err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 32)
	rand.Read(k)
	if err := os.WriteFile(dataKey, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return keysDir, dataKey
}

func TestShare_PushPullMakesTheSameKeys(t *testing.T) {
	ctx := context.Background()
	db := &memKV{m: map[string][]byte{}}
	kek := newKEK(t)
	aKeys, aData := instance(t)
	bDir := t.TempDir()
	bKeys, bData := filepath.Join(bDir, "keys"), filepath.Join(bDir, "data-encryption.key")

	t.Run("no share yet", func(t *testing.T) {
		if _, err := Pull(ctx, db, kek, bKeys, bData); !errors.Is(err, ErrNone) {
			t.Fatalf("got %v, want ErrNone", err)
		}
	})
	pushed, err := Push(ctx, db, kek, aKeys, aData)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("join takes every key", func(t *testing.T) {
		changed, err := Pull(ctx, db, kek, bKeys, bData)
		if err != nil || !changed {
			t.Fatalf("pull: changed %v, err %v", changed, err)
		}
		got, err := Pack(bKeys, bData)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest() != pushed.Digest() {
			t.Errorf("B's keys differ from A's")
		}
		ka, _ := keyring.Load(aKeys)
		kb, err := keyring.Load(bKeys)
		if err != nil || len(kb) != 1 || kb[0].KeyID != ka[0].KeyID {
			t.Errorf("B's signing keys %v (%v), want A's %s", kb, err, ka[0].KeyID)
		}
		if _, err := tufkeys.Dir(filepath.Join(bKeys, "tuf")).Signers(tufkeys.Timestamp); err != nil {
			t.Errorf("B's TUF timestamp key: %v", err)
		}
		info, err := os.Stat(bData)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("data key mode %v (%v), want 0600", info.Mode(), err)
		}
	})
	t.Run("a second pull changes nothing", func(t *testing.T) {
		changed, err := Pull(ctx, db, kek, bKeys, bData)
		if err != nil || changed {
			t.Fatalf("pull: changed %v, err %v", changed, err)
		}
	})
	t.Run("a rotation and a retirement travel, stale files go", func(t *testing.T) {
		old, _ := keyring.Load(aKeys)
		k, err := keyring.Generate(aKeys)
		if err != nil {
			t.Fatal(err)
		}
		if err := keyring.Retire(aKeys, old[0].KeyID); err != nil {
			t.Fatal(err)
		}
		stale := filepath.Join(bKeys, "tuf", "root", "stale.key")
		if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Push(ctx, db, kek, aKeys, aData); err != nil {
			t.Fatal(err)
		}
		if changed, err := Pull(ctx, db, kek, bKeys, bData); err != nil || !changed {
			t.Fatalf("pull: changed %v, err %v", changed, err)
		}
		kb, err := keyring.Load(bKeys)
		if err != nil {
			t.Fatal(err)
		}
		active := keyring.Active(kb)
		if len(active) != 1 || active[0].KeyID != k.KeyID {
			t.Errorf("B's active keys %v, want only %s", active, k.KeyID)
		}
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Errorf("stale key file: %v, want removed", err)
		}
	})
	t.Run("another KEK cannot open it", func(t *testing.T) {
		_, err := Pull(ctx, db, newKEK(t), bKeys, bData)
		if err == nil || !strings.Contains(err.Error(), "same file on every instance") {
			t.Fatalf("got %v, want a KEK mismatch", err)
		}
	})
	t.Run("the database holds no plaintext", func(t *testing.T) {
		raw := db.m["keyshare/v1"]
		dk, _ := os.ReadFile(aData)
		if len(raw) == 0 || bytes.Contains(raw, dk) || bytes.Contains(raw, []byte("private_key")) {
			t.Errorf("stored value reveals key material")
		}
	})
}

func TestShare_HostileDocumentRefused(t *testing.T) {
	kek := newKEK(t)
	dk := make([]byte, 32)
	for _, tc := range []struct {
		name string
		s    Share
		want string
	}{
		{"escape", Share{Format: Format, DataKey: dk, Files: []File{{Path: "../evil.key"}}}, "not a clean relative path"},
		{"absolute", Share{Format: Format, DataKey: dk, Files: []File{{Path: "/etc/evil.key"}}}, "not a clean relative path"},
		{"not a key file", Share{Format: Format, DataKey: dk, Files: []File{{Path: "run.sh"}}}, "not a clean relative path"},
		{"twice", Share{Format: Format, DataKey: dk, Files: []File{{Path: "a.key"}, {Path: "a.key"}}}, "twice"},
		{"short data key", Share{Format: Format, DataKey: dk[:5]}, "data-encryption key of 5 bytes"},
		{"other format", Share{Format: "v0", DataKey: dk}, "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := tc.s.Seal(kek)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(kek, sealed)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadKEK_Formats(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		mode os.FileMode
		want string // "" succeeds
	}{
		{"raw", key, 0o600, ""},
		{"hex", []byte(hex.EncodeToString(key) + "\n"), 0o600, ""},
		{"too short", []byte("abcd"), 0o600, "want 32 bytes"},
		{"readable by others", key, 0o644, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, tc.data, tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tc.mode)
			_, err := ReadKEK(p)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := ReadKEK(filepath.Join(dir, "nope"))
		if err == nil || !strings.Contains(err.Error(), "openssl rand -hex 32") {
			t.Fatalf("got %v, want how to make one", err)
		}
	})
}

func TestSwap_RefusesAChangeMadeMeanwhile(t *testing.T) {
	ctx := context.Background()
	db := &memKV{m: map[string][]byte{}}
	kek := newKEK(t)
	aKeys, aData := instance(t)
	bKeys, bData := instance(t)
	a, _ := Pack(aKeys, aData)
	b, _ := Pack(bKeys, bData)
	t.Run("the first store expects none", func(t *testing.T) {
		if err := Swap(ctx, db, kek, "", a); err != nil {
			t.Fatal(err)
		}
		if err := Swap(ctx, db, kek, "", b); !errors.Is(err, ErrChanged) {
			t.Fatalf("a second first store: %v, want ErrChanged", err)
		}
	})
	t.Run("a store based on the held document goes through", func(t *testing.T) {
		if err := Swap(ctx, db, kek, a.Digest(), b); err != nil {
			t.Fatal(err)
		}
		if err := Swap(ctx, db, kek, a.Digest(), a); !errors.Is(err, ErrChanged) {
			t.Fatalf("a store based on a stale document: %v, want ErrChanged", err)
		}
		got, err := Get(ctx, db, kek)
		if err != nil || got.Digest() != b.Digest() {
			t.Fatalf("held %v (%v), want B's keys", got, err)
		}
	})
}

func TestPull_WaitsForAKeyCommand(t *testing.T) {
	ctx := context.Background()
	db := &memKV{m: map[string][]byte{}}
	kek := newKEK(t)
	aKeys, aData := instance(t)
	if _, err := Push(ctx, db, kek, aKeys, aData); err != nil {
		t.Fatal(err)
	}
	unlock, err := Lock(aKeys, true)
	if err != nil {
		t.Fatal(err)
	}
	// A key command made a key and has not pushed it yet.
	k, err := keyring.Generate(aKeys)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a pull meanwhile leaves the directory alone", func(t *testing.T) {
		if _, err := Pull(ctx, db, kek, aKeys, aData); !errors.Is(err, ErrBusy) {
			t.Fatalf("pull: %v, want ErrBusy", err)
		}
		if _, err := os.Stat(filepath.Join(aKeys, k.KeyID+".key")); err != nil {
			t.Fatalf("the new key: %v", err)
		}
	})
	unlock()
	t.Run("after the command, a pull goes through", func(t *testing.T) {
		if changed, err := Pull(ctx, db, kek, aKeys, aData); err != nil || !changed {
			t.Fatalf("pull: changed %v, err %v", changed, err)
		}
	})
}
