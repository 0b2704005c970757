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
	}, keysShareCmd(), keysRekeyCmd(), keysRotateDataKeyCmd())
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
		if before == "" || cmd.Annotations[annotSharesItself] != "" {
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

// annotSharesItself marks a key command that writes the shared keys in
// its own transaction: the hook after it has nothing to push.
const annotSharesItself = "outpost/shares-keys-itself"

// keysRekeyCmd re-seals the shared keys with a new key-encryption key.
func keysRekeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rekey --new-kek-file FILE",
		Short: "Re-seal the keys shared through PostgreSQL with a new key-encryption key (one transaction, audited)",
		Long: `Re-seal the keys shared through the PostgreSQL database with the key in
--new-kek-file, in one transaction that appends a keys.kek_rotated audit
event. The shared keys are opened with key_encryption_key_file (or
previous_key_encryption_key_file); afterwards only the new key opens them.
Give every instance the new file first, as key_encryption_key_file with
the old one as previous_key_encryption_key_file, so that each keeps
syncing through the rotation (README, "Rotating the key-encryption and
data-encryption keys").`,
		Annotations: map[string]string{annotSharesItself: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			file, _ := cmd.Flags().GetString("new-kek-file")
			if file == "" {
				return errors.New("--new-kek-file is required: make one with `openssl rand -hex 32 > FILE; chmod 600 FILE`")
			}
			if cfg.Store != "postgres" || cfg.KEKFile == "" {
				return errors.New("keys rekey needs store: postgres and key_encryption_key_file (env OUTPOST_KEY_ENCRYPTION_KEY_FILE): " +
					"the key-encryption key only seals keys shared through the database")
			}
			return withKeyStore(cmd, cfg, func(ctx context.Context, st store.Store, dc controlplaned.Config) error {
				id, err := controlplaned.RekeyShared(ctx, st, dc, file)
				if err != nil {
					return err
				}
				return output(cmd, map[string]string{"kek_id": id}, func(w io.Writer) {
					fmt.Fprintf(w, "shared keys re-sealed with the key-encryption key %s: every instance needs %s as key_encryption_key_file\n", id, file)
				})
			})
		},
	}
	cmd.Flags().String("new-kek-file", "", "the new key-encryption key (32 bytes, raw or hex or base64 text, mode 0600)")
	return cmd
}

// keysRotateDataKeyCmd replaces the data-encryption key.
func keysRotateDataKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-data-key",
		Short: "Replace the data-encryption key, re-sealing every stored secret with the new one in one transaction (audited)",
		Long: `Replace the data-encryption key: a new key is written beside the current
one (data-encryption.key.next), every value sealed with the key (mirror
credentials, webhook secrets, remembered answers) is re-sealed with it in
one store transaction that appends a keys.data_key_rotated audit event,
then the new key replaces the file. A crash at any instant leaves every
value readable; run the command again to finish. With the embedded store
stop the daemon first; on PostgreSQL with shared keys the new key reaches
the other instances through the database (they keep opening values sealed
with the replaced key).`,
		Annotations: map[string]string{annotSharesItself: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if _, err := os.Stat(cfg.DataKeyFile); err != nil {
				return fmt.Errorf("data-encryption key: %w (run `controlplane init` first)", err)
			}
			if cfg.Store == "postgres" && cfg.KEKFile == "" {
				return errors.New("keys rotate-data-key on PostgreSQL needs key_encryption_key_file, so that every instance takes the new key")
			}
			// With the embedded store the hook before this command held no
			// lock (nothing is shared): take it here.
			if cfg.Store != "postgres" {
				unlock, err := keyshare.Lock(cfg.KeysDir, true)
				if err != nil {
					return err
				}
				defer unlock()
			}
			return withKeyStore(cmd, cfg, func(ctx context.Context, st store.Store, dc controlplaned.Config) error {
				r, err := controlplaned.RotateDataKey(ctx, st, dc)
				if err != nil {
					return err
				}
				return output(cmd, r, func(w io.Writer) {
					fmt.Fprintf(w, "data-encryption key rotated to %s: %d values re-sealed\n", r.KeyID, r.Resealed)
				})
			})
		},
	}
}
