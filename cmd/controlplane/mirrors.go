package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

func mirrorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mirror", Short: "Register and manage mirrors"}
	create := &cobra.Command{
		Use: "create", Short: "Register a mirror and print its credential (shown once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			in := controlplane.MirrorInput{}
			in.Name, _ = cmd.Flags().GetString("name")
			in.AllowedChannels, _ = cmd.Flags().GetStringSlice("channels")
			in.PublicKey, _ = cmd.Flags().GetString("public-key")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				m, err := svc.CreateMirror(ctx, tenant, in)
				if err != nil {
					return err
				}
				return output(cmd, m, func(w io.Writer) { fmt.Fprintln(w, m.Credential) })
			})
		},
	}
	create.Flags().String("tenant", "", "tenant id")
	create.Flags().String("name", "mirror", "a label for the site")
	create.Flags().StringSlice("channels", []string{"stable"}, "channels the mirror may sync (comma-separated)")
	create.Flags().String("public-key", "", "the mirror's public key (base64, printed by `mirror init`); needed for offline leases")
	list := &cobra.Command{
		Use: "list", Short: "List a tenant's mirrors", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				ms, err := all(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Mirror, string, error) {
					return svc.Mirrors(ctx, tenant, pg)
				})
				if err != nil {
					return err
				}
				return items(cmd, ms, "MIRROR\tSTATUS\tCHANNELS\tLAST SYNC\tNAME", func(m *catalog.Mirror) []any {
					last := "never"
					if m.LastSyncAt != nil {
						last = m.LastSyncAt.Format("2006-01-02 15:04:05Z")
					}
					return []any{m.MirrorID, m.Status, strings.Join(m.AllowedChannels, ","), last, m.Name}
				})
			})
		},
	}
	list.Flags().String("tenant", "", "tenant id")
	deactivate := &cobra.Command{
		Use: "deactivate MIRROR_ID", Short: "Deactivate a mirror: its credential stops working at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				m, err := svc.DeactivateMirror(ctx, args[0])
				if err != nil {
					return err
				}
				return output(cmd, m, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\n", m.MirrorID, m.Status) })
			})
		},
	}
	cmd.AddCommand(create, list, deactivate)
	addClientFlags(cmd)
	return cmd
}
