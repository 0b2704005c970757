package controlplaned

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store/kv"

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

// Audit events of the shared keys (their payloads name keys by
// controlplane.KeyID and files by path, never a key's bytes).
const (
	EventKeysShared     = "keys.shared"                    // an instance stored its keys in the database
	EventKeysJoined     = "keys.joined"                    // an instance took them (init --join)
	EventKEKRotated     = "keys.kek_rotated"               // keys rekey re-sealed them with a new key-encryption key
	EventDataKeyRotated = controlplane.EventDataKeyRotated // keys rotate-data-key re-sealed every secret
)

// sharePayload describes a document for the audit log without its keys.
func sharePayload(s *keyshare.Share) map[string]any {
	files := make([]string, 0, len(s.Files))
	for _, f := range s.Files {
		files = append(files, f.Path)
	}
	return map[string]any{"data_key_id": controlplane.KeyID(s.DataKey), "files": files}
}

// PushKeys stores this instance's keys in the database for the others,
// with a keys.shared audit event. Without SharesKeys it does nothing.
func PushKeys(ctx context.Context, st store.Store, cfg Config) error {
	db, kek, ok, err := shareParts(st, cfg)
	if !ok || err != nil {
		return err
	}
	s, err := keyshare.Pack(cfg.KeysDir, cfg.DataKeyFile)
	if err != nil {
		return err
	}
	if err := db.UpdateAudited(ctx, EventKeysShared, sharePayload(s), func(tx kv.Tx) error { return keyshare.PutTx(tx, kek, s) }); err != nil {
		return fmt.Errorf("store shared keys: %w", err)
	}
	return nil
}

// SwapKeys stores this instance's keys if the database still holds the
// document of digest base ("": none), with a keys.shared audit event;
// keyshare.ErrChanged otherwise.
func SwapKeys(ctx context.Context, st store.Store, cfg Config, base string) error {
	db, kek, ok, err := shareParts(st, cfg)
	if !ok || err != nil {
		return err
	}
	s, err := keyshare.Pack(cfg.KeysDir, cfg.DataKeyFile)
	if err != nil {
		return err
	}
	if err := db.UpdateAudited(ctx, EventKeysShared, sharePayload(s), func(tx kv.Tx) error { return keyshare.SwapTx(tx, kek, base, s) }); err != nil {
		return fmt.Errorf("store shared keys: %w", err)
	}
	return nil
}

// RecordJoin appends the keys.joined audit event of an instance that
// took the shared keys (init --join); dataDir names it.
func RecordJoin(ctx context.Context, st store.Store, cfg Config, dataDir string) error {
	s, err := SharedKeys(ctx, st, cfg)
	if err != nil {
		return err
	}
	p := sharePayload(s)
	p["data_dir"] = dataDir
	if host, err := os.Hostname(); err == nil {
		p["host"] = host
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := st.AppendAudit(ctx, &catalog.AuditEvent{EventType: EventKeysJoined, Payload: payload}, ""); err != nil {
		return fmt.Errorf("record join: %w", err)
	}
	return nil
}

// RekeyShared re-seals the database's shared keys with the key in
// newKEKFile, in one transaction with a keys.kek_rotated audit event.
// The document is opened with the configured key-encryption key (or
// PreviousKeyEncryptionKeyFile's); afterwards only newKEKFile's opens it.
// It returns the new key's id (controlplane.KeyID).
func RekeyShared(ctx context.Context, st store.Store, cfg Config, newKEKFile string) (string, error) {
	db, kek, ok, err := shareParts(st, cfg)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errors.New("keys rekey needs store: postgres and key_encryption_key_file: the key-encryption key seals the shared keys")
	}
	newKEK, err := keyshare.ReadKEK(newKEKFile)
	if err != nil {
		return "", fmt.Errorf("new key-encryption key: %w", err)
	}
	id := newKEK.KeyID()
	err = db.UpdateAudited(ctx, EventKEKRotated, map[string]any{"kek_id": id}, func(tx kv.Tx) error {
		_, err := keyshare.RekeyTx(tx, kek, newKEK)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("rekey shared keys: %w", err)
	}
	return id, nil
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
		}
		if err == nil {
			c.reloadDataKeys()
		}
	}
}

// reloadDataKeys makes the daemon's Sealer hold the data-encryption keys
// its files hold: a rotated key seals from now on, the replaced one
// still opens what was sealed with it. The files may have changed
// through this pull or through a key command run on this data dir.
func (c *ControlPlane) reloadDataKeys() {
	s := c.app.Secrets()
	if s == nil {
		return
	}
	before := s.KeyID()
	if err := reloadDataKeys(s, c.cfg.DataKeyFile); err != nil {
		c.cfg.logger().Error("reload data-encryption key", "err", err)
		return
	}
	if after := s.KeyID(); after != before {
		c.cfg.logger().Info("data-encryption key rotated", "data_key_id", after)
	}
}
