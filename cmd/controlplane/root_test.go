package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestControlplane_RootCeremony runs the offline-root ceremony with the
// binary: 2-of-3 root keys written to a directory moved "offline", the
// next roots exported, one signature refused at import, two accepted,
// and a rotation that asks for a ceremony.
func TestControlplane_RootCeremony(t *testing.T) {
	c := newCP(t)
	offline := filepath.Join(t.TempDir(), "offline")
	var initOut struct {
		RootKeyFiles []string `json:"root_key_files"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("root", "init", "--threshold", "2", "--keys", "3", "--out", offline, "-o", "json")), &initOut); err != nil {
		t.Fatal(err)
	}
	if len(initOut.RootKeyFiles) != 3 {
		t.Fatalf("root key files %v, want 3", initOut.RootKeyFiles)
	}
	c.mustRun("init")
	tenant := c.mustRun("tenant", "create", "acme")
	c.mustRun("snapshot", "build", "--tenant", tenant)
	if _, errs, err := c.run("root", "show", tenant); err == nil || !strings.Contains(errs, "no root yet") {
		t.Fatalf("root show before a ceremony: %v %s", err, errs)
	}

	work := t.TempDir()
	unsigned := filepath.Join(work, "unsigned.json")
	c.mustRun("root", "export", "--out", unsigned)
	// root sign needs no data dir: run it from an empty one.
	signer := &cp{t: t, bin: c.bin, dataDir: filepath.Join(t.TempDir(), "elsewhere")}
	one := filepath.Join(work, "one.json")
	signer.mustRun("root", "sign", "--key", initOut.RootKeyFiles[0], "--out", one, unsigned)
	t.Run("one signature is refused", func(t *testing.T) {
		if _, errs, err := c.run("root", "import", one); err == nil || !strings.Contains(errs, "threshold") {
			t.Fatalf("import with 1 of 2: %v %s", err, errs)
		}
	})
	t.Run("two signatures are accepted", func(t *testing.T) {
		signer.mustRun("root", "sign", "--key", initOut.RootKeyFiles[1], one)
		if got := c.mustRun("root", "import", one); !strings.Contains(got, "published 1") {
			t.Fatalf("import: %q", got)
		}
		root := c.mustRun("root", "show", tenant)
		if !strings.Contains(root, `"_type":"root"`) || !strings.Contains(root, tenant) {
			t.Fatalf("root show: %.200s", root)
		}
	})
	t.Run("rotation with the root offline prints the ceremony", func(t *testing.T) {
		_, errs, err := c.run("root", "rotate", "--replace", "timestamp")
		if err == nil || !strings.Contains(errs, "root export") || !strings.Contains(errs, "root import") {
			t.Fatalf("rotate: %v %s", err, errs)
		}
	})
	t.Run("a hostile ceremony file is refused", func(t *testing.T) {
		bad := filepath.Join(work, "bad.json")
		if err := os.WriteFile(bad, []byte(`{"roots":{"`+tenant+`":{"signed":1}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, errs, err := c.run("root", "import", bad); err == nil || errs == "" {
			t.Fatalf("import of a malformed root: %v %s", err, errs)
		}
	})
}

// TestControlplane_RootRekey takes the quickstart's online root offline
// with the binary: rekey, export, two new keys sign, import; the old
// online root key is deleted.
func TestControlplane_RootRekey(t *testing.T) {
	c := newCP(t)
	c.mustRun("init")
	tenant := c.mustRun("tenant", "create", "acme")
	c.mustRun("snapshot", "build", "--tenant", tenant)
	if root := c.mustRun("root", "show", tenant); !strings.Contains(root, `"version":1`) {
		t.Fatalf("quickstart root: %.200s", root)
	}
	offline := filepath.Join(t.TempDir(), "offline")
	var rekey struct {
		RootKeyFiles []string `json:"root_key_files"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("root", "rekey", "--threshold", "2", "--keys", "3", "--out", offline, "-o", "json")), &rekey); err != nil {
		t.Fatal(err)
	}
	ceremony := filepath.Join(t.TempDir(), "ceremony.json")
	c.mustRun("root", "export", "--out", ceremony)
	c.mustRun("root", "sign", "--key", rekey.RootKeyFiles[0], ceremony)
	c.mustRun("root", "sign", "--key", rekey.RootKeyFiles[2], ceremony)
	c.mustRun("root", "import", ceremony)
	if root := c.mustRun("root", "show", tenant); !strings.Contains(root, `"version":2`) {
		t.Fatalf("root after the rekey: %.200s", root)
	}
	left, err := os.ReadDir(filepath.Join(c.dataDir, "keys", "tuf", "root"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("online root keys left after the rekey: %d", len(left))
	}
}

// TestControlplane_RootShowRemote: while the daemon serves (bbolt is
// locked), `root show` goes through the API and prints the tenant's
// newest root, the same bytes the data dir holds; a tenant without a
// root yet is refused, saying so.
func TestControlplane_RootShowRemote(t *testing.T) {
	c := newCP(t)
	admin := c.mustRun("init")
	tenant := c.mustRun("tenant", "create", "acme")
	c.mustRun("snapshot", "build", "--tenant", tenant)
	c.mustRun("root", "rotate") // root v2
	local := c.mustRun("root", "show", tenant)
	if !strings.Contains(local, `"version":2`) {
		t.Fatalf("local root show: %.200s, want version 2", local)
	}
	c.start()
	c.env = append(c.env, "OUTPOST_SERVER="+c.url(), "OUTPOST_TOKEN="+admin)
	fresh := c.mustRun("tenant", "create", "fresh") // never built: no root
	if got := c.mustRun("root", "show", tenant); got != local {
		t.Errorf("through the API: %.200s\nwant the newest root, as the data dir holds it: %.200s", got, local)
	}
	if _, errs, err := c.run("root", "show", fresh); err == nil || !strings.Contains(errs, "no root yet") {
		t.Errorf("a tenant with no root: %v %q, want a refusal saying no root yet", err, errs)
	}
}
