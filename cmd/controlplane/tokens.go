package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

// tokenView is what `token create` prints as JSON.
type tokenView struct {
	Token     string     `json:"token"`
	TokenID   string     `json:"token_id"`
	Role      string     `json:"role"`
	TenantID  string     `json:"tenant_id"`
	Name      string     `json:"name,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func tokenCmd() *cobra.Command {
	create := leaf("create", "Create an API token and print it (shown once)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		ttl, _ := cmd.Flags().GetDuration("ttl")
		if ttl < 0 || (ttl > 0 && ttl < time.Second) {
			return usageError(errors.New("--ttl must be at least 1s"))
		}
		t, err := svc.CreateToken(ctx, controlplane.TokenInput{Role: str(cmd, "role"), TenantID: str(cmd, "tenant"), Name: str(cmd, "name"), TTLSeconds: int64(ttl / time.Second)})
		if err != nil {
			return err
		}
		return printed(cmd, func(v tokenView) string { return v.Token })(tokenView{t.Secret, t.TokenID, t.Role, t.TenantID, t.Name, t.ExpiresAt}, nil)
	})
	create.Flags().String("role", "", "admin, tenant, admin_ro or tenant_ro (read-only: GET routes only)")
	create.Flags().String("tenant", "", "tenant id (tenant tokens)")
	create.Flags().String("name", "", "a label for the token")
	create.Flags().Duration("ttl", 0, "expire the token after this long (e.g. 720h); 0: never")
	list := leaf("list", "List API tokens (a tenant token: its tenant's)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return listed(cmd, "TOKEN\tROLE\tTENANT\tNAME\tCREATED\tLAST USED\tEXPIRES\tREVOKED", func(t *catalog.Token) []any {
			return []any{t.TokenID, t.Role, dash(t.TenantID), dash(t.Name), stamp(&t.CreatedAt), stamp(t.LastUsedAt), stamp(t.ExpiresAt), stamp(t.RevokedAt)}
		})(store.All(ctx, svc.ListTokens))
	})
	revoke := leaf("revoke TOKEN_ID", "Revoke a token: it stops working on the next request", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return printed(cmd, func(t *catalog.Token) string { return t.TokenID + "\trevoked " + stamp(t.RevokedAt) })(svc.RevokeToken(ctx, args[0]))
	})
	return group("token", "Manage API tokens", create, list, revoke)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
