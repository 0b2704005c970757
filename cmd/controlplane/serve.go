package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store/postgres"
)

func initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the data dir, a signing key, a data-encryption key, and print the first admin token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			done, err := initialized(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if done {
				if cfg.Store == "postgres" {
					return errors.New("the postgres store is already initialized")
				}
				return fmt.Errorf("%s is already initialized", cfg.DataDir)
			}
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("create data dir: %w", err)
			}
			if _, err := os.Stat(cfg.DataKeyFile); errors.Is(err, fs.ErrNotExist) {
				key := make([]byte, 32)
				if _, err := rand.Read(key); err != nil {
					return err
				}
				if err := fsutil.WriteFile(cfg.DataKeyFile, key, 0o600); err != nil {
					return fmt.Errorf("write data-encryption key: %w", err)
				}
			}
			if keys, _ := keyring.Load(cfg.KeysDir); len(keys) == 0 {
				if _, err := keyring.Generate(cfg.KeysDir); err != nil {
					return fmt.Errorf("generate signing key: %w", err)
				}
			}
			// A 1-of-1 TUF root kept online: the quickstart (`root init
			// --threshold 2 --keys 3 --out DIR` before init for an offline one).
			if d := controlplaned.TUFDir(cfg.KeysDir); !d.Exists() {
				if _, err := d.Init(1, 1, ""); err != nil {
					return err
				}
			}
			dc := cfg.daemon(newLogger(cfg, cmd.ErrOrStderr()))
			st, err := controlplaned.OpenStore(cmd.Context(), dc, false)
			if err != nil {
				return err
			}
			defer st.Close()
			app := controlplane.New(controlplane.Options{Store: st, Keys: controlplaned.DirKeyring(cfg.KeysDir), Config: dc.Service})
			ctx := controlplane.AsOperator(cmd.Context(), catalog.Actor{Type: catalog.ActorSystem, ID: "init"})
			t, err := app.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin, Name: "initial admin"})
			if err != nil {
				return err
			}
			return output(cmd, map[string]string{"data_dir": cfg.DataDir, "admin_token": t.Secret}, func(w io.Writer) {
				fmt.Fprintln(w, t.Secret)
			})
		},
	}
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

// serveCmd runs the daemon: the first SIGINT or SIGTERM drains in-flight
// requests for shutdown_timeout and stops housekeeping, then the store is
// closed; a second signal exits at once with 130.
func serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(cfg, cmd.ErrOrStderr())
			ctx, stop := daemon.SignalContext(cmd.Context(), "controlplane", cmd.ErrOrStderr())
			defer stop()
			cp, err := controlplaned.Open(ctx, cfg.daemon(log))
			if err != nil {
				return err
			}
			runErr := cp.Run(ctx)
			if err := cp.Close(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			if runErr != nil {
				return runErr
			}
			log.Info("stopped")
			return nil
		},
	}
	cmd.Flags().String("listen", "127.0.0.1:8440", "listen address")
	return cmd
}
