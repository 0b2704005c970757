package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ReportAck is the control plane's answer to a fleet report upload:
// Through is the acknowledgement it holds for the mirror's event store.
type ReportAck struct {
	Through     uint64 `json:"through"`
	EventsAdded int64  `json:"events_added"`
}

// ReportUploader is a Source that takes the mirror's fleet return file
// (the control plane).
type ReportUploader interface {
	UploadReport(ctx context.Context, report io.Reader) (ReportAck, error)
}

// UploadReport streams the fleet return file (the client events the
// vendor has not acknowledged, and every aggregate) to the source and
// hands the acknowledgement to FleetAck.
func (s *Syncer) UploadReport(ctx context.Context) (ReportAck, error) {
	up, ok := s.src.(ReportUploader)
	if !ok || s.src == nil {
		return ReportAck{}, errors.New("upload report: the configured source does not take fleet reports (source: controlplane does)")
	}
	if s.cfg.FleetReport == nil {
		return ReportAck{}, errors.New("upload report: no fleet report configured")
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(s.cfg.FleetReport(ctx, pw))
	}()
	res, err := up.UploadReport(ctx, pr)
	pr.CloseWithError(errors.New("upload finished"))
	<-done // the export's read transaction must end before the state closes
	if err != nil {
		return res, fmt.Errorf("upload report: %w", err)
	}
	if s.cfg.FleetAck != nil {
		if err := s.cfg.FleetAck(ctx, res.Through); err != nil {
			return res, fmt.Errorf("upload report: acknowledge %d: %w", res.Through, err)
		}
	}
	return res, nil
}

// uploadReportBestEffort ships the fleet report after a sync; failures
// are logged, never a sync failure (the next sync sends them again).
func (s *Syncer) uploadReportBestEffort(ctx context.Context) {
	if s.cfg.FleetReport == nil {
		return
	}
	if _, ok := s.src.(ReportUploader); !ok || s.src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, autoUploadTimeout)
	defer cancel()
	res, err := s.UploadReport(ctx)
	if err != nil {
		s.cfg.Logger.Warn("fleet report upload failed", "err", err)
		return
	}
	s.cfg.Logger.Info("fleet report uploaded", "acknowledged_through", res.Through, "events_added", res.EventsAdded)
}

// UploadReport implements ReportUploader (control plane only): POST
// /v1/mirror/reports with the return file as the body.
func (s *HTTPSource) UploadReport(ctx context.Context, report io.Reader) (ReportAck, error) {
	return postNDJSON[ReportAck](ctx, s, "/v1/mirror/reports", "report", report)
}
