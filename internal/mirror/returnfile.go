package mirror

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/returnfile"
)

// ReturnSummary says what a return file holds.
type ReturnSummary struct {
	MirrorID     string `json:"mirror_id"`
	AuditAfter   int64  `json:"audit_after"`   // the acknowledged audit head the audit part starts after
	AuditLines   int64  `json:"audit_lines"`   // the audit part's lines (events and its trailer)
	FleetLines   int64  `json:"fleet_lines"`   // the fleet part's lines (header, aggregates, events, trailer)
	FleetThrough uint64 `json:"fleet_through"` // the last fleet event the file accounts for
	Head         string `json:"head"`
}

// lineCount counts newlines written through it.
type lineCount int64

func (c *lineCount) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			*c++
		}
	}
	return len(p), nil
}

// WriteReturnFile streams the air-gapped mirror's one return file
// (outpost-return-v1, internal/returnfile) to w: its audit chain after the
// head the vendor acknowledged (State.AuditAck), then agg's fleet report
// (the aggregates and the events above the acknowledged cursor), under
// one trailer signed with the mirror key. Memory stays flat.
func (l *Leases) WriteReturnFile(ctx context.Context, w io.Writer, agg *fleet.Aggregator, now time.Time) (ReturnSummary, error) {
	led, err := l.Ledger()
	if err != nil {
		return ReturnSummary{}, fmt.Errorf("return file: %w", err)
	}
	key, err := l.key()
	if err != nil {
		return ReturnSummary{}, fmt.Errorf("return file: %w", err)
	}
	ack, err := l.st.AuditAck()
	if err != nil {
		return ReturnSummary{}, fmt.Errorf("return file: %w", err)
	}
	s := ReturnSummary{MirrorID: led.MirrorID(), AuditAfter: ack.Seq}
	rw, err := returnfile.NewWriter(w, returnfile.Header{MirrorID: led.MirrorID(), TenantID: l.tenantID, CreatedAt: now}, key)
	if err != nil {
		return s, fmt.Errorf("return file: %w", err)
	}
	pw, err := rw.Part(returnfile.PartAudit)
	if err != nil {
		return s, fmt.Errorf("return file: %w", err)
	}
	var n lineCount
	if err := led.ExportAuditAfter(ctx, io.MultiWriter(pw, &n), ack.Seq); err != nil {
		return s, fmt.Errorf("return file: %w", err)
	}
	s.AuditLines, n = int64(n), 0
	pw, err = rw.Part(returnfile.PartFleet)
	if err != nil {
		return s, fmt.Errorf("return file: %w", err)
	}
	ftr, err := agg.ExportReport(ctx, io.MultiWriter(pw, &n), fleet.ExportIdentity{MirrorID: led.MirrorID(), TenantID: l.tenantID, Key: key}, now)
	if err != nil {
		return s, fmt.Errorf("return file: %w", err)
	}
	s.FleetLines, s.FleetThrough = int64(n), ftr.Through
	tr, err := rw.Close()
	if err != nil {
		return s, fmt.Errorf("return file: %w", err)
	}
	s.Head = tr.Head
	return s, nil
}
