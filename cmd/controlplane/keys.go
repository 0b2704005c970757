package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/keyshare"
	"github.com/outpost/outpost/internal/store"
)

// keysCmd manages the signing keys in the keys directory (always local:
// keys never travel over the API).
func keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage snapshot signing keys"}
	keysDir := func(cmd *cobra.Command) (string, error) {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return "", err
		}
		return cfg.KeysDir, nil
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Generate a new active signing key (keys rotate by overlap: retire the old one later)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			k, err := keyring.Generate(dir)
			if err != nil {
				return err
			}
			return output(cmd, controlplaned.KeyView(k), func(w io.Writer) { fmt.Fprintln(w, k.KeyID) })
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List signing keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			keys := controlplaned.DirKeyring(dir).PublicKeys()
			return items(cmd, keys, "KEY\tSTATUS\tCREATED\tPUBLIC KEY", func(v controlplane.PublicKey) []any {
				return []any{v.KeyID, v.Status, v.CreatedAt.Format(time.RFC3339), base64.StdEncoding.EncodeToString(v.PublicKey)}
			})
		},
	}, &cobra.Command{
		Use:   "retire KEY_ID",
		Short: "Stop signing with a key (it stays listed so mirrors can be told)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			return keyring.Retire(dir, args[0])
		},
	}, keysShareCmd())
	syncKeyCommands(cmd)
	return cmd
}

// syncKeyCommands makes the key commands under cmd (keys, root) work on
// the database's shared keys when this instance shares them
// (key_encryption_key_file with store: postgres): before the command the
// keys directory is brought up to date, and a command that changed it
// pushes it back, so every instance signs with the result.
func syncKeyCommands(cmd *cobra.Command) {
	// before is the digest of the keys before the command ("" when not
	// shared); base that of the database's document they came from ("":
	// none).
	var before, base string
	unlock := func() {}
	cmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		before, base = "", ""
		cfg, err := loadConfig(cmd)
		if err != nil || cfg.KEKFile == "" || cfg.Store != "postgres" {
			return nil // the command itself reports a bad config
		}
		if _, err := os.Stat(cfg.DataKeyFile); err != nil {
			return nil // not initialised (e.g. `root init` before `init`)
		}
		// Held until the push (or the process's end): a serving
		// instance's pull on this data dir waits for it.
		u, err := keyshare.Lock(cfg.KeysDir, true)
		if err != nil {
			return err
		}
		unlock = u
		return withKeyStore(cmd, cfg, func(ctx context.Context, st store.Store, dc controlplaned.Config) error {
			_, err := controlplaned.PullKeysLocked(ctx, st, dc)
			if err != nil && !errors.Is(err, keyshare.ErrNone) {
				return err
			}
			s, perr := keyshare.Pack(cfg.KeysDir, cfg.DataKeyFile)
			if perr != nil {
				return perr
			}
			before = s.Digest()
			if err == nil {
				base = before // pulled: the directory is the database's document
			}
			return nil
		})
	}
	cmd.PersistentPostRunE = func(cmd *cobra.Command, args []string) error {
		defer unlock()
		if before == "" {
			return nil
		}
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		s, err := keyshare.Pack(cfg.KeysDir, cfg.DataKeyFile)
		if err != nil || s.Digest() == before {
			return err
		}
		return withKeyStore(cmd, cfg, func(ctx context.Context, st store.Store, dc controlplaned.Config) error {
			err := controlplaned.SwapKeys(ctx, st, dc, base)
			if errors.Is(err, keyshare.ErrChanged) {
				return errors.New("the keys changed on another instance while this command ran: this change was not shared, " +
					"and this instance takes the other one's keys at its next sync; run the command again")
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "keys shared through the database: every instance signs with them within key_sync_interval")
			return nil
		})
	}
}

// withKeyStore runs fn with the configured store, opened for it.
func withKeyStore(cmd *cobra.Command, cfg *Config, fn func(ctx context.Context, st store.Store, dc controlplaned.Config) error) error {
	dc := cfg.daemon(newLogger(cfg, cmd.ErrOrStderr()))
	st, err := controlplaned.OpenStore(cmd.Context(), dc, false)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(cmd.Context(), st, dc)
}

// keysShareCmd stores this instance's keys in the database for the
// others (they pull them within key_sync_interval).
func keysShareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "share",
		Short: "Store this instance's keys in the PostgreSQL database, sealed with key_encryption_key_file, for the other instances",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.Store != "postgres" || cfg.KEKFile == "" {
				return errors.New("keys share needs store: postgres and key_encryption_key_file (env OUTPOST_KEY_ENCRYPTION_KEY_FILE)")
			}
			return withKeyStore(cmd, cfg, func(ctx context.Context, st store.Store, dc controlplaned.Config) error {
				// The hook before this command took the database's keys if
				// it held any: there is nothing left to share then.
				err := controlplaned.SwapKeys(ctx, st, dc, "")
				if errors.Is(err, keyshare.ErrChanged) {
					fmt.Fprintln(cmd.OutOrStdout(), "the database already holds the shared keys; this instance uses them")
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "keys shared: other instances can run `controlplane init --join`")
				return nil
			})
		},
	}
}
