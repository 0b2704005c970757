package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
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
	})
	return cmd
}
