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
	"github.com/outpost/outpost/internal/store"
)

func rolloutCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Staged rollouts"}
	create := &cobra.Command{
		Use: "create", Short: "Start a rollout of a release to a percentage of clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			product, _ := cmd.Flags().GetString("product")
			in := controlplane.RolloutInput{}
			in.ReleaseID, _ = cmd.Flags().GetString("release")
			in.Channel, _ = cmd.Flags().GetString("channel")
			pct, _ := cmd.Flags().GetFloat64("percentage")
			in.Percentage = &pct
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				r, err := svc.CreateRollout(ctx, product, in)
				if err != nil {
					return err
				}
				return output(cmd, r, func(w io.Writer) { fmt.Fprintln(w, r.RolloutID) })
			})
		},
	}
	create.Flags().String("product", "", "product id")
	create.Flags().String("release", "", "release id")
	create.Flags().String("channel", "stable", "channel")
	create.Flags().Float64("percentage", 10, "share of clients, 0-100")
	set := &cobra.Command{
		Use: "set ROLLOUT_ID", Short: "Change a rollout's percentage or status (active, paused, completed, killed)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in controlplane.RolloutPatch
			if cmd.Flags().Changed("percentage") {
				pct, _ := cmd.Flags().GetFloat64("percentage")
				in.Percentage = &pct
			}
			if cmd.Flags().Changed("status") {
				st, _ := cmd.Flags().GetString("status")
				in.Status = &st
			}
			if in.Percentage == nil && in.Status == nil {
				return usageError{errors.New("give --percentage and/or --status")}
			}
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				r, err := svc.UpdateRollout(ctx, args[0], in)
				if err != nil {
					return err
				}
				return output(cmd, r, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\t%g%%\n", r.RolloutID, r.Status, r.Percentage) })
			})
		},
	}
	set.Flags().Float64("percentage", 0, "share of clients, 0-100")
	set.Flags().String("status", "", "active, paused, completed or killed")
	list := &cobra.Command{
		Use: "list", Short: "List a product's rollouts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			product, _ := cmd.Flags().GetString("product")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				rs, err := all(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Rollout, string, error) {
					return svc.Rollouts(ctx, product, pg)
				})
				if err != nil {
					return err
				}
				return items(cmd, rs, "ROLLOUT\tCHANNEL\tRELEASE\tSTATUS\tPERCENT", func(r *catalog.Rollout) []any {
					return []any{r.RolloutID, r.Channel, r.ReleaseID, r.Status, r.Percentage}
				})
			})
		},
	}
	list.Flags().String("product", "", "product id")
	cmd.AddCommand(create, set, list)
	addClientFlags(cmd)
	return cmd
}

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "A tenant's update policies (docs/conditions.md) and blocked versions"}
	create := &cobra.Command{
		Use: "create", Short: "Create a tenant's policy for a product channel and print its id", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			in := controlplane.PolicyInput{}
			in.ProductID, _ = cmd.Flags().GetString("product")
			in.Channel, _ = cmd.Flags().GetString("channel")
			in.Action, _ = cmd.Flags().GetString("action")
			in.Priority, _ = cmd.Flags().GetInt("priority")
			if c, _ := cmd.Flags().GetString("conditions"); c != "" {
				if !json.Valid([]byte(c)) {
					return usageError{errors.New("--conditions must be JSON")}
				}
				in.Conditions = json.RawMessage(c)
			}
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				p, err := svc.CreatePolicy(ctx, tenant, in)
				if err != nil {
					return err
				}
				return output(cmd, p, func(w io.Writer) { fmt.Fprintln(w, p.PolicyID) })
			})
		},
	}
	create.Flags().String("tenant", "", "tenant id")
	create.Flags().String("product", "", "product id")
	create.Flags().String("channel", "stable", "channel")
	create.Flags().String("action", "", "one of the policy actions (docs/conditions.md)")
	create.Flags().Int("priority", 0, "higher wins")
	create.Flags().String("conditions", "", "conditions JSON (default {})")
	list := &cobra.Command{
		Use: "list", Short: "List a tenant's policies", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				ps, err := all(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Policy, string, error) {
					return svc.Policies(ctx, tenant, pg)
				})
				if err != nil {
					return err
				}
				return items(cmd, ps, "POLICY\tPRODUCT\tCHANNEL\tACTION\tPRIORITY\tVERSION", func(p *catalog.Policy) []any {
					return []any{p.PolicyID, p.ProductID, p.Channel, p.Action, p.Priority, p.Version}
				})
			})
		},
	}
	list.Flags().String("tenant", "", "tenant id")
	block := &cobra.Command{
		Use: "block VERSION", Short: "Block a version of a product for a tenant", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			in := controlplane.BlockedInput{BlockedVersion: args[0]}
			in.ProductID, _ = cmd.Flags().GetString("product")
			in.Reason, _ = cmd.Flags().GetString("reason")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				b, err := svc.CreateBlockedVersion(ctx, tenant, in)
				if err != nil {
					return err
				}
				return output(cmd, b, func(w io.Writer) { fmt.Fprintln(w, b.BlocklistID) })
			})
		},
	}
	block.Flags().String("tenant", "", "tenant id")
	block.Flags().String("product", "", "product id")
	block.Flags().String("reason", "", "why")
	cmd.AddCommand(create, list, block)
	addClientFlags(cmd)
	return cmd
}
