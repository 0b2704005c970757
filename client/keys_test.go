package client

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKey_Forms(t *testing.T) {
	pub, _ := newKey(t)
	id := KeyID(pub)
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hex", hex.EncodeToString(pub), true},
		{"base64", base64.StdEncoding.EncodeToString(pub), true},
		{"raw base64url", base64.RawURLEncoding.EncodeToString(pub), true},
		{"keyid=base64", id + "=" + base64.StdEncoding.EncodeToString(pub), true},
		{"keyid=hex", id + "=" + hex.EncodeToString(pub), true},
		{"wrong keyid", KeyID(make([]byte, 32)) + "=" + hex.EncodeToString(pub), false},
		{"short", base64.StdEncoding.EncodeToString(pub[:31]), false},
		{"garbage", "not a key!", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotID, got, err := ParseKey(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err got %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (gotID != id || !got.Equal(pub)) {
				t.Errorf("got %s, want %s", gotID, id)
			}
		})
	}
}

func TestParseKeys_Files(t *testing.T) {
	a, _ := newKey(t)
	b, _ := newKey(t)
	c, _ := newKey(t)
	dir := t.TempDir()
	lines := filepath.Join(dir, "keys.txt")
	os.WriteFile(lines, []byte("# vendor keys\n"+hex.EncodeToString(a)+"\n\n"+base64.StdEncoding.EncodeToString(b)+"\n"), 0o644)
	api := filepath.Join(dir, "keys.json")
	os.WriteFile(api, []byte(fmt.Sprintf(`{"items":[{"key_id":%q,"public_key":%q,"status":"active"},{"key_id":%q,"public_key":%q,"status":"revoked"}]}`,
		KeyID(c), base64.StdEncoding.EncodeToString(c), KeyID(a), base64.StdEncoding.EncodeToString(a))), 0o644)
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("nope\n"), 0o644)

	t.Run("lines", func(t *testing.T) {
		keys, err := ParseKeys([]string{lines})
		if err != nil || len(keys) != 2 || keys[KeyID(a)] == nil || keys[KeyID(b)] == nil {
			t.Errorf("got %d keys, %v; want a and b", len(keys), err)
		}
	})
	t.Run("keys api json skips revoked", func(t *testing.T) {
		keys, err := ParseKeys([]string{api})
		if err != nil || len(keys) != 1 || keys[KeyID(c)] == nil {
			t.Errorf("got %d keys, %v; want only c", len(keys), err)
		}
	})
	t.Run("bad line named", func(t *testing.T) {
		_, err := ParseKeys([]string{bad})
		if err == nil || !strings.Contains(err.Error(), "bad.txt:1") {
			t.Errorf("got %v, want an error naming bad.txt:1", err)
		}
	})
	t.Run("missing file named, not called a bad key", func(t *testing.T) {
		missing := filepath.Join(dir, "vendor.keys")
		_, err := ParseKeys([]string{missing})
		if err == nil || !strings.Contains(err.Error(), missing+" does not exist") || strings.Contains(err.Error(), "neither hex nor base64") {
			t.Errorf("got %v, want an error saying %s does not exist", err, missing)
		}
	})
	t.Run("a garbled key is still a key error", func(t *testing.T) {
		_, err := ParseKeys([]string{"not-a-key"})
		if err == nil || !strings.Contains(err.Error(), "neither hex nor base64") {
			t.Errorf("got %v, want the key encoding error", err)
		}
	})
}
