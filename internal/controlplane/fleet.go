package controlplane

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/kvsink"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/store/kv"
)

// Fleet is the vendor's side of fleet feedback: signed return files of
// install reports from mirrors (docs/fleet.md).
type Fleet interface {
	// ImportReport ingests a return file carried by hand from an
	// air-gapped mirror (admin); the mirror is the file's header's, and
	// its registered key must verify the file.
	ImportReport(ctx context.Context, body io.Reader) (*ReportImport, error)
	// UploadReport ingests the calling mirror's return file (online
	// shipping after a sync); the answer carries the acknowledgement.
	UploadReport(ctx context.Context, body io.Reader) (*ReportImport, error)
}

// MaxReportUpload caps a return file (the fleet package's default cap).
const MaxReportUpload int64 = 4 << 30

// EventReportImported is the audit event of a fleet report import.
const EventReportImported = "report.imported"

// ReportImport is what an import verified and changed. Through is the
// acknowledgement the control plane now holds for the mirror's store:
// every event up to it has arrived, so the mirror's next report starts
// after it.
type ReportImport struct {
	MirrorID          string `json:"mirror_id"`
	TenantID          string `json:"tenant_id"`
	StoreID           string `json:"store_id"`
	Aggregates        int64  `json:"aggregates"`
	Events            int64  `json:"events"`
	AggregatesChanged int64  `json:"aggregates_changed"`
	EventsAdded       int64  `json:"events_added"`
	Through           uint64 `json:"through"`
	// Audit is what the audit part of a return file (outpost-return-v1)
	// added; nil for a bare fleet report.
	Audit *AuditIngest `json:"audit,omitempty"`
}

// fleetSink is the vendor's ingested fleet state on the store's own
// backend; nil when the store is not on store/kv (then imports are
// unavailable).
func fleetSinkOf(st any) *kvsink.Sink {
	if b, ok := st.(interface{ Backend() kv.Backend }); ok {
		return kvsink.New(b.Backend())
	}
	return nil
}

// FleetSink is the ingested fleet state (nil without one).
func (a *App) FleetSink() *kvsink.Sink { return a.fleet }

// ImportReport ingests a carried return file (admin only).
func (a *App) ImportReport(ctx context.Context, body io.Reader) (*ReportImport, error) {
	if principal(ctx).Role != catalog.RoleAdmin {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "importing a fleet report needs an admin token")
	}
	return a.importReport(ctx, nil, body)
}

// UploadReport ingests the calling mirror's return file.
func (a *App) UploadReport(ctx context.Context, body io.Reader) (*ReportImport, error) {
	m, err := callingMirror(ctx)
	if err != nil {
		return nil, err
	}
	return a.importReport(ctx, m, body)
}

// importReport spools body to a temp file (the import reads it twice:
// verify everything, then ingest), finds the mirror (pinned when the
// caller is one, else the header's), verifies the file with the mirror's
// registered key before anything is ingested, ingests it idempotently and
// records report.imported in the audit log.
func (a *App) importReport(ctx context.Context, pinned *catalog.Mirror, body io.Reader) (*ReportImport, error) {
	if a.fleet == nil {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "this store keeps no fleet reports")
	}
	f, err := os.CreateTemp("", "outpost-report-*")
	if err != nil {
		return nil, fmt.Errorf("import report: spool: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(body, MaxReportUpload+1))
	if err != nil {
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			return nil, catalog.Errorf(catalog.ETOOLARGE, "fleet report larger than %d bytes", me.Limit)
		}
		return nil, fmt.Errorf("import report: spool: %w", err)
	}
	if n > MaxReportUpload {
		return nil, catalog.Errorf(catalog.ETOOLARGE, "fleet report larger than %d bytes", MaxReportUpload)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("import report: rewind: %w", err)
	}
	first, err := bufio.NewReaderSize(io.LimitReader(f, 64<<10), 64<<10).ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("import report: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("import report: rewind: %w", err)
	}
	if returnfile.IsReturnFile(first) {
		return a.importReturn(ctx, pinned, f)
	}
	m := pinned
	if m == nil {
		hdr, err := peekReportHeader(f)
		if err != nil {
			return nil, err
		}
		if m, err = a.store.Mirror(ctx, hdr.MirrorID); err != nil {
			if catalog.ErrorCode(err) == catalog.ENOTFOUND {
				return nil, catalog.Errorf(catalog.EINVALID, "fleet report refused: mirror %s is not registered", hdr.MirrorID)
			}
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("import report: rewind: %w", err)
		}
	}
	return a.importFleet(ctx, m, f)
}

