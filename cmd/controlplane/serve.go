package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/keyshare"
	"github.com/outpost/outpost/internal/store/postgres"
)

func initCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the data dir, a signing key, a data-encryption key, and print the first admin token (--join: take an initialised PostgreSQL database's keys)",
		Long: `Create the data dir, a signing key, a data-encryption key, and print the first admin token.

With store: postgres, run init once, on the first instance, with
key_encryption_key_file set: its keys are sealed with that key and kept in
the database. Each other instance on the database runs init --join with the
same key_encryption_key_file: it takes the vendor's keys from the database
(no new key, no new admin token) and signs exactly as the first one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			join, _ := cmd.Flags().GetBool("join")
			if join {
				return joinInstance(cmd, cfg)
			}
			done, err := initialized(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if done {
				if cfg.Store == "postgres" {
					return errors.New("the PostgreSQL database is already initialized (by this or another instance): " +
						"to run another instance on it, set key_encryption_key_file to the first instance's file and run `controlplane init --join`")
				}
				return fmt.Errorf("%s is already initialized", cfg.DataDir)
			}
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("create data dir: %w", err)
			}
			if cfg.KEKFile != "" {
				// Refuse a bad key before any key is made.
				if _, err := keyshare.ReadKEK(cfg.KEKFile); err != nil {
					return err
				}
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
			// The keys go into the database before the first event: an
			// instance that sees the database initialised can join.
			if err := controlplaned.PushKeys(cmd.Context(), st, dc); err != nil {
				return err
			}
			app := controlplane.New(controlplane.Options{Store: st, Keys: controlplaned.DirKeyring(cfg.KeysDir), Config: dc.Service})
			ctx := controlplane.AsOperator(cmd.Context(), catalog.Actor{Type: catalog.ActorSystem, ID: "init"})
			t, err := app.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin, Name: "initial admin"})
			if err != nil {
				return err
			}
			if cfg.Store == "postgres" && cfg.KEKFile == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: no key_encryption_key_file: other instances cannot join this database "+
					"until this one runs with one (docs/architecture.md, \"Several control plane instances\")")
			}
			return output(cmd, map[string]string{"data_dir": cfg.DataDir, "admin_token": t.Secret}, func(w io.Writer) {
				fmt.Fprintln(w, t.Secret)
			})
		},
	}
	cmd.Flags().Bool("join", false, "join an initialised PostgreSQL database: take its keys (needs the first instance's key_encryption_key_file)")
	return cmd
}

// joinInstance makes this data dir another instance of the control plane
// whose PostgreSQL database is initialised: its keys are the database's.
func joinInstance(cmd *cobra.Command, cfg *Config) error {
	if cfg.Store != "postgres" {
		return errors.New("--join is for instances sharing a PostgreSQL database (store: postgres); a bolt data dir has one instance")
	}
	if cfg.KEKFile == "" {
		return errors.New("--join needs key_encryption_key_file (env OUTPOST_KEY_ENCRYPTION_KEY_FILE): the same file the first instance uses")
	}
	done, err := initialized(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	dc := cfg.daemon(newLogger(cfg, cmd.ErrOrStderr()))
	st, err := controlplaned.OpenStore(cmd.Context(), dc, false)
	if err != nil {
		return err
	}
	defer st.Close()
	has, err := controlplaned.HasSharedKeys(cmd.Context(), st, dc)
	if err != nil {
		return err
	}
	if !has {
		if !done {
			return errors.New("the PostgreSQL database is not initialized: run `controlplane init` (without --join) on the first instance")
		}
		return errors.New("the database holds no shared keys: on the instance that ran init, set key_encryption_key_file " +
			"and run `controlplane keys share` (or restart it), then join again")
	}
	// A data dir that holds keys already is joined only if they are the
	// database's (a repeated join): another set is never overwritten.
	if local, err := keyring.Load(cfg.KeysDir); err != nil || len(local) > 0 || exists(cfg.DataKeyFile) {
		held, herr := controlplaned.SharedKeys(cmd.Context(), st, dc)
		mine, perr := keyshare.Pack(cfg.KeysDir, cfg.DataKeyFile)
		if err != nil || herr != nil || perr != nil || held.Digest() != mine.Digest() {
			return fmt.Errorf("%s already holds keys that are not the database's: join with an empty data dir "+
				"(an instance that joined before takes the database's keys by itself when it starts)", cfg.DataDir)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if _, err := controlplaned.PullKeys(cmd.Context(), st, dc); err != nil {
		return err
	}
	if err := controlplaned.RecordJoin(cmd.Context(), st, dc, cfg.DataDir); err != nil {
		return err
	}
	keys, err := keyring.Load(cfg.KeysDir)
	if err != nil {
		return err
	}
	var ids []string
	for _, k := range keyring.Active(keys) {
		ids = append(ids, k.KeyID)
	}
	return output(cmd, map[string]any{"data_dir": cfg.DataDir, "joined": true, "signing_keys": ids}, func(w io.Writer) {
		fmt.Fprintf(w, "joined: %s signs with the database's keys (%s); use an admin token of the first instance\n",
			cfg.DataDir, strings.Join(ids, ", "))
	})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// initialized reports whether `init` has run: for bolt the file exists; a
// PostgreSQL database, shared by every instance, holds audit events (the
// first admin token wrote one), whatever this instance's data dir holds.
func initialized(ctx context.Context, cfg *Config) (bool, error) {
	if cfg.Store != "postgres" {
		_, err := os.Stat(cfg.dbPath())
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
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
