package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/store/postgres"
)

// openStore opens the configured store. warm says whether this process
// will serve (and so should warm bolt's snapshot cache in the background).
func openStore(ctx context.Context, cfg *Config, warm bool) (store.Store, error) {
	if cfg.Store == "postgres" {
		return postgres.Open(ctx, cfg.PostgresURL, postgres.Options{})
	}
	return bolt.Open(cfg.dbPath(), bolt.Options{NoWarm: !warm})
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// initialized reports whether `init` has run: for bolt the file exists; a
// PostgreSQL database, shared by every instance, holds audit events (the
// first admin token wrote one).
func initialized(ctx context.Context, cfg *Config) (bool, error) {
	if cfg.Store != "postgres" {
		_, err := os.Stat(cfg.dbPath())
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	if _, err := os.Stat(cfg.DataKeyFile); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	db, err := postgres.Open(ctx, cfg.PostgresURL, postgres.Options{})
	if err != nil {
		return false, err
	}
	defer db.Close()
	err = db.WalkAudit(ctx, func(*catalog.AuditEvent) error { return errStop })
	switch {
	case errors.Is(err, errStop):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read audit log: %w", err)
	}
	return false, nil
}
