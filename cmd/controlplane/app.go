package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
)

// app is the control plane's parts, opened from a config.
type app struct {
	cfg    *Config
	store  store.Store
	blobs  blob.Store
	server *httpapi.Server
}

var errNotInitialized = errors.New("data dir is not initialized: run `controlplane init` first")

// openApp opens the data dir. daemon says whether this process will serve
// (and so should warm the store's snapshot cache in the background).
func openApp(ctx context.Context, cfg *Config, log *slog.Logger, daemon bool) (*app, error) {
	if cfg.Store != "postgres" {
		if _, err := os.Stat(cfg.dbPath()); errors.Is(err, fs.ErrNotExist) {
			return nil, errNotInitialized
		}
	} else if _, err := os.Stat(cfg.DataKeyFile); errors.Is(err, fs.ErrNotExist) {
		return nil, errNotInitialized
	}
	key, err := os.ReadFile(cfg.DataKeyFile)
	if err != nil {
		return nil, fmt.Errorf("read data-encryption key: %w", err)
	}
	sealer, err := httpapi.NewSealer(key)
	if err != nil {
		return nil, err
	}
	blobs, err := openBlobs(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db, err := openStore(ctx, cfg, daemon)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, store: db, blobs: blobs}
	a.server = &httpapi.Server{
		Store: db, Blobs: blobs, Keys: dirKeyring(cfg.KeysDir), Secrets: sealer, Log: log,
		Config: httpapi.Config{
			MaxBodyBytes: cfg.MaxBodyBytes, MaxArtifactBytes: cfg.MaxArtifactBytes, SnapshotTTL: cfg.SnapshotTTL,
			ArtifactDelivery: cfg.ArtifactDelivery, PresignTTL: cfg.PresignTTL, AllowPrivateURLs: cfg.AllowPrivateURLs,
		},
	}
	return a, nil
}

func (a *app) Close() error { return a.store.Close() }

func openBlobs(ctx context.Context, cfg *Config) (blob.Store, error) {
	if cfg.Blob.Backend == "s3" {
		c := cfg.Blob.S3
		st, err := s3.New(ctx, s3.Config{
			Endpoint: c.Endpoint, AccessKey: c.AccessKey, SecretKey: c.SecretKey, Bucket: c.Bucket,
			Region: c.Region, UseSSL: c.UseSSL, Prefix: c.Prefix, CreateBucket: c.CreateBucket,
		})
		if err != nil {
			return nil, err
		}
		// Multipart uploads a crash interrupted would otherwise be kept
		// (and billed) by the S3 server forever.
		if n, err := st.AbortStale(ctx, 24*time.Hour); err != nil {
			slog.Warn("abort stale multipart uploads", "err", err)
		} else if n > 0 {
			slog.Info("aborted stale multipart uploads", "count", n)
		}
		return st, nil
	}
	return disk.New(cfg.Blob.Dir)
}

// dirKeyring reads the keys directory on each use, so keys generated or
// retired with `controlplane keys` take effect without a restart.
type dirKeyring string

func (d dirKeyring) load() []*keyring.Key {
	keys, err := keyring.Load(string(d))
	if err != nil {
		slog.Error("load signing keys", "dir", string(d), "err", err)
		return nil
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].KeyID < keys[j].KeyID })
	return keys
}

func (d dirKeyring) Signers() []snapshot.Signer {
	var out []snapshot.Signer
	for _, k := range d.load() {
		if k.Status == keyring.StatusActive {
			out = append(out, k.Signer())
		}
	}
	return out
}

func (d dirKeyring) PublicKeys() []httpapi.PublicKey {
	var out []httpapi.PublicKey
	for _, k := range d.load() {
		out = append(out, httpapi.PublicKey{KeyID: k.KeyID, PublicKey: k.Public, Status: k.Status, CreatedAt: k.CreatedAt})
	}
	return out
}
