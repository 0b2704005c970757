// Package tufkeys keeps the vendor's TUF keys as files: one keyring
// directory per online role (timestamp, snapshot, targets, product) and
// the root's public keys and threshold (root.json). Root private keys
// are kept here only for a quickstart (1 of 1, "root" directory); for
// an offline root they are written elsewhere and moved off the machine,
// and each root is signed in a ceremony (controlplane root export/sign/
// import).
package tufkeys

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/tuf"
)

// Online roles, each a keyring directory under Dir.
const (
	Timestamp = "timestamp"
	Snapshot  = "snapshot"
	Targets   = "targets"
	Product   = "product"
	rootDir   = "root" // online root keys (quickstart only)
	rootSpec  = "root.json"
)

// Roles are the online roles, in the order keys are made.
var Roles = []string{Targets, Snapshot, Timestamp, Product}

// Dir is the TUF key directory (default <keys_dir>/tuf).
type Dir string

// RootSpec is the public side of the vendor's root keys.
type RootSpec struct {
	Threshold int                 `json:"threshold"`
	Keys      []ed25519.PublicKey `json:"keys"` // base64 in JSON
}

// Exists reports whether the directory holds a root spec.
func (d Dir) Exists() bool {
	_, err := os.Stat(filepath.Join(string(d), rootSpec))
	return err == nil
}

// Init creates the root keys (n of them, threshold t) and one key per
// online role. With offline == "" the root keys stay in the directory
// (a quickstart); otherwise they are written to offline (created 0700)
// for the operator to move off the machine, and only their public halves
// stay. It refuses a directory that already holds a root.
func (d Dir) Init(t, n int, offline string) ([]string, error) {
	if d.Exists() {
		return nil, fmt.Errorf("tuf keys: %s already holds a root (rotate it instead)", d)
	}
	spec, files, err := d.newRootKeys(t, n, offline)
	if err != nil {
		return nil, err
	}
	for _, r := range Roles {
		if _, err := keyring.Generate(filepath.Join(string(d), r)); err != nil {
			return nil, fmt.Errorf("tuf keys: %s key: %w", r, err)
		}
	}
	if err := d.writeSpec(spec); err != nil {
		return nil, err
	}
	return files, nil
}

// newRootKeys generates n root keys of threshold t in offline (under d
// when offline is "") and returns their spec and key files.
func (d Dir) newRootKeys(t, n int, offline string) (RootSpec, []string, error) {
	if n < 1 || t < 1 || t > n {
		return RootSpec{}, nil, fmt.Errorf("tuf keys: threshold %d of %d keys", t, n)
	}
	where := filepath.Join(string(d), rootDir)
	if offline != "" {
		where = offline
	}
	spec := RootSpec{Threshold: t}
	var files []string
	for range n {
		k, err := keyring.Generate(where)
		if err != nil {
			return RootSpec{}, nil, fmt.Errorf("tuf keys: root key: %w", err)
		}
		spec.Keys = append(spec.Keys, k.Public)
		files = append(files, filepath.Join(where, k.KeyID+".key"))
	}
	return spec, files, nil
}

// Rekey replaces the root keys with n new ones of threshold t, written
// to offline (kept online when offline is ""), and records them in the
// spec: the next root lists them. The old online root keys, if any, stay
// until DropStaleRootKeys, because the next root needs a threshold of
// the previous root's keys too; the ceremony's import adds their
// signatures. This is how a quickstart's online root goes offline.
func (d Dir) Rekey(t, n int, offline string) ([]string, error) {
	if _, err := d.Spec(); err != nil {
		return nil, err
	}
	spec, files, err := d.newRootKeys(t, n, offline)
	if err != nil {
		return nil, err
	}
	if err := d.writeSpec(spec); err != nil {
		return nil, err
	}
	return files, nil
}

