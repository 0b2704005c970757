package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/mirror/state"
)

// Audit event types the syncer records in the mirror's chain, in the
// transaction that commits the snapshot.
const (
	EventSnapshotSynced   = "snapshot.synced"
	EventSnapshotImported = "snapshot.imported"
)

// autoUploadTimeout bounds the best-effort upload after a sync.
const autoUploadTimeout = 2 * time.Minute

// snapshotEvent is the payload of a commit event.
type snapshotEvent struct {
	SnapshotID       string   `json:"snapshot_id"`
	Sequence         int64    `json:"sequence"`
	Hash             string   `json:"hash"`
	PreviousSequence int64    `json:"previous_sequence"`
	Source           string   `json:"source"`
	Channels         []string `json:"channels"`
	Fetched          int      `json:"fetched"`
	Bytes            int64    `json:"bytes"`
}

// AuditIngest is the control plane's answer to an audit upload.
type AuditIngest struct {
	Received int `json:"received"`
	Ingested int `json:"ingested"`
}

// AuditUploader is a Source that takes the mirror's audit chain (the
// control plane).
type AuditUploader interface {
	UploadAudit(ctx context.Context, export io.Reader) (AuditIngest, error)
}

// AuditHeader is a source that says how much of the mirror's audit chain
// it already accepted (the sequence of its head), so an upload carries
// only the events after it.
type AuditHeader interface {
	AuditHead(ctx context.Context) (int64, error)
}

// ErrNoMirrorID means the mirror does not know its own id yet.
var ErrNoMirrorID = state.ErrNoMirrorID

// MirrorID is the mirror's id: the configured one, else the one the
// control plane reported; "" when neither is known.
func (s *Syncer) MirrorID() (string, error) {
	if s.cfg.MirrorID != "" {
		return s.cfg.MirrorID, nil
	}
	return s.st.MirrorID()
}

// rememberMirrorID keeps the id from the control plane's record, refusing
// one that contradicts the config or the state.
func (s *Syncer) rememberMirrorID(id string) error {
	if id == "" {
		return nil
	}
	if !catalog.ValidID(catalog.PrefixMirror, id) {
		// Not worth failing the sync over; leases and audit need a real one.
		s.cfg.Logger.Warn("control plane reported an invalid mirror id; not remembered", "mirror_id", id)
		return nil
	}
	if s.cfg.MirrorID != "" && id != s.cfg.MirrorID {
		return permanent("control plane says this credential is mirror %s, config mirror_id is %s", id, s.cfg.MirrorID)
	}
	if err := s.st.SetMirrorID(id); err != nil {
		if errors.Is(err, state.ErrOtherMirror) {
			return &PermanentError{Err: err}
		}
		return err
	}
	return nil
}

// commitEvent is the audit event recording a snapshot commit, committed
// in the same transaction. Without a known mirror id there is no actor to
// record, so the commit goes ahead unrecorded (and says so): nil.
func (s *Syncer) commitEvent(eventType string, payload snapshotEvent) (*catalog.AuditEvent, error) {
	id, err := s.MirrorID()
	if err != nil {
		return nil, err
	}
	if id == "" {
		s.cfg.Logger.Warn("snapshot commit not recorded in the audit log", "reason", ErrNoMirrorID.Error())
		return nil, nil
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("audit event: %w", err)
	}
	return &catalog.AuditEvent{
		EventID: catalog.NewID(catalog.PrefixEvent), TenantID: s.tenantID(),
		ActorType: catalog.ActorMirror, ActorID: id, EventType: eventType,
		Payload: raw, CreatedAt: s.cfg.Now().UTC(),
	}, nil
}

