package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
)

func metadataFlag(cmd *cobra.Command) (json.RawMessage, error) {
	s, _ := cmd.Flags().GetString("metadata")
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, usageError{errors.New("--metadata must be a JSON object")}
	}
	return json.RawMessage(s), nil
}

func tenantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants"}
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a tenant and print its id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			md, err := metadataFlag(cmd)
			if err != nil {
				return err
			}
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				t, err := svc.CreateTenant(ctx, controlplane.TenantInput{Name: args[0], Metadata: md})
				if err != nil {
					return err
				}
				return output(cmd, t, func(w io.Writer) { fmt.Fprintln(w, t.TenantID) })
			})
		},
	}
	create.Flags().String("metadata", "", "JSON object")
	list := &cobra.Command{
		Use: "list", Short: "List tenants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				ts, err := all(ctx, svc.Tenants)
				if err != nil {
					return err
				}
				return items(cmd, ts, "TENANT\tSTATUS\tNAME", func(t *catalog.Tenant) []any { return []any{t.TenantID, t.Status, t.Name} })
			})
		},
	}
	set := &cobra.Command{
		Use: "set TENANT_ID", Short: "Rename a tenant or change its status (active, suspended, deleted)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in controlplane.TenantPatch
			if cmd.Flags().Changed("name") {
				v, _ := cmd.Flags().GetString("name")
				in.Name = &v
			}
			if cmd.Flags().Changed("status") {
				v, _ := cmd.Flags().GetString("status")
				in.Status = &v
			}
			if in.Name == nil && in.Status == nil {
				return usageError{errors.New("give --name and/or --status")}
			}
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				t, err := svc.UpdateTenant(ctx, args[0], in)
				if err != nil {
					return err
				}
				return output(cmd, t, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\t%s\n", t.TenantID, t.Status, t.Name) })
			})
		},
	}
	set.Flags().String("name", "", "new name")
	set.Flags().String("status", "", "active, suspended or deleted")
	cmd.AddCommand(create, list, set)
	addClientFlags(cmd)
	return cmd
}
