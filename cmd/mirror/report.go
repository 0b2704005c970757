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
)

func reportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Client event reports for the vendor (the air-gapped return file)",
	}
	cmd.AddCommand(reportExportCmd())
	return cmd
}

func reportExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write the signed return file of client events (aggregates and the events the vendor has not acknowledged)",
		Long: "export writes outpost-fleet-report-v1 (docs/fleet.md): JSON lines, hash-chained and\n" +
			"signed with the mirror key, streamed to FILE atomically (- for stdout). Carry it to the\n" +
			"vendor, whose control plane verifies and ingests it idempotently. Stop `mirror serve`\n" +
			"first: the command opens the data dir.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return errors.New("report export: --out is required")
			}
			return withApp(cmd, false, func(ctx context.Context, a *app) error {
				led, err := a.leases.Ledger()
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				key, err := a.cfg.mirrorKey()
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				fs, err := a.st.FleetStore()
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				agg, err := fleet.NewAggregator(ctx, fs, fleet.Options{})
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				id := fleet.ExportIdentity{MirrorID: led.MirrorID(), TenantID: a.cfg.TenantID, Key: key}
				var tr fleet.ReportTrailer
				if out == "-" {
					_, err = agg.ExportReport(ctx, cmd.OutOrStdout(), id, clock.Now().UTC())
					return err
				}
				err = fsutil.WriteFrom(out, 0o600, func(w io.Writer) error {
					var err error
					tr, err = agg.ExportReport(ctx, w, id, clock.Now().UTC())
					return err
				})
				if err != nil {
					return fmt.Errorf("report export: %w", err)
				}
				res := map[string]any{"file": out, "records": tr.Count, "through": tr.Through, "head": tr.Head, "mirror_id": led.MirrorID()}
				return output(cmd, res, func(w io.Writer) {
					fmt.Fprintf(w, "exported %d records (events through %d) of mirror %s to %s\n", tr.Count, tr.Through, led.MirrorID(), out)
				})
			})
		},
	}
	cmd.Flags().String("out", "", "file to write (atomically), or - for stdout")
	return cmd
}
