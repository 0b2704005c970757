package controlplaned

import (
	"context"
	"errors"
	"time"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/keyshare"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/postgres"
)

// SharesKeys reports whether cfg shares the vendor's keys through the
// database: PostgreSQL with a key-encryption key file.
func (c Config) SharesKeys() bool { return c.Store == "postgres" && c.KeyEncryptionKeyFile != "" }

// KEK reads the configured key-encryption key.
// With PreviousKeyEncryptionKeyFile it also opens with that one.
func (c Config) KEK() (*controlplane.Sealer, error) {
	return keyshare.ReadKEK(c.KeyEncryptionKeyFile, c.PreviousKeyEncryptionKeyFile)
}

// PullKeys makes this instance's keys directory and data-encryption key
// the database's shared ones (keyshare.ErrNone when it holds none). It
// reports whether anything changed. Without SharesKeys it does nothing.
func PullKeys(ctx context.Context, st store.Store, cfg Config) (bool, error) {
	db, kek, ok, err := shareParts(st, cfg)
	if !ok || err != nil {
		return false, err
	}
	return keyshare.Pull(ctx, db.Backend(), kek, cfg.KeysDir, cfg.DataKeyFile)
}

// PullKeysLocked is PullKeys for a caller that holds the keys
// directory's lock (keyshare.Lock): a key command.
func PullKeysLocked(ctx context.Context, st store.Store, cfg Config) (bool, error) {
	db, kek, ok, err := shareParts(st, cfg)
	if !ok || err != nil {
		return false, err
	}
	return keyshare.PullLocked(ctx, db.Backend(), kek, cfg.KeysDir, cfg.DataKeyFile)
}

// PushKeys stores this instance's keys in the database for the others.
// Without SharesKeys it does nothing.
func PushKeys(ctx context.Context, st store.Store, cfg Config) error {
	db, kek, ok, err := shareParts(st, cfg)
	if !ok || err != nil {
		return err
	}
	_, err = keyshare.Push(ctx, db.Backend(), kek, cfg.KeysDir, cfg.DataKeyFile)
	return err
}

// SwapKeys stores this instance's keys if the database still holds the
// document of digest base ("": none); keyshare.ErrChanged otherwise.
func SwapKeys(ctx context.Context, st store.Store, cfg Config, base string) error {
	db, kek, ok, err := shareParts(st, cfg)
	if !ok || err != nil {
		return err
	}
	s, err := keyshare.Pack(cfg.KeysDir, cfg.DataKeyFile)
	if err != nil {
		return err
	}
	return keyshare.Swap(ctx, db.Backend(), kek, base, s)
}

// SharedKeys returns the database's shared keys (keyshare.ErrNone when
// it holds none).
func SharedKeys(ctx context.Context, st store.Store, cfg Config) (*keyshare.Share, error) {
	db, kek, ok, err := shareParts(st, cfg)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, keyshare.ErrNone
	}
	return keyshare.Get(ctx, db.Backend(), kek)
}

// HasSharedKeys reports whether the database holds shared keys.
func HasSharedKeys(ctx context.Context, st store.Store, cfg Config) (bool, error) {
	_, err := SharedKeys(ctx, st, cfg)
	if errors.Is(err, keyshare.ErrNone) {
		return false, nil
	}
	return err == nil, err
}

func shareParts(st store.Store, cfg Config) (*postgres.DB, *controlplane.Sealer, bool, error) {
	if !cfg.SharesKeys() {
		return nil, nil, false, nil
	}
	db, ok := st.(*postgres.DB)
	if !ok {
		return nil, nil, false, errors.New("shared keys need the postgres store")
	}
	kek, err := cfg.KEK()
	if err != nil {
		return nil, nil, false, err
	}
	return db, kek, true, nil
}

// syncKeys brings an initialised (or joined) instance's keys up to date
// at open: the shared ones when the database holds them; this
// instance's, shared, when it holds none (the first instance, given a
// key-encryption key after its init).
func syncKeys(ctx context.Context, st store.Store, cfg Config) error {
	if !cfg.SharesKeys() || !exists(cfg.DataKeyFile) {
		return nil
	}
	changed, err := PullKeys(ctx, st, cfg)
	if errors.Is(err, keyshare.ErrBusy) {
		return nil // a key command runs on this data dir: it pushes, the next pull takes it
	}
	if errors.Is(err, keyshare.ErrNone) {
		cfg.logger().Info("sharing this instance's keys through the database (key_encryption_key_file is set)")
		if err := SwapKeys(ctx, st, cfg, ""); errors.Is(err, keyshare.ErrChanged) {
			// Another instance shared first: its keys are the vendor's.
			_, err = PullKeys(ctx, st, cfg)
			return err
		} else if err != nil {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	if changed {
		cfg.logger().Info("keys updated from the database")
	}
	return nil
}

// keySync pulls the shared keys every KeySyncInterval (default 30s), so
// a key generated, retired or rotated on one instance signs on every
// instance: the keyring and TUF keys are read from the directory on use.
func (c *ControlPlane) keySync(ctx context.Context) error {
	every := c.cfg.KeySyncInterval
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	log := c.cfg.logger()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		changed, err := PullKeys(ctx, c.store, c.cfg)
		switch {
		case errors.Is(err, keyshare.ErrBusy):
			// A key command runs on this data dir; next time.
		case err != nil && ctx.Err() == nil:
			log.Error("pull shared keys", "err", err)
		case changed:
			log.Info("keys updated from the database")
			// A rotated data-encryption key seals from now on; the
			// replaced one still opens what was sealed with it.
			if s := c.app.Secrets(); s != nil {
				if err := reloadDataKeys(s, c.cfg.DataKeyFile); err != nil {
					log.Error("reload data-encryption key", "err", err)
				}
			}
		}
	}
}
