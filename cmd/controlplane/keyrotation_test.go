package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/postgres"
)

func writeKEK(t *testing.T, hexByte string) (string, []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "kek")
	text := strings.Repeat(hexByte, 32)
	if err := os.WriteFile(f, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(text)
	return f, raw
}

// TestControlplane_PostgresKeyRotation rotates the key-encryption key
// and the data-encryption key of two instances on one database, through
// the binary.
func TestControlplane_PostgresKeyRotation(t *testing.T) {
	pgURL := postgresURL(t)
	oldKEK, oldKEKRaw := writeKEK(t, "ab")
	newKEK, newKEKRaw := writeKEK(t, "cd")
	env := []string{"OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL=" + pgURL}
	withKEK := func(kek string, previous string) []string {
		e := append(append([]string(nil), env...), "OUTPOST_KEY_ENCRYPTION_KEY_FILE="+kek)
		if previous != "" {
			e = append(e, "OUTPOST_PREVIOUS_KEY_ENCRYPTION_KEY_FILE="+previous)
		}
		return e
	}
	a, b := newCP(t), newCP(t)
	a.env, b.env = withKEK(oldKEK, ""), withKEK(oldKEK, "")
	a.mustRun("init")
	b.mustRun("init", "--join")
	oldDEK, _ := os.ReadFile(filepath.Join(a.dataDir, "data-encryption.key"))

	t.Run("rekey needs the new file", func(t *testing.T) {
		_, errs, err := a.run("keys", "rekey")
		if err == nil || !strings.Contains(errs, "--new-kek-file is required") {
			t.Fatalf("err %v, stderr %q", err, errs)
		}
	})
	t.Run("rollout: an instance given the new and the previous key works before the rekey", func(t *testing.T) {
		b.env = withKEK(newKEK, oldKEK)
		b.mustRun("keys", "list")
	})
	out := a.mustRun("keys", "rekey", "--new-kek-file", newKEK, "-o", "json")
	if !strings.Contains(out, `"kek_id"`) {
		t.Fatalf("rekey printed %q", out)
	}
	t.Run("the old key alone gets a clear error", func(t *testing.T) {
		a.env = withKEK(oldKEK, "")
		_, errs, err := a.run("keys", "list")
		if err == nil || !strings.Contains(errs, "does not decrypt with this key") || !strings.Contains(errs, "keys rekey") {
			t.Fatalf("err %v, stderr %q", err, errs)
		}
	})
	t.Run("the new key, with or without the previous one, works", func(t *testing.T) {
		a.env = withKEK(newKEK, "")
		a.mustRun("keys", "list")
		b.mustRun("keys", "list") // new + previous
		b.env = withKEK(newKEK, "")
		b.mustRun("keys", "list")
	})
	t.Run("a join after the rekey takes the new key", func(t *testing.T) {
		c := newCP(t)
		c.env = withKEK(newKEK, "")
		c.mustRun("init", "--join")
	})

	out = a.mustRun("keys", "rotate-data-key", "-o", "json")
	if !strings.Contains(out, `"shared": true`) && !strings.Contains(out, `"shared":true`) {
		t.Fatalf("rotate-data-key printed %q", out)
	}
	newDEK, _ := os.ReadFile(filepath.Join(a.dataDir, "data-encryption.key"))
	t.Run("the new data key reaches the other instance, the replaced one kept as previous", func(t *testing.T) {
		if bytes.Equal(newDEK, oldDEK) || len(newDEK) != 32 {
			t.Fatalf("the data-encryption key did not change")
		}
		b.mustRun("keys", "list") // pulls before the command
		gotB, _ := os.ReadFile(filepath.Join(b.dataDir, "data-encryption.key"))
		prevB, _ := os.ReadFile(filepath.Join(b.dataDir, "data-encryption.key.previous"))
		if !bytes.Equal(gotB, newDEK) || !bytes.Equal(prevB, oldDEK) {
			t.Fatalf("B holds key %x previous %x, want %x and %x", gotB, prevB, newDEK, oldDEK)
		}
		if _, err := os.Stat(filepath.Join(a.dataDir, "data-encryption.key.next")); !os.IsNotExist(err) {
			t.Fatalf("the rotation left data-encryption.key.next: %v", err)
		}
	})
	t.Run("audit events for sharing, joining and both rotations, without key material", func(t *testing.T) {
		db, err := postgres.Open(context.Background(), pgURL, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, c := range []struct {
			typ  string
			want int
		}{{"keys.shared", 1}, {"keys.joined", 2}, {"keys.kek_rotated", 1}, {"keys.data_key_rotated", 1}} {
			evs, _, err := db.AuditEvents(context.Background(), store.AuditFilter{EventType: c.typ}, store.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) < c.want {
				t.Errorf("%d %s events, want at least %d", len(evs), c.typ, c.want)
			}
			for _, ev := range evs {
				for _, k := range [][]byte{oldKEKRaw, newKEKRaw, oldDEK, newDEK} {
					for _, enc := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawStdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
						if strings.Contains(string(ev.Payload), enc) {
							t.Errorf("%s payload %s holds a key", c.typ, ev.Payload)
						}
					}
				}
			}
		}
	})
}
