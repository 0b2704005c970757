package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
)

// More admin commands over the HTTP API: mirrors, rollouts, entitlements,
// tenant tokens, and a raw `api` escape hatch for everything else.
func moreAdminCmds() []*cobra.Command {
	mirror := &cobra.Command{Use: "mirror", Short: "Register and manage mirrors (over the HTTP API)"}
	mcreate := &cobra.Command{
		Use: "create", Short: "Register a mirror and print its credential (shown once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			tenant, _ := cmd.Flags().GetString("tenant")
			name, _ := cmd.Flags().GetString("name")
			channels, _ := cmd.Flags().GetStringSlice("channels")
			pub, _ := cmd.Flags().GetString("public-key")
			var m struct {
				catalog.Mirror
				Credential string `json:"credential"`
			}
			err = c.Do(cmd.Context(), "POST", "/v1/tenants/"+pathArg(tenant)+"/mirrors",
				map[string]any{"name": name, "allowed_channels": channels, "public_key": pub}, &m)
			if err != nil {
				return err
			}
			return output(cmd, m, func(w io.Writer) { fmt.Fprintln(w, m.Credential) })
		},
	}
	mcreate.Flags().String("tenant", "", "tenant id")
	mcreate.Flags().String("name", "mirror", "a label for the site")
	mcreate.Flags().StringSlice("channels", []string{"stable"}, "channels the mirror may sync (comma-separated)")
	mcreate.Flags().String("public-key", "", "the mirror's public key (base64, printed by `mirror init`); needed for offline leases")
	mlist := &cobra.Command{
		Use: "list", Short: "List a tenant's mirrors", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			tenant, _ := cmd.Flags().GetString("tenant")
			items, err := listAll[catalog.Mirror](cmd, c, "/v1/tenants/"+pathArg(tenant)+"/mirrors")
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"items": items}, func(w io.Writer) {
				var rows [][]any
				for _, m := range items {
					last := "never"
					if m.LastSyncAt != nil {
						last = m.LastSyncAt.Format("2006-01-02 15:04:05Z")
					}
					rows = append(rows, []any{m.MirrorID, m.Status, strings.Join(m.AllowedChannels, ","), last, m.Name})
				}
				table(w, "MIRROR\tSTATUS\tCHANNELS\tLAST SYNC\tNAME", rows)
			})
		},
	}
	mlist.Flags().String("tenant", "", "tenant id")
	mdeactivate := &cobra.Command{
		Use: "deactivate MIRROR_ID", Short: "Deactivate a mirror: its credential stops working at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var m catalog.Mirror
			if err := c.Do(cmd.Context(), "DELETE", "/v1/mirrors/"+pathArg(args[0]), nil, &m); err != nil {
				return err
			}
			return output(cmd, m, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\n", m.MirrorID, m.Status) })
		},
	}
	mirror.AddCommand(mcreate, mlist, mdeactivate)

	rollout := &cobra.Command{Use: "rollout", Short: "Staged rollouts (over the HTTP API)"}
	rcreate := &cobra.Command{
		Use: "create", Short: "Start a rollout of a release to a percentage of clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			product, _ := cmd.Flags().GetString("product")
			release, _ := cmd.Flags().GetString("release")
			channel, _ := cmd.Flags().GetString("channel")
			pct, _ := cmd.Flags().GetFloat64("percentage")
			var r catalog.Rollout
			if err := c.Do(cmd.Context(), "POST", "/v1/products/"+pathArg(product)+"/rollouts",
				map[string]any{"release_id": release, "channel": channel, "percentage": pct}, &r); err != nil {
				return err
			}
			return output(cmd, r, func(w io.Writer) { fmt.Fprintln(w, r.RolloutID) })
		},
	}
	rcreate.Flags().String("product", "", "product id")
	rcreate.Flags().String("release", "", "release id")
	rcreate.Flags().String("channel", "stable", "channel")
	rcreate.Flags().Float64("percentage", 10, "share of clients, 0-100")
	rset := &cobra.Command{
		Use: "set ROLLOUT_ID", Short: "Change a rollout's percentage or status (active, paused, completed, killed)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if cmd.Flags().Changed("percentage") {
				pct, _ := cmd.Flags().GetFloat64("percentage")
				body["percentage"] = pct
			}
			if cmd.Flags().Changed("status") {
				st, _ := cmd.Flags().GetString("status")
				body["status"] = st
			}
			if len(body) == 0 {
				return errors.New("give --percentage and/or --status")
			}
			var r catalog.Rollout
			if err := c.Do(cmd.Context(), "PATCH", "/v1/rollouts/"+pathArg(args[0]), body, &r); err != nil {
				return err
			}
			return output(cmd, r, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\t%g%%\n", r.RolloutID, r.Status, r.Percentage) })
		},
	}
	rset.Flags().Float64("percentage", 0, "share of clients, 0-100")
	rset.Flags().String("status", "", "active, paused, completed or killed")
	rollout.AddCommand(rcreate, rset)

	entitlement := &cobra.Command{Use: "entitlement", Short: "Licences (over the HTTP API)"}
	ecreate := &cobra.Command{
		Use: "create", Short: "Grant a tenant an entitlement to a product", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			tenant, _ := cmd.Flags().GetString("tenant")
			product, _ := cmd.Flags().GetString("product")
			policy, _ := cmd.Flags().GetString("policy")
			if !json.Valid([]byte(policy)) {
				return errors.New("--policy must be a JSON object, e.g. '{\"max_seats\":10}'")
			}
			body := map[string]any{"product_id": product, "policy_json": json.RawMessage(policy)}
			for _, f := range []string{"starts-at", "ends-at"} {
				if v, _ := cmd.Flags().GetString(f); v != "" {
					body[strings.ReplaceAll(f, "-", "_")] = v
				}
			}
			var e catalog.Entitlement
			if err := c.Do(cmd.Context(), "POST", "/v1/tenants/"+pathArg(tenant)+"/entitlements", body, &e); err != nil {
				return err
			}
			return output(cmd, e, func(w io.Writer) { fmt.Fprintln(w, e.EntitlementID) })
		},
	}
	ecreate.Flags().String("tenant", "", "tenant id")
	ecreate.Flags().String("product", "", "product id")
	ecreate.Flags().String("policy", `{"max_seats":1}`, "policy_json (docs/licensing.md)")
	ecreate.Flags().String("starts-at", "", "RFC 3339 time (default now)")
	ecreate.Flags().String("ends-at", "", "RFC 3339 time (default: never ends)")
	entitlement.AddCommand(ecreate)

	api := &cobra.Command{
		Use:   "api METHOD PATH",
		Short: "Call any API route and print the answer (e.g. `api GET /v1/audit-events?limit=5`)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var body any
			if data, _ := cmd.Flags().GetString("data"); data != "" {
				if rest, ok := strings.CutPrefix(data, "@"); ok {
					b, err := os.ReadFile(rest)
					if err != nil {
						return err
					}
					data = string(b)
				}
				if !json.Valid([]byte(data)) {
					return errors.New("--data must be JSON (or @FILE holding JSON)")
				}
				body = json.RawMessage(data)
			}
			var out []byte
			if err := c.Do(cmd.Context(), strings.ToUpper(args[0]), args[1], body, &out); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	api.Flags().String("data", "", "JSON request body, or @FILE")

	cmds := []*cobra.Command{mirror, rollout, entitlement, api}
	for _, c := range cmds {
		addClientFlags(c)
	}
	return cmds
}

// pathArg keeps an id from reaching another route ("../").
func pathArg(s string) string {
	if s == "" || strings.ContainsAny(s, "/?#%") {
		return "-invalid-"
	}
	return s
}
