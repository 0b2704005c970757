package controlplaned

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/keyshare"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/store/postgres"
)

// NextDataKeyFile holds the new data-encryption key while a rotation
// runs (RotateDataKey); it is gone once the rotation is done.
func NextDataKeyFile(dataKeyFile string) string { return dataKeyFile + ".next" }

// dataKeys reads the data-encryption key file and, when present, the
// key of a rotation under way and the key the last rotation replaced.
func dataKeys(file string) (cur, next, prev []byte, err error) {
	if cur, err = os.ReadFile(file); err != nil {
		return nil, nil, nil, fmt.Errorf("read data-encryption key: %w", err)
	}
	read := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read data-encryption key: %w", err)
		}
		return b, nil
	}
	if next, err = read(NextDataKeyFile(file)); err != nil {
		return nil, nil, nil, err
	}
	if prev, err = read(keyshare.PreviousDataKeyFile(file)); err != nil {
		return nil, nil, nil, err
	}
	return cur, next, prev, nil
}

// LoadDataKeys returns the Sealer of the data-encryption key file: it
// seals with the file's key and opens with it, with the key of a
// rotation under way (NextDataKeyFile) and with the key the last
// rotation replaced (keyshare.PreviousDataKeyFile), so that every stored
// value opens at every instant of a rotation, even one a crash cut.
func LoadDataKeys(file string) (*controlplane.Sealer, error) {
	cur, next, prev, err := dataKeys(file)
	if err != nil {
		return nil, err
	}
	return controlplane.NewSealer(cur, nonNil(next, prev)...)
}

// reloadDataKeys makes s hold the keys of the data-encryption key file
// (after the shared keys changed).
func reloadDataKeys(s *controlplane.Sealer, file string) error {
	cur, next, prev, err := dataKeys(file)
	if err != nil {
		return err
	}
	return s.SetKeys(cur, nonNil(next, prev)...)
}

func nonNil(keys ...[]byte) [][]byte {
	var out [][]byte
	for _, k := range keys {
		if k != nil {
			out = append(out, k)
		}
	}
	return out
}

// DataKeyRotation is what RotateDataKey did.
type DataKeyRotation struct {
	KeyID    string `json:"data_key_id"` // controlplane.KeyID of the new key
	Resealed int    `json:"resealed"`    // values re-sealed with it
	Resumed  bool   `json:"resumed"`     // it finished an interrupted rotation
	Shared   bool   `json:"shared"`      // the new key went to the other instances through the database
}

// rotateStep, when set (tests), is called after each step of
// RotateDataKey; an error stops the rotation there, as a crash would.
var rotateStep func(step string) error

func step(name string) error {
	if rotateStep == nil {
		return nil
	}
	return rotateStep(name)
}

// RotateDataKey replaces the data-encryption key: every value sealed
// with it is re-sealed with a new key in one store transaction, which on
// PostgreSQL with shared keys also stores the new key (and the replaced
// one, as the previous key) in the shared document. A crash at any
// instant leaves every value readable and the rotation resumable:
//
//  1. the new key is written to NextDataKeyFile (atomically; an
//     existing one, from an interrupted rotation, is reused), and from
//     then on LoadDataKeys opens with it;
//  2. the transaction re-seals every value (opened with any key held)
//     and appends the keys.data_key_rotated audit event;
//  3. the replaced key is written to keyshare.PreviousDataKeyFile (when
//     the keys are shared: another instance may seal with it until it
//     takes the new key), the new key to the data-encryption key file
//     (atomically), and NextDataKeyFile is removed.
//
// Running it again after a crash finishes the rotation. The caller
// holds the keys directory's lock (keyshare.Lock) and the daemon is
// stopped with the embedded store (bbolt allows one process).
func RotateDataKey(ctx context.Context, st store.Store, cfg Config) (*DataKeyRotation, error) {
	cur, next, prev, err := dataKeys(cfg.DataKeyFile)
	if err != nil {
		return nil, err
	}
	out := &DataKeyRotation{Resumed: next != nil}
	if next == nil {
		next = make([]byte, 32)
		if _, err := rand.Read(next); err != nil {
			return nil, err
		}
		if err := fsutil.WriteFile(NextDataKeyFile(cfg.DataKeyFile), next, 0o600); err != nil {
			return nil, fmt.Errorf("rotate data-encryption key: %w", err)
		}
	}
	if err := step("next written"); err != nil {
		return nil, err
	}
	from, err := controlplane.NewSealer(cur, nonNil(next, prev)...)
	if err != nil {
		return nil, err
	}
	to, err := controlplane.NewSealer(next)
	if err != nil {
		return nil, err
	}
	// The replaced key: the current one, or, when an interrupted rotation
	// already installed the new key, the one it replaced.
	replaced := cur
	if bytes.Equal(cur, next) {
		replaced = prev
	}
	var extra func(kv.Tx) error
	var share *keyshare.Share
	if cfg.SharesKeys() {
		db, ok := st.(*postgres.DB)
		if !ok {
			return nil, errors.New("shared keys need the postgres store")
		}
		kek, err := cfg.KEK()
		if err != nil {
			return nil, err
		}
		held, err := keyshare.Get(ctx, db.Backend(), kek)
		if err != nil && !errors.Is(err, keyshare.ErrNone) {
			return nil, err
		}
		base := ""
		if held != nil {
			base = held.Digest()
		}
		share, err = keyshare.Pack(cfg.KeysDir, cfg.DataKeyFile)
		if err != nil {
			return nil, err
		}
		share.DataKey, share.DataKeyPrevious = next, replaced
		extra = func(tx kv.Tx) error {
			if err := keyshare.SwapTx(tx, kek, base, share); err != nil {
				return fmt.Errorf("store shared keys: %w", err)
			}
			return nil
		}
		out.Shared = true
	}
	n, err := controlplane.ResealSecrets(ctx, st, from, to, extra)
	if err != nil {
		return nil, err
	}
	out.Resealed, out.KeyID = n, to.KeyID()
	if err := step("committed"); err != nil {
		return nil, err
	}
	if share != nil {
		if _, err := share.Materialise(cfg.KeysDir, cfg.DataKeyFile); err != nil {
			return nil, fmt.Errorf("rotate data-encryption key: %w", err)
		}
	} else {
		if err := fsutil.WriteFile(cfg.DataKeyFile, next, 0o600); err != nil {
			return nil, fmt.Errorf("rotate data-encryption key: %w", err)
		}
		if err := step("key written"); err != nil {
			return nil, err
		}
		// One instance: nothing else seals with the replaced key, and
		// every value is under the new one.
		if err := os.Remove(keyshare.PreviousDataKeyFile(cfg.DataKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("rotate data-encryption key: %w", err)
		}
	}
	if err := os.Remove(NextDataKeyFile(cfg.DataKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("rotate data-encryption key: %w", err)
	}
	return out, nil
}
