package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/controlplane"
)

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Inspect the audit log"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain and name the first broken link (opens the data dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, func(ctx context.Context, a *controlplane.App) error {
				res, err := a.VerifyAudit(ctx)
				var broken *audit.BrokenLinkError
				if errors.As(err, &broken) {
					_ = output(cmd, map[string]any{"ok": false, "verified": res.Verified, "broken_seq": broken.Seq, "broken_event_id": broken.EventID, "reason": broken.Reason}, func(io.Writer) {})
					return broken
				}
				if err != nil {
					return err
				}
				return output(cmd, map[string]any{"ok": true, "verified": res.Verified, "head_hash": res.HeadHash}, func(w io.Writer) {
					fmt.Fprintf(w, "audit chain ok: %d events, head %s\n", res.Verified, res.HeadHash)
				})
			})
		},
	})
	return cmd
}

// apiCmd calls any route of a running control plane.
func apiCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api METHOD PATH",
		Short: "Call any API route and print the answer (e.g. `api GET /v1/audit-events?limit=5`)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var body json.RawMessage
			if data, _ := cmd.Flags().GetString("data"); data != "" {
				if rest, ok := strings.CutPrefix(data, "@"); ok {
					b, err := os.ReadFile(rest)
					if err != nil {
						return err
					}
					data = string(b)
				}
				if !json.Valid([]byte(data)) {
					return usageError(errors.New("--data must be JSON (or @FILE holding JSON)"))
				}
				body = json.RawMessage(data)
			}
			out, err := c.Raw(cmd.Context(), strings.ToUpper(args[0]), args[1], body)
			if err != nil {
				return remoteError(cmd, err)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().String("data", "", "JSON request body, or @FILE")
	addClientFlags(cmd)
	return cmd
}
