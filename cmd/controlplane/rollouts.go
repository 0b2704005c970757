package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

func rolloutCmd() *cobra.Command {
	create := leaf("create", "Start a rollout of a release to a percentage of clients", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		pct, _ := cmd.Flags().GetFloat64("percentage")
		in := controlplane.RolloutInput{ReleaseID: str(cmd, "release"), Channel: str(cmd, "channel"), Percentage: &pct}
		return printed(cmd, func(r *catalog.Rollout) string { return r.RolloutID })(svc.CreateRollout(ctx, str(cmd, "product"), in))
	})
	create.Flags().String("product", "", "product id")
	create.Flags().String("release", "", "release id")
	create.Flags().String("channel", "stable", "channel")
	create.Flags().Float64("percentage", 10, "share of clients, 0-100")
	set := leaf("set ROLLOUT_ID", "Change a rollout's percentage or status (active, paused, completed, killed)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		var in controlplane.RolloutPatch
		if cmd.Flags().Changed("percentage") {
			pct, _ := cmd.Flags().GetFloat64("percentage")
			in.Percentage = &pct
		}
		if cmd.Flags().Changed("status") {
			in.Status = new(str(cmd, "status"))
		}
		if in.Percentage == nil && in.Status == nil {
			return usageError(errors.New("give --percentage and/or --status"))
		}
		return printed(cmd, func(r *catalog.Rollout) string {
			return fmt.Sprintf("%s\t%s\t%g%%", r.RolloutID, r.Status, r.Percentage)
		})(svc.UpdateRollout(ctx, args[0], in))
	})
	set.Flags().Float64("percentage", 0, "share of clients, 0-100")
	set.Flags().String("status", "", "active, paused, completed or killed")
	list := leaf("list", "List a product's rollouts", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		rollouts := func(ctx context.Context, pg store.Page) ([]*catalog.Rollout, string, error) {
			return svc.Rollouts(ctx, str(cmd, "product"), pg)
		}
		return listed(cmd, "ROLLOUT\tCHANNEL\tRELEASE\tSTATUS\tPERCENT", func(r *catalog.Rollout) []any {
			return []any{r.RolloutID, r.Channel, r.ReleaseID, r.Status, r.Percentage}
		})(all(ctx, rollouts))
	})
	list.Flags().String("product", "", "product id")
	return group("rollout", "Staged rollouts", create, set, list)
}

func policyCmd() *cobra.Command {
	create := leaf("create", "Create a tenant's policy for a product channel and print its id", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		priority, _ := cmd.Flags().GetInt("priority")
		in := controlplane.PolicyInput{ProductID: str(cmd, "product"), Channel: str(cmd, "channel"), Action: str(cmd, "action"), Priority: priority}
		if c := str(cmd, "conditions"); c != "" {
			if !json.Valid([]byte(c)) {
				return usageError(errors.New("--conditions must be JSON"))
			}
			in.Conditions = json.RawMessage(c)
		}
		return printed(cmd, func(p *catalog.Policy) string { return p.PolicyID })(svc.CreatePolicy(ctx, str(cmd, "tenant"), in))
	})
	create.Flags().String("tenant", "", "tenant id")
	create.Flags().String("product", "", "product id")
	create.Flags().String("channel", "stable", "channel")
	create.Flags().String("action", "", "one of the policy actions (docs/conditions.md)")
	create.Flags().Int("priority", 0, "higher wins")
	create.Flags().String("conditions", "", "conditions JSON (default {})")
	list := leaf("list", "List a tenant's policies", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		policies := func(ctx context.Context, pg store.Page) ([]*catalog.Policy, string, error) {
			return svc.Policies(ctx, str(cmd, "tenant"), pg)
		}
		return listed(cmd, "POLICY\tPRODUCT\tCHANNEL\tACTION\tPRIORITY\tVERSION", func(p *catalog.Policy) []any {
			return []any{p.PolicyID, p.ProductID, p.Channel, p.Action, p.Priority, p.Version}
		})(all(ctx, policies))
	})
	list.Flags().String("tenant", "", "tenant id")
	block := leaf("block VERSION", "Block a version of a product for a tenant", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		in := controlplane.BlockedInput{BlockedVersion: args[0], ProductID: str(cmd, "product"), Reason: str(cmd, "reason")}
		return printed(cmd, func(b *catalog.BlockedVersion) string { return b.BlocklistID })(svc.CreateBlockedVersion(ctx, str(cmd, "tenant"), in))
	})
	block.Flags().String("tenant", "", "tenant id")
	block.Flags().String("product", "", "product id")
	block.Flags().String("reason", "", "why")
	return group("policy", "A tenant's update policies (docs/conditions.md) and blocked versions", create, list, block)
}
