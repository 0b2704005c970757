package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
)

func reportCmd() *cobra.Command {
	imp := leaf("import FILE", "Import the return file carried from an air-gapped mirror (`mirror report export`: its lease audit and its client events; a bare fleet report too); verified with the mirror's key before anything is ingested, idempotent", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("report import: %w", err)
		}
		defer f.Close()
		return printed(cmd, func(r *controlplane.ReportImport) string {
			msg := fmt.Sprintf("imported report of mirror %s (store %s): %d aggregates (%d changed), %d events (%d new); acknowledged through %d",
				r.MirrorID, r.StoreID, r.Aggregates, r.AggregatesChanged, r.Events, r.EventsAdded, r.Through)
			if r.Audit != nil {
				msg += fmt.Sprintf("\nimported %d new audit event(s); the mirror's accepted chain now ends at event %d\n"+
					"the acknowledgement travels back in the mirror's next bundle (`bundle export --mirror %s`)",
					r.Audit.Ingested, r.Audit.Head.Seq, r.MirrorID)
			}
			return msg
		})(svc.ImportReport(ctx, f))
	})
	return group("report", "Fleet reports from mirrors", imp)
}

// mirrorAuditCmd is the return trip of an air-gapped mirror's lease audit:
// the export carried to the vendor and imported there.
func mirrorAuditCmd() *cobra.Command {
	imp := leaf("import FILE", "Import a lease audit export carried from an air-gapped mirror (`mirror audit export`), or the whole return file (`mirror report export`, then both parts are ingested as `report import` does); verified with the mirror's registered key, idempotent", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("mirror-audit import: %w", err)
		}
		defer f.Close()
		return printed(cmd, func(r *controlplane.AuditIngest) string {
			return fmt.Sprintf("imported %d new audit event(s); the mirror's accepted chain now ends at event %d", r.Ingested, r.Head.Seq)
		})(svc.ImportMirrorAudit(ctx, f))
	})
	return group("mirror-audit", "Lease audit exports carried from air-gapped mirrors", imp)
}
