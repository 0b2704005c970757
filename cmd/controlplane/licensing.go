package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
)

func entitlementCmd() *cobra.Command {
	create := leaf("create", "Grant a tenant an entitlement to a product", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		policy := str(cmd, "policy")
		if !json.Valid([]byte(policy)) {
			return usageError(errors.New("--policy must be a JSON object, e.g. '{\"max_seats\":10}'"))
		}
		in := controlplane.EntitlementInput{ProductID: str(cmd, "product"), Policy: json.RawMessage(policy)}
		var err error
		if in.StartsAt, err = timeFlag(cmd, "starts-at"); err != nil {
			return err
		}
		if in.EndsAt, err = timeFlag(cmd, "ends-at"); err != nil {
			return err
		}
		return printed(cmd, func(e *catalog.Entitlement) string { return e.EntitlementID })(svc.CreateEntitlement(ctx, str(cmd, "tenant"), in))
	})
	create.Flags().String("tenant", "", "tenant id")
	create.Flags().String("product", "", "product id")
	create.Flags().String("policy", `{"max_seats":1}`, "policy_json (docs/licensing.md)")
	create.Flags().String("starts-at", "", "RFC 3339 time (default now)")
	create.Flags().String("ends-at", "", "RFC 3339 time (default: never ends)")
	return group("entitlement", "Licences: entitlements (docs/licensing.md)", create)
}

// timeFlag reads an optional RFC 3339 time flag.
func timeFlag(cmd *cobra.Command, name string) (*time.Time, error) {
	v := str(cmd, name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usageError(fmt.Errorf("--%s must be an RFC 3339 time: %w", name, err))
	}
	return &t, nil
}
