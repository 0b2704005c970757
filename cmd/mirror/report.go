package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/clock"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/mirror"
)

func reportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The air-gapped return file for the vendor (lease audit and client events)",
	}
	cmd.AddCommand(reportExportCmd())
	return cmd
}

func reportExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write the one signed return file: the lease audit chain and the client events the vendor has not acknowledged",
		Long: "export writes outpost-return-v1 (docs/fleet.md, The return file): JSON lines carrying the\n" +
			"mirror's audit chain after the head the vendor acknowledged and its fleet report (every\n" +
			"aggregate, the events above the acknowledged cursor), hash-chained under one trailer\n" +
			"signed with the mirror key, streamed to FILE atomically (- for stdout). Carry it to the\n" +
			"vendor: `controlplane report import FILE` verifies it and ingests both parts\n" +
			"idempotently. The acknowledgement comes back in the next bundle (`mirror import`), so\n" +
			"the file after that holds only what is new. Stop `mirror serve` first: the command\n" +
			"opens the data dir.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return errors.New("report export: --out is required")
			}
			return withApp(cmd, false, func(ctx context.Context, a *app) error {
				fs, err := a.st.FleetStore()
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				agg, err := fleet.NewAggregator(ctx, fs, fleet.Options{})
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				if out == "-" {
					_, err = a.leases.WriteReturnFile(ctx, cmd.OutOrStdout(), agg, clock.Now().UTC())
					return err
				}
				var s mirror.ReturnSummary
				err = fsutil.WriteFrom(out, 0o600, func(w io.Writer) error {
					var err error
					s, err = a.leases.WriteReturnFile(ctx, w, agg, clock.Now().UTC())
					return err
				})
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				res := map[string]any{"file": out, "mirror_id": s.MirrorID, "head": s.Head,
					"audit_after": s.AuditAfter, "audit_events": s.AuditLines - 1, "fleet_records": s.FleetLines - 2, "fleet_through": s.FleetThrough}
				return output(cmd, res, func(w io.Writer) {
					fmt.Fprintf(w, "exported the return file of mirror %s to %s: %d audit events (after %d), %d fleet records (events through %d)\n",
						s.MirrorID, out, s.AuditLines-1, s.AuditAfter, s.FleetLines-2, s.FleetThrough)
				})
			})
		},
	}
	cmd.Flags().String("out", "", "file to write (atomically), or - for stdout")
	return cmd
}
