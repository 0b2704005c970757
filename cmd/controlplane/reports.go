package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
)

func reportCmd() *cobra.Command {
	imp := leaf("import FILE", "Import a fleet return file carried from an air-gapped mirror (`mirror report export`); verified with the mirror's key before anything is ingested, idempotent", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("report import: %w", err)
		}
		defer f.Close()
		return printed(cmd, func(r *controlplane.ReportImport) string {
			return fmt.Sprintf("imported report of mirror %s (store %s): %d aggregates (%d changed), %d events (%d new); acknowledged through %d",
				r.MirrorID, r.StoreID, r.Aggregates, r.AggregatesChanged, r.Events, r.EventsAdded, r.Through)
		})(svc.ImportReport(ctx, f))
	})
	return group("report", "Fleet reports from mirrors", imp)
}
