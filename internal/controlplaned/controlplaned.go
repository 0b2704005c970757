// Package controlplaned runs the control plane: it opens the parts a
// config names (store, blob store, signing keys, data-encryption key) into
// a controlplane.App, and ControlPlane owns a serving daemon's lifetime:
// the HTTP API and the housekeeping run as parts of one daemon.Group, and
// Close stops them, joins every one, then closes the store.
package controlplaned

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/store/postgres"
	"github.com/outpost/outpost/internal/tlsconf"
)

// Config names the control plane's parts and tunes the daemon.
type Config struct {
	Store       string // "bolt" (default) or "postgres"
	DBPath      string // the bbolt file
	PostgresURL string
	BlobBackend string // "disk" (default) or "s3"
	BlobDir     string
	S3          s3.Config
	KeysDir     string
	DataKeyFile string
	// KeyEncryptionKeyFile, with the postgres store, shares the keys
	// directory and the data-encryption key with the other instances
	// through the database, sealed with this key (package keyshare);
	// KeySyncInterval is how often a serving instance pulls them
	// (default 30s).
	KeyEncryptionKeyFile string
	// PreviousKeyEncryptionKeyFile, during a key-encryption key rotation
	// (keys rekey), is the key being replaced: the shared keys open with
	// either, and are sealed with KeyEncryptionKeyFile's.
	PreviousKeyEncryptionKeyFile string
	KeySyncInterval              time.Duration
	Service                      controlplane.Config

	Listen            string        // default 127.0.0.1:8440
	MaxBodyBytes      int64         // JSON request bodies (default 1 MiB)
	ReadHeaderTimeout time.Duration // default 10s
	ShutdownTimeout   time.Duration // in-flight requests get this long to finish (default 30s)
	RefreshInterval   time.Duration // housekeeping period; 0 also turns snapshot refresh off
	RefreshBefore     time.Duration // rebuild snapshots expiring within this
	IdempotencyTTL    time.Duration // default 24h
	// ReadTimeout and WriteTimeout bound a JSON request's body and answer
	// (defaults 30s, 60s); StreamIdle bounds each read or write of a
	// streaming route (uploads, downloads; default 60s). See
	// httpapi.Server.
	ReadTimeout, WriteTimeout, StreamIdle time.Duration
	// LeaseRate (requests per second) and LeaseBurst limit each token's
	// lease requests on the control plane (defaults 5/s, burst 20);
	// LeaseRate < 0 turns the limit off.
	LeaseRate  float64
	LeaseBurst int
	// TLS serves HTTPS when its cert and key files are set (reloaded on
	// SIGHUP or when the files change).
	TLS tlsconf.Config
	// MirrorClientCAFile, when set, makes /v1/mirror/* require a client
	// certificate chaining to this CA besides the mirror's credential.
	MirrorClientCAFile string
	Webhooks           WebhookConfig
	Log                *slog.Logger
}

// ErrNotInitialized says `controlplane init` has not run.
var ErrNotInitialized = errors.New("data dir is not initialized: run `controlplane init` first")

// OpenApp opens the parts cfg names into an App. warm says whether this
// process will serve (and so should warm bbolt's snapshot cache in the
// background). The caller closes the returned store.
func OpenApp(ctx context.Context, cfg Config, warm bool) (*controlplane.App, store.Store, error) {
	if cfg.Store != "postgres" {
		if _, err := os.Stat(cfg.DBPath); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, ErrNotInitialized
		}
	} else if !exists(cfg.DataKeyFile) {
		return nil, nil, ErrNotInitializedPostgres
	}
	st, err := OpenStore(ctx, cfg, warm)
	if err != nil {
		return nil, nil, err
	}
	app, err := openApp(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return app, st, nil
}

// ErrNotInitializedPostgres says this instance has no keys for the
// PostgreSQL database.
var ErrNotInitializedPostgres = errors.New("this instance has no keys: run `controlplane init` on the first instance, " +
	"`controlplane init --join` (with the same key_encryption_key_file) on each other one")

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func openApp(ctx context.Context, cfg Config, st store.Store) (*controlplane.App, error) {
	if err := syncKeys(ctx, st, cfg); err != nil {
		return nil, err
	}
	sealer, err := LoadDataKeys(cfg.DataKeyFile)
	if err != nil {
		return nil, err
	}
	if exists(NextDataKeyFile(cfg.DataKeyFile)) {
		cfg.logger().Warn("a data-encryption key rotation was interrupted: every value still opens, but run `controlplane keys rotate-data-key` again to finish it",
			"file", NextDataKeyFile(cfg.DataKeyFile))
	}
	blobs, err := OpenBlobs(ctx, cfg)
	if err != nil {
		return nil, err
	}
	app := controlplane.New(controlplane.Options{
		Store: st, Blobs: blobs, Keys: DirKeyring(cfg.KeysDir), Secrets: sealer, Log: cfg.logger(), Config: cfg.Service,
	})
	if err := EnableTUF(app, cfg.KeysDir); err != nil {
		return nil, err
	}
	return app, nil
}

func (c Config) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// OpenStore opens the configured store.
func OpenStore(ctx context.Context, cfg Config, warm bool) (store.Store, error) {
	if cfg.Store == "postgres" {
		return postgres.Open(ctx, cfg.PostgresURL, postgres.Options{})
	}
	return bolt.Open(cfg.DBPath, bolt.Options{NoWarm: !warm})
}

// OpenBlobs opens the configured blob store. On S3 it aborts multipart
// uploads a crash interrupted, which the server would otherwise keep (and
// bill) forever.
func OpenBlobs(ctx context.Context, cfg Config) (blob.Store, error) {
	if cfg.BlobBackend != "s3" {
		return disk.New(cfg.BlobDir)
	}
	st, err := s3.New(ctx, cfg.S3)
	if err != nil {
		return nil, err
	}
	if n, err := st.AbortStale(ctx, 24*time.Hour); err != nil {
		cfg.logger().Warn("abort stale multipart uploads", "err", err)
	} else if n > 0 {
		cfg.logger().Info("aborted stale multipart uploads", "count", n)
	}
	return st, nil
}

// DirKeyring reads the keys directory on each use, so keys generated or
// retired with `controlplane keys` take effect without a restart.
type DirKeyring string

func (d DirKeyring) load() []*keyring.Key {
	keys, err := keyring.Load(string(d))
	if err != nil {
		slog.Error("load signing keys", "dir", string(d), "err", err)
		return nil
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].KeyID < keys[j].KeyID })
	return keys
}

// Signers returns the active keys as signers.
func (d DirKeyring) Signers() []snapshot.Signer {
	var out []snapshot.Signer
	for _, k := range d.load() {
		if k.Status == keyring.StatusActive {
			out = append(out, k.Signer())
		}
	}
	return out
}

// PublicKeys returns every key's public half.
func (d DirKeyring) PublicKeys() []controlplane.PublicKey {
	var out []controlplane.PublicKey
	for _, k := range d.load() {
		out = append(out, KeyView(k))
	}
	return out
}

// KeyView is a key as the API shows it.
func KeyView(k *keyring.Key) controlplane.PublicKey {
	return controlplane.PublicKey{KeyID: k.KeyID, PublicKey: k.Public, Status: k.Status, CreatedAt: k.CreatedAt}
}
