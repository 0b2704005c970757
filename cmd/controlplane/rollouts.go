package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

func rolloutCmd() *cobra.Command {
	create := leaf("create", "Start a rollout of a release to a percentage of clients (product and channel default to the release's)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		pct, _ := cmd.Flags().GetFloat64("percentage")
		in := controlplane.RolloutInput{ReleaseID: str(cmd, "release"), Channel: str(cmd, "channel"), Percentage: &pct}
		product := str(cmd, "product")
		if in.ReleaseID == "" {
			return usageError(errors.New("--release is required"))
		}
		if product == "" || in.Channel == "" {
			rel, err := svc.Release(ctx, in.ReleaseID)
			if err != nil {
				return fmt.Errorf("--release: %w", err)
			}
			if product == "" {
				product = rel.ProductID
			}
			if in.Channel == "" {
				in.Channel = rel.Channel
			}
		}
		var err error
		if in.Schedule, err = jsonFlag(cmd, "schedule"); err != nil {
			return err
		}
		if in.HealthGate, err = jsonFlag(cmd, "health-gate"); err != nil {
			return err
		}
		return printed(cmd, func(r *catalog.Rollout) string { return r.RolloutID })(svc.CreateRollout(ctx, product, in))
	})
	create.Flags().String("product", "", "product id (default: the release's)")
	create.Flags().String("release", "", "release id")
	create.Flags().String("channel", "", "channel (default: the release's)")
	create.Flags().Float64("percentage", 10, "share of clients, 0-100")
	create.Flags().String("schedule", "", `steps the control plane advances by itself, JSON (docs/fleet.md), e.g. '{"steps":[{"percentage":25,"min_dwell":"24h"},{"percentage":100,"min_dwell":"0s"}]}'`)
	create.Flags().String("health-gate", "", `when to halt it, JSON (docs/fleet.md), e.g. '{"min_installs":50,"max_failure_rate":2.5}'`)
	show := leaf("show ROLLOUT_ID", "Show a rollout", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		r, err := svc.Rollout(ctx, args[0])
		if err != nil {
			return err
		}
		return output(cmd, r, func(w io.Writer) {
			fmt.Fprintf(w, "rollout:     %s\nproduct:     %s\nchannel:     %s\nrelease:     %s\nstatus:      %s\npercentage:  %g%%\ncreated:     %s\nupdated:     %s\n",
				r.RolloutID, r.ProductID, r.Channel, r.ReleaseID, r.Status, r.Percentage, r.CreatedAt.Format(time.RFC3339), r.UpdatedAt.Format(time.RFC3339))
			if len(r.Schedule) > 0 {
				fmt.Fprintf(w, "schedule:    %s\n", r.Schedule)
			}
			if len(r.HealthGate) > 0 {
				fmt.Fprintf(w, "health gate: %s\n", r.HealthGate)
			}
		})
	})
	set := leaf("set ROLLOUT_ID", "Change a rollout's percentage, status (active, paused, completed, killed), schedule or health gate", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		var in controlplane.RolloutPatch
		if cmd.Flags().Changed("percentage") {
			pct, _ := cmd.Flags().GetFloat64("percentage")
			in.Percentage = &pct
		}
		if cmd.Flags().Changed("status") {
			in.Status = new(str(cmd, "status"))
		}
		var err error
		if in.Schedule, err = jsonFlag(cmd, "schedule"); err != nil {
			return err
		}
		if in.HealthGate, err = jsonFlag(cmd, "health-gate"); err != nil {
			return err
		}
		if in.Percentage == nil && in.Status == nil && in.Schedule == nil && in.HealthGate == nil {
			return usageError(errors.New("give --percentage, --status, --schedule and/or --health-gate"))
		}
		return printed(cmd, func(r *catalog.Rollout) string {
			return fmt.Sprintf("%s\t%s\t%g%%", r.RolloutID, r.Status, r.Percentage)
		})(svc.UpdateRollout(ctx, args[0], in))
	})
	set.Flags().Float64("percentage", 0, "share of clients, 0-100")
	set.Flags().String("status", "", "active, paused, completed or killed")
	set.Flags().String("schedule", "", "replace the schedule, JSON (docs/fleet.md); null removes it")
	set.Flags().String("health-gate", "", "replace the health gate, JSON (docs/fleet.md); null removes it")
	list := leaf("list", "List a product's rollouts", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		rollouts := func(ctx context.Context, pg store.Page) ([]*catalog.Rollout, string, error) {
			return svc.Rollouts(ctx, str(cmd, "product"), pg)
		}
		return listed(cmd, "ROLLOUT\tCHANNEL\tRELEASE\tSTATUS\tPERCENT", func(r *catalog.Rollout) []any {
			return []any{r.RolloutID, r.Channel, r.ReleaseID, r.Status, r.Percentage}
		})(store.All(ctx, rollouts))
	})
	list.Flags().String("product", "", "product id")
	return group("rollout", "Staged rollouts", create, list, show, set)
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
		})(store.All(ctx, policies))
	})
	list.Flags().String("tenant", "", "tenant id")
	show := leaf("show POLICY_ID", "Show a policy's current version", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		p, err := svc.Policy(ctx, args[0])
		if err != nil {
			return err
		}
		return output(cmd, p, func(w io.Writer) { printPolicy(w, p) })
	})
	update := leaf("update POLICY_ID", "Write a policy's next version (flags not given keep their current value)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		f := cmd.Flags()
		if !f.Changed("action") && !f.Changed("conditions") && !f.Changed("priority") {
			return usageError(errors.New("give --action, --conditions and/or --priority"))
		}
		cur, err := svc.Policy(ctx, args[0])
		if err != nil {
			return err
		}
		in := controlplane.PolicyUpdate{Action: cur.Action, Conditions: cur.Conditions, Priority: cur.Priority}
		if f.Changed("action") {
			in.Action = str(cmd, "action")
		}
		if f.Changed("priority") {
			in.Priority, _ = f.GetInt("priority")
		}
		if f.Changed("conditions") {
			if in.Conditions, err = jsonFlag(cmd, "conditions"); err != nil {
				return err
			}
		}
		return printed(cmd, func(p *catalog.Policy) string { return fmt.Sprintf("%s\tversion %d", p.PolicyID, p.Version) })(svc.UpdatePolicy(ctx, args[0], in))
	})
	update.Flags().String("action", "", "one of the policy actions (docs/conditions.md)")
	update.Flags().Int("priority", 0, "higher wins")
	update.Flags().String("conditions", "", "conditions JSON (docs/conditions.md)")
	versions := leaf("versions POLICY_ID", "List every version of a policy", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return listed(cmd, "VERSION\tACTION\tPRIORITY\tUPDATED\tCONDITIONS", func(p *catalog.Policy) []any {
			return []any{p.Version, p.Action, p.Priority, p.UpdatedAt.Format(time.RFC3339), string(p.Conditions)}
		})(svc.PolicyVersions(ctx, args[0]))
	})
	block := leaf("block VERSION", "Block a version of a product for a tenant (same as `blocked add`)", cobra.ExactArgs(1), blockVersion)
	blockedFlags(block)
	return group("policy", "A tenant's update policies (docs/conditions.md)", create, list, show, update, versions, block)
}

