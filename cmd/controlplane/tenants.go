package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

func metadataFlag(cmd *cobra.Command) (json.RawMessage, error) {
	s := str(cmd, "metadata")
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, usageError(errors.New("--metadata must be a JSON object"))
	}
	return json.RawMessage(s), nil
}

func tenantCmd() *cobra.Command {
	create := leaf("create NAME", "Create a tenant and print its id", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		md, err := metadataFlag(cmd)
		if err != nil {
			return err
		}
		return printed(cmd, func(t *catalog.Tenant) string { return t.TenantID })(svc.CreateTenant(ctx, controlplane.TenantInput{Name: args[0], Metadata: md}))
	})
	create.Flags().String("metadata", "", "JSON object")
	list := leaf("list", "List tenants", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return listed(cmd, "TENANT\tSTATUS\tNAME", func(t *catalog.Tenant) []any { return []any{t.TenantID, t.Status, t.Name} })(store.All(ctx, svc.Tenants))
	})
	set := leaf("set TENANT_ID", "Rename a tenant or change its status (active, suspended, deleted)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		var in controlplane.TenantPatch
		if cmd.Flags().Changed("name") {
			in.Name = new(str(cmd, "name"))
		}
		if cmd.Flags().Changed("status") {
			in.Status = new(str(cmd, "status"))
		}
		if in.Name == nil && in.Status == nil {
			return usageError(errors.New("give --name and/or --status"))
		}
		return printed(cmd, func(t *catalog.Tenant) string { return t.TenantID + "\t" + t.Status + "\t" + t.Name })(svc.UpdateTenant(ctx, args[0], in))
	})
	set.Flags().String("name", "", "new name")
	set.Flags().String("status", "", "active, suspended or deleted")
	return group("tenant", "Manage tenants", create, list, set)
}
