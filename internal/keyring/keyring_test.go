package keyring_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/snapshot"
)

func TestGenerate_WritesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := keyring.Generate(dir)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if got, want := k.KeyID, snapshot.KeyID(k.Public); got != want {
		t.Errorf("KeyID = %s, want %s", got, want)
	}
	if k.Status != keyring.StatusActive || k.CreatedAt.IsZero() {
		t.Errorf("got status %q created_at %v, want active with a time", k.Status, k.CreatedAt)
	}
	tests := []struct {
		name string
		path string
		want os.FileMode
	}{
		{"directory", dir, 0o700},
		{"key file", filepath.Join(dir, k.KeyID+".key"), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Mode().Perm(); got != tt.want {
				t.Errorf("mode = %04o, want %04o", got, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("got %d files in the key directory, want 1 (no temp files left)", len(entries))
	}
	var doc map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, k.KeyID+".key"))
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("key file is not JSON: %v", err)
	}
	for _, f := range []string{"key_id", "status", "created_at", "private_key"} {
		if _, ok := doc[f]; !ok {
			t.Errorf("key file lacks %q", f)
		}
	}
}

func TestGenerate_TightensLooseDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Generate(dir); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(dir)
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode = %04o, want 0700", got)
	}
}

func TestLoad_RoundTripAndSigning(t *testing.T) {
	dir := t.TempDir()
	k1, err := keyring.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keyring.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(keys))
	}
	byID := map[string]*keyring.Key{}
	for _, k := range keys {
		byID[k.KeyID] = k
	}
	for _, want := range []*keyring.Key{k1, k2} {
		got := byID[want.KeyID]
		if got == nil || !bytes.Equal(got.Public, want.Public) || got.Status != want.Status || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("loaded key %s = %+v, want %+v", want.KeyID, got, want)
		}
	}
	// Both active keys sign (rotation by overlap), each verifiable with
	// its public key.
	signers := keyring.Signers(keys)
	if len(signers) != 2 {
		t.Fatalf("got %d signers, want 2", len(signers))
	}
	pae := snapshot.PAE("application/vnd.outpost.test+json", []byte(`{}`))
	for _, s := range signers {
		k := byID[s.KeyID]
		if k == nil || !ed25519.Verify(k.Public, pae, ed25519.Sign(s.Key, pae)) {
			t.Errorf("signer %s does not verify with its loaded public key", s.KeyID)
		}
	}
}

func TestLoad_MissingDirectoryIsEmpty(t *testing.T) {
	keys, err := keyring.Load(filepath.Join(t.TempDir(), "nope"))
	if err != nil || len(keys) != 0 {
		t.Errorf("Load = %v, %v; want no keys and no error", keys, err)
	}
}

func TestLoad_RefusesExposedOrMalformedFiles(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, path string, doc map[string]any) (newPath string, data []byte, mode os.FileMode)
		want   string
	}{
		{"group readable", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			return p, marshal(d), 0o640
		}, "mode 0640"},
		{"world readable", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			return p, marshal(d), 0o604
		}, "mode 0604"},
		{"not json", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			return p, []byte("-----BEGIN PRIVATE KEY-----"), 0o600
		}, "malformed"},
		{"unknown field", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			d["extra"] = 1
			return p, marshal(d), 0o600
		}, "malformed"},
		{"short private key", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			d["private_key"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
			return p, marshal(d), 0o600
		}, "private_key"},
		{"inconsistent private key", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			raw, _ := base64.StdEncoding.DecodeString(d["private_key"].(string))
			raw[40] ^= 1 // public half
			d["private_key"] = base64.StdEncoding.EncodeToString(raw)
			return p, marshal(d), 0o600
		}, "inconsistent"},
		{"wrong key_id", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			d["key_id"] = strings.Repeat("0", 64)
			return p, marshal(d), 0o600
		}, "key_id"},
		{"bad status", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			d["status"] = "revoked"
			return p, marshal(d), 0o600
		}, "status"},
		{"renamed file", func(t *testing.T, p string, d map[string]any) (string, []byte, os.FileMode) {
			return filepath.Join(filepath.Dir(p), "other.key"), marshal(d), 0o600
		}, "file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k, err := keyring.Generate(dir)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, k.KeyID+".key")
			var doc map[string]any
			b, _ := os.ReadFile(path)
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			newPath, data, mode := tt.mutate(t, path, doc)
			if newPath != path {
				os.Remove(path)
			}
			if err := os.WriteFile(newPath, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(newPath, mode); err != nil {
				t.Fatal(err)
			}
			_, err = keyring.Load(dir)
			if err == nil {
				t.Fatal("Load: got no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestRetire_StopsSigning(t *testing.T) {
	dir := t.TempDir()
	old, err := keyring.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("last active key refused", func(t *testing.T) {
		err := keyring.Retire(dir, old.KeyID)
		if got := catalog.ErrorCode(err); got != catalog.ECONFLICT {
			t.Errorf("Retire last key: code %q (%v), want conflict", got, err)
		}
	})
	time.Sleep(10 * time.Millisecond)
	nw, err := keyring.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Retire(dir, old.KeyID); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	keys, err := keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, k := range keys {
		status[k.KeyID] = k.Status
	}
	if status[old.KeyID] != keyring.StatusRetired || status[nw.KeyID] != keyring.StatusActive {
		t.Errorf("statuses = %v, want old retired and new active", status)
	}
	signers := keyring.Signers(keys)
	if len(signers) != 1 || signers[0].KeyID != nw.KeyID {
		t.Errorf("signers = %v, want only the new key", signers)
	}
	t.Run("retired file keeps mode 0600", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(dir, old.KeyID+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("mode = %04o, want 0600", got)
		}
	})
	t.Run("retiring again is a no-op", func(t *testing.T) {
		if err := keyring.Retire(dir, old.KeyID); err != nil {
			t.Errorf("Retire: %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		err := keyring.Retire(dir, strings.Repeat("a", 64))
		if got := catalog.ErrorCode(err); got != catalog.ENOTFOUND {
			t.Errorf("code %q (%v), want not_found", got, err)
		}
	})
}
