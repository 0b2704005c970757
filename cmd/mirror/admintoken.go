package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/mirror"
)

// adminTokenCmd makes a mirror admin token for the status page's bundle
// upload and prints it with the hash that goes into admin_token_hashes.
func adminTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "admin-token",
		Short: "Make a mirror admin token (for the status page's bundle upload) and print its hash for admin_token_hashes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			token := "opm_" + base64.RawURLEncoding.EncodeToString(b)
			fmt.Fprintf(cmd.OutOrStdout(), "token: %s\nadmin_token_hashes entry: %s\n", token, mirror.HashAdminToken(token))
			return nil
		},
	}
}
