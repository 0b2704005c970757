package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
)

// tokenView is what `token create` prints as JSON.
type tokenView struct {
	Token    string `json:"token"`
	TokenID  string `json:"token_id"`
	Role     string `json:"role"`
	TenantID string `json:"tenant_id"`
}

func tokenCmd() *cobra.Command {
	create := leaf("create", "Create an admin or tenant token and print it (shown once)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		t, err := svc.CreateToken(ctx, controlplane.TokenInput{Role: str(cmd, "role"), TenantID: str(cmd, "tenant"), Name: str(cmd, "name")})
		if err != nil {
			return err
		}
		return printed(cmd, func(v tokenView) string { return v.Token })(tokenView{t.Secret, t.TokenID, t.Role, t.TenantID}, nil)
	})
	create.Flags().String("role", "", "admin or tenant")
	create.Flags().String("tenant", "", "tenant id (tenant tokens)")
	create.Flags().String("name", "", "a label for the token")
	return group("token", "Manage API tokens", create)
}
