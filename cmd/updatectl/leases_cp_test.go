package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store/bolt"
)

// liveCP is a control plane daemon serving on loopback, with one tenant
// holding a two-seat entitlement.
type liveCP struct {
	url, keys     string
	admin         *httpapi.Client
	app           *controlplane.App
	tenant, token string
	ent           string
}

func startCP(t *testing.T) *liveCP {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if _, err := keyring.Generate(keys); err != nil {
		t.Fatal(err)
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	app := controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(keys), Secrets: sealer})
	// TUF publishing with a 1-of-1 online root: the tenant's metadata
	// names the vendor keys of its online leases.
	if _, err := controlplaned.TUFDir(keys).Init(1, 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := controlplaned.EnableTUF(app, keys); err != nil {
		t.Fatal(err)
	}
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	adm, err := app.CreateToken(op, controlplane.TokenInput{Role: catalog.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := controlplaned.New(app, db, controlplaned.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- cp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
	})
	l := &liveCP{url: "http://" + cp.Addr(), keys: keys, app: app}
	l.admin = &httpapi.Client{BaseURL: l.url, Token: adm.Secret}
	for {
		if _, err := l.admin.PublicKeys(context.Background()); err == nil {
			break
		}
	}
	bg := context.Background()
	tn, err := l.admin.CreateTenant(bg, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.admin.CreateProduct(bg, controlplane.ProductInput{Name: "app", Distribution: "licensed"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.admin.CreateEntitlement(bg, tn.TenantID, controlplane.EntitlementInput{ProductID: p.ProductID, Policy: json.RawMessage(`{"max_seats":10}`)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l.admin.CreateToken(bg, controlplane.TokenInput{Role: catalog.RoleTenant, TenantID: tn.TenantID})
	if err != nil {
		t.Fatal(err)
	}
	l.tenant, l.token, l.ent = tn.TenantID, tok.Secret, e.EntitlementID
	l.snapshot(t)
	return l
}

func (l *liveCP) snapshot(t *testing.T) {
	t.Helper()
	if _, err := l.admin.BuildSnapshot(context.Background(), l.tenant); err != nil {
		t.Fatal(err)
	}
}

// keyFile writes the public half of key id to a --trusted-key file.
func (l *liveCP) keyFile(t *testing.T, id string) string {
	t.Helper()
	keys, err := l.admin.PublicKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.KeyID == id {
			f := filepath.Join(t.TempDir(), "key.txt")
			os.WriteFile(f, []byte(base64.StdEncoding.EncodeToString(k.PublicKey)+"\n"), 0o644)
			return f
		}
	}
	t.Fatalf("key %s not listed", id)
	return ""
}

// lease runs `updatectl lease acquire` for subject with the state file.
func (l *liveCP) lease(t *testing.T, state, subject string) (int, string, string) {
	t.Helper()
	return run_(t, nil, "--server", l.url, "--token", l.token, "--server-kind", "controlplane", "--state-file", state,
		"lease", "acquire", "--entitlement", l.ent, "--subject-type", "user", "--subject-id", subject)
}

// rootFile writes the tenant's root.json (--tuf-root).
func (l *liveCP) rootFile(t *testing.T) string {
	t.Helper()
	root, err := l.app.TUFRoot(controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"}), l.tenant)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "root.json")
	os.WriteFile(f, root, 0o644)
	return f
}

// verifyTUF runs `updatectl lease verify` with no key pinned: the lease
// keys come from the tenant's TUF metadata, refreshed from the control
// plane into stateDir.
func (l *liveCP) verifyTUF(t *testing.T, token, root, stateDir string) (int, string) {
	t.Helper()
	code, out, errs := run_(t, nil, "--server", l.url, "--token", l.token, "--tuf-root", root, "--tenant", l.tenant,
		"--state-dir", stateDir, "lease", "verify", strings.TrimSpace(token))
	return code, out + errs
}

func (l *liveCP) verify(t *testing.T, token, keyFile string) (int, string) {
	t.Helper()
	code, out, errs := run_(t, nil, "--trusted-key", keyFile, "--tenant", l.tenant, "lease", "verify", strings.TrimSpace(token))
	return code, out + errs
}

// TestLease_HolderSecretInStateFile: updatectl keeps the holder secret in
// its 0600 state file and sends it to renew and release; someone else's
// updatectl (another state file) can neither renew nor release the lease.
func TestLease_HolderSecretInStateFile(t *testing.T) {
	l := startCP(t)
	state := filepath.Join(t.TempDir(), "state", "updatectl.json")
	if code, _, errs := l.lease(t, state, "alice"); code != 0 {
		t.Fatalf("acquire: exit %d: %s", code, errs)
	}
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(state)
	if !strings.Contains(string(b), "olh_") {
		t.Fatalf("state file holds no holder secret: %s", b)
	}
	if code, _, errs := l.lease(t, state, "alice"); code != 0 {
		t.Fatalf("renew with the state file: exit %d: %s", code, errs)
	}
	other := filepath.Join(t.TempDir(), "other.json")
	if code, _, errs := l.lease(t, other, "alice"); code != 2 || !strings.Contains(errs, "holder secret") {
		t.Fatalf("renew from another state file: exit %d %q, want 2 naming the holder secret", code, errs)
	}
	var st leaseState
	json.Unmarshal(b, &st)
	var leaseID string
	for _, h := range st.Leases {
		leaseID = h.LeaseID
	}
	release := func(stateFile string) (int, string) {
		code, _, errs := run_(t, nil, "--server", l.url, "--token", l.token, "--server-kind", "controlplane", "--state-file", stateFile,
			"lease", "release", "--lease-id", leaseID)
		return code, errs
	}
	if code, errs := release(other); code != 2 {
		t.Fatalf("release from another state file: exit %d %q, want 2", code, errs)
	}
	if code, errs := release(state); code != 0 {
		t.Fatalf("release: exit %d %q", code, errs)
	}
	b, _ = os.ReadFile(state)
	if strings.Contains(string(b), leaseID) {
		t.Fatalf("released lease still in the state file: %s", b)
	}
}

// TestLease_SigningKeyRotation rotates the vendor key under a serving
// control plane: leases stay signed by the key clients already pin until
// it is retired, then move to the new one; `updatectl lease verify` is
// the client, with the key pinned, and with none pinned, from the
// tenant's root (the TUF metadata names the lease keys: both while both
// are active, the new one alone after the retirement, so a client that
// pins nothing follows the rotation and refuses the retired key's leases).
func TestLease_SigningKeyRotation(t *testing.T) {
	l := startCP(t)
	old, err := keyring.Load(l.keys)
	if err != nil || len(old) != 1 {
		t.Fatalf("keys: %v %v", old, err)
	}
	k1 := old[0]
	// The new key sorts before the old one by id: a choice by id would
	// move every lease to it.
	var k2 *keyring.Key
	for k2 == nil {
		scratch := t.TempDir()
		k, err := keyring.Generate(scratch)
		if err != nil {
			t.Fatal(err)
		}
		if k.KeyID < k1.KeyID {
			// Made later than the first key (both were made within
			// this second).
			path := filepath.Join(scratch, k.KeyID+".key")
			var f map[string]any
			b, _ := os.ReadFile(path)
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatal(err)
			}
			f["created_at"] = k1.CreatedAt.Add(time.Hour)
			b, _ = json.Marshal(f)
			if err := os.WriteFile(filepath.Join(l.keys, k.KeyID+".key"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			k2 = k
		}
	}
	root := l.rootFile(t)
	tufState := t.TempDir()
	l.snapshot(t) // signed by both
	pin1, pin2 := l.keyFile(t, k1.KeyID), l.keyFile(t, k2.KeyID)
	state := filepath.Join(t.TempDir(), "state.json")
	var oldTok string
	for _, s := range []string{"u1", "u2", "u3", "u1"} {
		code, tok, errs := l.lease(t, state, s)
		if code != 0 {
			t.Fatalf("acquire %s: exit %d %s", s, code, errs)
		}
		if code, out := l.verify(t, tok, pin1); code != 0 {
			t.Fatalf("lease of %s after `keys generate`, verified against the old key: exit %d %s", s, code, out)
		}
		if code, out := l.verifyTUF(t, tok, root, tufState); code != 0 {
			t.Fatalf("lease of %s after `keys generate`, verified from the tenant's root: exit %d %s", s, code, out)
		}
		oldTok = tok
	}
	if err := keyring.Retire(l.keys, k1.KeyID); err != nil {
		t.Fatal(err)
	}
	l.snapshot(t)
	code, tok, errs := l.lease(t, state, "u4")
	if code != 0 {
		t.Fatalf("acquire after retiring the old key: exit %d %s", code, errs)
	}
	if code, out := l.verify(t, tok, pin2); code != 0 {
		t.Fatalf("lease after the old key's retirement, against the new key: exit %d %s", code, out)
	}
	if code, _ := l.verify(t, tok, pin1); code != 3 {
		t.Fatalf("lease after the old key's retirement verified against the retired key: exit %d, want 3", code)
	}
	if code, out := l.verifyTUF(t, tok, root, tufState); code != 0 {
		t.Fatalf("lease after the old key's retirement, from the tenant's root: exit %d %s", code, out)
	}
	if code, out := l.verifyTUF(t, oldTok, root, tufState); code != 3 || !strings.Contains(out, "trusted") {
		t.Fatalf("a lease of the retired key, from the tenant's root: exit %d %s, want 3 (untrusted key)", code, out)
	}
}
