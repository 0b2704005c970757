package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

func mirrorCmd() *cobra.Command {
	create := leaf("create", "Register a mirror and print its id and its credential (shown once)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		channels, _ := cmd.Flags().GetStringSlice("channels")
		in := controlplane.MirrorInput{Name: str(cmd, "name"), AllowedChannels: channels, PublicKey: str(cmd, "public-key")}
		return printed(cmd, func(m *controlplane.MirrorCreated) string {
			return "mirror:     " + m.MirrorID + "\ncredential: " + m.Credential + "\n" +
				"The credential is shown once: give it to the site's `mirror init --credential`; the mirror id is what\n" +
				"`entitlement delegate --mirror` and a bundle-only mirror's `mirror init --mirror-id` take."
		})(svc.CreateMirror(ctx, str(cmd, "tenant"), in))
	})
	create.Flags().String("tenant", "", "tenant id")
	create.Flags().String("name", "mirror", "a label for the site")
	create.Flags().StringSlice("channels", []string{"stable"}, "channels the mirror may sync (comma-separated)")
	create.Flags().String("public-key", "", "the mirror's public key (base64, printed by 'mirror init'); needed for offline leases")
	list := leaf("list", "List a tenant's mirrors", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		mirrors := func(ctx context.Context, pg store.Page) ([]*catalog.Mirror, string, error) {
			return svc.Mirrors(ctx, str(cmd, "tenant"), pg)
		}
		return listed(cmd, "MIRROR\tSTATUS\tCHANNELS\tLAST SYNC\tNAME", func(m *catalog.Mirror) []any {
			last := "never"
			if m.LastSyncAt != nil {
				last = m.LastSyncAt.Format("2006-01-02 15:04:05Z")
			}
			return []any{m.MirrorID, m.Status, strings.Join(m.AllowedChannels, ","), last, m.Name}
		})(store.All(ctx, mirrors))
	})
	list.Flags().String("tenant", "", "tenant id")
	deactivate := leaf("deactivate MIRROR_ID", "Deactivate a mirror: its credential stops working at once", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return printed(cmd, func(m *catalog.Mirror) string { return m.MirrorID + "\t" + m.Status })(svc.DeactivateMirror(ctx, args[0]))
	})
	return group("mirror", "Register and manage mirrors", create, list, deactivate)
}