// DropStaleRootKeys deletes the online root keys the spec no longer
// lists (after the root that replaced them is published). It returns how
// many it deleted.
func (d Dir) DropStaleRootKeys() (int, error) {
	spec, err := d.Spec()
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(string(d), rootDir)
	keys, err := keyring.Load(dir)
	if err != nil {
		return 0, fmt.Errorf("tuf keys: %w", err)
	}
	n := 0
	for _, k := range keys {
		listed := false
		for _, pub := range spec.Keys {
			listed = listed || pub.Equal(k.Public)
		}
		if listed {
			continue
		}
		if err := os.Remove(filepath.Join(dir, k.KeyID+".key")); err != nil {
			return n, fmt.Errorf("tuf keys: %w", err)
		}
		n++
	}
	return n, nil
}

func (d Dir) writeSpec(spec RootSpec) error {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(filepath.Join(string(d), rootSpec), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("tuf keys: write root spec: %w", err)
	}
	return nil
}

// Spec reads the root's public keys and threshold.
func (d Dir) Spec() (*RootSpec, error) {
	data, err := os.ReadFile(filepath.Join(string(d), rootSpec))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tuf keys: no root in %s: run `controlplane root init`", d)
	}
	if err != nil {
		return nil, fmt.Errorf("tuf keys: %w", err)
	}
	var spec RootSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("tuf keys: %s: %w", rootSpec, err)
	}
	if len(spec.Keys) == 0 || spec.Threshold < 1 || spec.Threshold > len(spec.Keys) {
		return nil, fmt.Errorf("tuf keys: %s: threshold %d of %d keys", rootSpec, spec.Threshold, len(spec.Keys))
	}
	for _, k := range spec.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("tuf keys: %s: a key of %d bytes", rootSpec, len(k))
		}
	}
	return &spec, nil
}

// Signers returns a signer per active key of an online role (or of the
// online root keys, role "root"; none when the root is offline).
func (d Dir) Signers(role string) ([]tuf.Signer, error) {
	keys, err := keyring.Load(filepath.Join(string(d), role))
	if err != nil {
		return nil, fmt.Errorf("tuf keys: %s: %w", role, err)
	}
	var out []tuf.Signer
	for _, k := range keyring.Active(keys) {
		s, err := Signer(k)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 && role != rootDir {
		return nil, fmt.Errorf("tuf keys: no active %s key in %s", role, d)
	}
	return out, nil
}

// AllSigners returns a signer per key of an online role, retired ones
// included: until the root that replaces a key is published, the key
// the current root lists keeps signing.
func (d Dir) AllSigners(role string) ([]tuf.Signer, error) {
	keys, err := keyring.Load(filepath.Join(string(d), role))
	if err != nil {
		return nil, fmt.Errorf("tuf keys: %s: %w", role, err)
	}
	var out []tuf.Signer
	for _, k := range keys {
		s, err := Signer(k)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// RootSigners returns the root keys held online (a quickstart), or none.
func (d Dir) RootSigners() ([]tuf.Signer, error) { return d.Signers(rootDir) }

// Signer returns a keyring key as a TUF signer.
func Signer(k *keyring.Key) (tuf.Signer, error) {
	s, err := tuf.NewEd25519Signer(ed25519.PrivateKey(k.Private()))
	if err != nil {
		return nil, fmt.Errorf("tuf keys: %w", err)
	}
	return s, nil
}

// Replace makes a new key for an online role and retires the old ones:
// the next root lists only the new key (a compromised key is replaced
// through the root).
func (d Dir) Replace(role string) error {
	dir := filepath.Join(string(d), role)
	if role == rootDir || !validRole(role) {
		return fmt.Errorf("tuf keys: cannot replace %q: one of %v", role, Roles)
	}
	old, err := keyring.Load(dir)
	if err != nil {
		return fmt.Errorf("tuf keys: %w", err)
	}
	if _, err := keyring.Generate(dir); err != nil {
		return fmt.Errorf("tuf keys: %w", err)
	}
	for _, k := range keyring.Active(old) {
		if err := keyring.Retire(dir, k.KeyID); err != nil {
			return fmt.Errorf("tuf keys: %w", err)
		}
	}
	return nil
}

func validRole(role string) bool {
	for _, r := range Roles {
		if r == role {
			return true
		}
	}
	return false
}