// importFleet verifies a fleet report (rs, read twice) with m's registered
// key, ingests it idempotently and records report.imported.
func (a *App) importFleet(ctx context.Context, m *catalog.Mirror, f io.ReadSeeker) (*ReportImport, error) {
	pub, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, catalog.Errorf(catalog.ECONFLICT, "mirror %s has no registered public key", m.MirrorID)
	}
	opts := fleet.ReadOptions{MirrorID: m.MirrorID, MaxBytes: MaxReportUpload}
	res, err := fleet.ImportBatched(ctx, f, ed25519.PublicKey(pub), opts, a.fleet.Run, 1000)
	if err != nil {
		if errors.Is(err, fleet.ErrReport) {
			return nil, catalog.Errorf(catalog.EINVALID, "%v", err)
		}
		return nil, err
	}
	h := res.Header
	if h.TenantID != "" && h.TenantID != m.TenantID {
		// Verified, so the mirror signed it; still not its tenant's data.
		return nil, catalog.Errorf(catalog.EINVALID, "fleet report refused: tenant %s is not mirror %s's", h.TenantID, m.MirrorID)
	}
	out := &ReportImport{
		MirrorID: m.MirrorID, TenantID: m.TenantID, StoreID: h.StoreID,
		Aggregates: res.Aggregates, Events: res.Events,
		AggregatesChanged: res.AggregatesChanged, EventsAdded: res.EventsAdded,
		Through: res.Trailer.Through,
	}
	cursors, err := a.fleet.Cursors(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cursors {
		if c.MirrorID == m.MirrorID && c.StoreID == h.StoreID && c.Through > out.Through {
			out.Through = c.Through
		}
	}
	payload, err := json.Marshal(map[string]any{
		"mirror_id": m.MirrorID, "store_id": h.StoreID, "since": h.Since, "through": res.Trailer.Through,
		"report_created_at": h.CreatedAt, "aggregates": res.Aggregates, "events": res.Events,
		"aggregates_changed": res.AggregatesChanged, "events_added": res.EventsAdded, "head": res.Trailer.Head,
	})
	if err != nil {
		return nil, err
	}
	ev := &catalog.AuditEvent{
		EventID: catalog.NewID(catalog.PrefixEvent), TenantID: m.TenantID, EventType: EventReportImported,
		Payload: payload, CreatedAt: a.now(),
	}
	if _, err := a.store.AppendAudit(ctx, ev, "report:"+m.MirrorID+":"+h.StoreID+":"+res.Trailer.Head); err != nil {
		return nil, err
	}
	return out, nil
}

// peekReportHeader reads the mirror id of a return file's first line; the
// import verifies everything afterwards with that mirror's key.
func peekReportHeader(r io.Reader) (*fleet.ReportHeader, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(r, 64<<10), 64<<10).ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, catalog.Errorf(catalog.EINVALID, "fleet report refused: header: %v", err)
	}
	var h fleet.ReportHeader
	if err := json.Unmarshal(line, &h); err != nil || h.Format != fleet.ReportFormat {
		return nil, catalog.Errorf(catalog.EINVALID, "fleet report refused: the first line is not a %s header", fleet.ReportFormat)
	}
	if !catalog.ValidID(catalog.PrefixMirror, h.MirrorID) {
		return nil, catalog.Errorf(catalog.EINVALID, "fleet report refused: header mirror_id %q is not a mirror id", h.MirrorID)
	}
	return &h, nil
}

// FleetEventRetention is how long the vendor keeps the individual events
// of fleet reports, by their received_at at the mirror: 90 days, the oldest
// event a mirror accepts. Aggregates and cursors, which the health gates
// use, are small and kept.
const FleetEventRetention = 90 * 24 * time.Hour

// PruneFleetEvents drops fleet events older than FleetEventRetention
// (housekeeping). It returns how many it dropped.
func (a *App) PruneFleetEvents(ctx context.Context) (int, error) {
	if a.fleet == nil {
		return 0, nil
	}
	return a.fleet.Prune(ctx, a.now().Add(-FleetEventRetention))
}
