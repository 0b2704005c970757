package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
)

func entitlementCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "entitlement", Short: "Licences: entitlements (docs/licensing.md)"}
	create := &cobra.Command{
		Use: "create", Short: "Grant a tenant an entitlement to a product", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			in := controlplane.EntitlementInput{}
			in.ProductID, _ = cmd.Flags().GetString("product")
			policy, _ := cmd.Flags().GetString("policy")
			if !json.Valid([]byte(policy)) {
				return usageError{errors.New("--policy must be a JSON object, e.g. '{\"max_seats\":10}'")}
			}
			in.Policy = json.RawMessage(policy)
			var err error
			if in.StartsAt, err = timeFlag(cmd, "starts-at"); err != nil {
				return err
			}
			if in.EndsAt, err = timeFlag(cmd, "ends-at"); err != nil {
				return err
			}
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				e, err := svc.CreateEntitlement(ctx, tenant, in)
				if err != nil {
					return err
				}
				return output(cmd, e, func(w io.Writer) { fmt.Fprintln(w, e.EntitlementID) })
			})
		},
	}
	create.Flags().String("tenant", "", "tenant id")
	create.Flags().String("product", "", "product id")
	create.Flags().String("policy", `{"max_seats":1}`, "policy_json (docs/licensing.md)")
	create.Flags().String("starts-at", "", "RFC 3339 time (default now)")
	create.Flags().String("ends-at", "", "RFC 3339 time (default: never ends)")
	cmd.AddCommand(create)
	addClientFlags(cmd)
	return cmd
}

// timeFlag reads an optional RFC 3339 time flag.
func timeFlag(cmd *cobra.Command, name string) (*time.Time, error) {
	v, _ := cmd.Flags().GetString(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s must be an RFC 3339 time: %w", name, err)}
	}
	return &t, nil
}