func printPolicy(w io.Writer, p *catalog.Policy) {
	fmt.Fprintf(w, "policy:     %s (version %d)\ntenant:     %s\nproduct:    %s\nchannel:    %s\naction:     %s\npriority:   %d\nconditions: %s\nupdated:    %s\n",
		p.PolicyID, p.Version, p.TenantID, p.ProductID, p.Channel, p.Action, p.Priority, p.Conditions, p.UpdatedAt.Format(time.RFC3339))
}

// blockedCmd manages a tenant's blocked versions: versions its clients
// are never offered (docs/conditions.md).
func blockedCmd() *cobra.Command {
	add := leaf("add VERSION", "Block a version of a product for a tenant and print the entry's id", cobra.ExactArgs(1), blockVersion)
	blockedFlags(add)
	list := leaf("list", "List a tenant's blocked versions", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		blocked := func(ctx context.Context, pg store.Page) ([]*catalog.BlockedVersion, string, error) {
			return svc.BlockedVersions(ctx, str(cmd, "tenant"), pg)
		}
		return listed(cmd, "BLOCKED\tPRODUCT\tVERSION\tREASON", func(b *catalog.BlockedVersion) []any {
			return []any{b.BlocklistID, b.ProductID, b.BlockedVersion, b.Reason}
		})(store.All(ctx, blocked))
	})
	list.Flags().String("tenant", "", "tenant id")
	remove := leaf("remove BLOCKED_ID", "Unblock: remove a blocked-version entry", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		if err := svc.DeleteBlockedVersion(ctx, str(cmd, "tenant"), args[0]); err != nil {
			return err
		}
		return output(cmd, map[string]string{"removed": args[0]}, func(w io.Writer) { fmt.Fprintln(w, "removed", args[0]) })
	})
	remove.Flags().String("tenant", "", "tenant id")
	return group("blocked", "A tenant's blocked versions (never offered to its clients)", add, list, remove)
}

func blockVersion(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
	in := controlplane.BlockedInput{BlockedVersion: args[0], ProductID: str(cmd, "product"), Reason: str(cmd, "reason")}
	return printed(cmd, func(b *catalog.BlockedVersion) string { return b.BlocklistID })(svc.CreateBlockedVersion(ctx, str(cmd, "tenant"), in))
}

func blockedFlags(cmd *cobra.Command) {
	cmd.Flags().String("tenant", "", "tenant id")
	cmd.Flags().String("product", "", "product id")
	cmd.Flags().String("reason", "", "why")
}

// jsonFlag reads an optional JSON flag (nil when not given).
func jsonFlag(cmd *cobra.Command, name string) (json.RawMessage, error) {
	v := str(cmd, name)
	if v == "" {
		return nil, nil
	}
	if !json.Valid([]byte(v)) {
		return nil, usageError(fmt.Errorf("--%s must be JSON, got %.60q", name, v))
	}
	return json.RawMessage(v), nil
}