// UploadAudit streams the mirror's signed audit export to the source (the
// control plane), which ingests each event once.
func (s *Syncer) UploadAudit(ctx context.Context) (AuditIngest, error) {
	up, ok := s.src.(AuditUploader)
	if !ok || s.src == nil {
		return AuditIngest{}, errors.New("upload audit: the configured source does not take audit uploads (source: controlplane does)")
	}
	if s.cfg.AuditExport == nil {
		return AuditIngest{}, errors.New("upload audit: no audit export configured")
	}
	s.upMu.Lock()
	defer s.upMu.Unlock()
	head, err := s.st.AuditHead()
	if err != nil {
		return AuditIngest{}, fmt.Errorf("upload audit: %w", err)
	}
	// The sequence of the head read before the export: the export holds
	// at least this much, so an accepted upload acknowledges it.
	ast, err := s.st.AuditState(ctx)
	if err != nil {
		return AuditIngest{}, fmt.Errorf("upload audit: %w", err)
	}
	export := s.cfg.AuditExport
	if ah, ok := s.src.(AuditHeader); ok && s.cfg.AuditExportAfter != nil {
		after, err := ah.AuditHead(ctx)
		if err != nil {
			return AuditIngest{}, fmt.Errorf("upload audit: %w", err)
		}
		export = func(ctx context.Context, w io.Writer) error { return s.cfg.AuditExportAfter(ctx, w, after) }
		s.ackAudit(ctx, after) // the control plane says it holds these
	}
	// Streamed through a pipe: the export is never held in memory.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(export(ctx, pw))
	}()
	res, err := up.UploadAudit(ctx, pr)
	pr.CloseWithError(errors.New("upload finished"))
	<-done // the export's read transaction must end before the state closes
	if err != nil {
		return res, fmt.Errorf("upload audit: %w", err)
	}
	s.uploaded = head
	s.ackAudit(ctx, ast.Head.Seq)
	return res, nil
}

// ackAudit records the control plane's acknowledgement of the chain up
// to seq and prunes what the retention lets go (Config.AuditRetention).
// Failures are logged: the upload itself succeeded.
func (s *Syncer) ackAudit(ctx context.Context, seq int64) {
	if seq <= 0 {
		return
	}
	if err := s.st.AckAudit(ctx, seq); err != nil {
		s.cfg.Logger.Warn("audit acknowledgement not recorded", "err", err)
		return
	}
	if s.cfg.AuditRetention < 0 {
		return
	}
	n, err := s.st.PruneAudit(ctx, s.cfg.Now().Add(-s.cfg.AuditRetention))
	if err != nil {
		s.cfg.Logger.Warn("audit prune failed", "err", err)
		return
	}
	if n > 0 {
		s.cfg.Logger.Info("audit events pruned", "events", n, "acknowledged_through", seq)
	}
}

// uploadAuditBestEffort uploads the chain when it grew since the last
// acknowledged upload; failures are logged, never a sync failure.
func (s *Syncer) uploadAuditBestEffort(ctx context.Context) {
	if s.cfg.AuditExport == nil {
		return
	}
	if _, ok := s.src.(AuditUploader); !ok || s.src == nil {
		return
	}
	head, err := s.st.AuditHead()
	if err != nil {
		s.cfg.Logger.Warn("audit upload skipped", "err", err)
		return
	}
	s.upMu.Lock()
	same := head == "" || head == s.uploaded
	s.upMu.Unlock()
	if same {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, autoUploadTimeout)
	defer cancel()
	res, err := s.UploadAudit(ctx)
	if err != nil {
		s.cfg.Logger.Warn("audit upload failed", "err", err)
		return
	}
	s.cfg.Logger.Info("audit uploaded", "received", res.Received, "ingested", res.Ingested)
}

// AuditHead implements AuditHeader (control plane only): GET
// /v1/mirror/audit/head. A control plane without the route (404) has
// accepted nothing this way: 0, the whole chain.
func (s *HTTPSource) AuditHead(ctx context.Context) (int64, error) {
	if s.upstream {
		return 0, permanent("an upstream mirror takes no audit uploads")
	}
	req, err := s.request(ctx, http.MethodGet, "/v1/mirror/audit/head", nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("get audit head: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, statusError("get audit head", resp)
	}
	var head struct {
		Seq int64 `json:"seq"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&head); err != nil || head.Seq < 0 {
		return 0, fmt.Errorf("decode audit head: %v", err)
	}
	return head.Seq, nil
}

// UploadAudit implements AuditUploader (control plane only): POST
// /v1/mirror/audit with the export as the body.
func (s *HTTPSource) UploadAudit(ctx context.Context, export io.Reader) (AuditIngest, error) {
	return postNDJSON[AuditIngest](ctx, s, "/v1/mirror/audit", "audit", export)
}

// postNDJSON posts a signed JSON-lines file the control plane ingests
// (audit export, fleet report) and decodes its JSON answer.
func postNDJSON[Out any](ctx context.Context, s *HTTPSource, path, what string, body io.Reader) (Out, error) {
	var out Out
	if s.upstream {
		return out, permanent("an upstream mirror takes no %s uploads", what)
	}
	req, err := s.request(ctx, http.MethodPost, path, body)
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return out, fmt.Errorf("post %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, statusError("post "+what, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return out, fmt.Errorf("decode %s answer: %w", what, err)
	}
	return out, nil
}
