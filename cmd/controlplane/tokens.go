package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
)

func tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an admin or tenant token and print it (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := controlplane.TokenInput{}
			in.Role, _ = cmd.Flags().GetString("role")
			in.TenantID, _ = cmd.Flags().GetString("tenant")
			in.Name, _ = cmd.Flags().GetString("name")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				t, err := svc.CreateToken(ctx, in)
				if err != nil {
					return err
				}
				return output(cmd, map[string]any{"token": t.Secret, "token_id": t.TokenID, "role": t.Role, "tenant_id": t.TenantID}, func(w io.Writer) {
					fmt.Fprintln(w, t.Secret)
				})
			})
		},
	}
	create.Flags().String("role", "", "admin or tenant")
	create.Flags().String("tenant", "", "tenant id (tenant tokens)")
	create.Flags().String("name", "", "a label for the token")
	cmd.AddCommand(create)
	addClientFlags(cmd)
	return cmd
}
