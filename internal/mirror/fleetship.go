package mirror

import (
	"context"
	"io"
	"time"

	"github.com/outpost/outpost/internal/fleet"
)

// FleetReport writes agg's signed return file as this mirror (sync.Config's
// FleetReport): online shipping after a sync.
func (l *Leases) FleetReport(agg *fleet.Aggregator, now func() time.Time) func(ctx context.Context, w io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		led, err := l.Ledger()
		if err != nil {
			return err
		}
		key, err := l.key()
		if err != nil {
			return err
		}
		_, err = agg.ExportReport(ctx, w, fleet.ExportIdentity{MirrorID: led.MirrorID(), TenantID: l.tenantID, Key: key}, now().UTC())
		return err
	}
}
