package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/tuf"
)

// MirrorInput registers a mirror of a tenant.
type MirrorInput struct {
	Name            string   `json:"name"` // default "mirror"
	VendorURL       string   `json:"vendor_url"`
	AllowedChannels []string `json:"allowed_channels"`
	PublicKey       string   `json:"public_key"` // base64 raw ed25519; needed for offline leases
}

// MirrorCreated is a registered mirror with its credential, which exists
// only here: the store keeps its hash (and a sealed copy).
type MirrorCreated struct {
	*catalog.Mirror
	Credential string `json:"credential"`
}

// MirrorPatch changes a mirror; nil fields stay.
type MirrorPatch struct {
	Name            *string   `json:"name"`
	AllowedChannels *[]string `json:"allowed_channels"`
	PublicKey       *string   `json:"public_key"`
	Status          *string   `json:"status"` // active or inactive
	Unchanged       Unchanged `json:"-"`
}

func validateChannels(chs []string) ([]string, error) {
	if len(chs) == 0 {
		return nil, catalog.Invalid("allowed_channels", "must list at least one channel")
	}
	if len(chs) > 64 {
		return nil, catalog.Invalid("allowed_channels", "at most 64 channels")
	}
	out := slices.Clone(chs)
	for _, c := range out {
		if err := catalog.ValidateChannel("allowed_channels", c); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func validatePublicKey(s string) error {
	if s == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return catalog.Invalid("public_key", "must be the base64 of a raw 32-byte ed25519 public key")
	}
	return nil
}

// CreateMirror registers a mirror and mints its credential.
func (a *App) CreateMirror(ctx context.Context, tenantID string, in MirrorInput) (*MirrorCreated, error) {
	t, err := a.Tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if in.Name == "" {
		in.Name = "mirror"
	}
	if err := catalog.ValidateName("name", in.Name); err != nil {
		return nil, err
	}
	if in.VendorURL != "" {
		if u, err := url.Parse(in.VendorURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, catalog.Invalid("vendor_url", "must be an absolute http or https URL")
		}
	}
	chs, err := validateChannels(in.AllowedChannels)
	if err != nil {
		return nil, err
	}
	if err := validatePublicKey(in.PublicKey); err != nil {
		return nil, err
	}
	cred := NewCredential()
	now := a.now()
	m := &catalog.Mirror{
		MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: t.TenantID, Name: in.Name, VendorURL: in.VendorURL,
		AllowedChannels: chs, PublicKey: in.PublicKey, Status: catalog.MirrorActive, CreatedAt: now, UpdatedAt: now,
		CredentialHash: HashSecret(cred),
	}
	if m.CredentialEnc, err = a.secrets.Seal(m.MirrorID, []byte(cred)); err != nil {
		return nil, err
	}
	if err := a.store.CreateMirror(ctx, m); err != nil {
		return nil, err
	}
	return &MirrorCreated{Mirror: m, Credential: cred}, nil
}

// Mirrors lists a tenant's mirrors.
func (a *App) Mirrors(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Mirror, string, error) {
	return ofTenant(ctx, a, tenantID, pg, a.store.Mirrors)
}

// Mirror returns a mirror the principal may see.
func (a *App) Mirror(ctx context.Context, id string) (*catalog.Mirror, error) {
	return load(ctx, catalog.PrefixMirror, "mirror", id, a.store.Mirror, func(x *catalog.Mirror) string { return x.TenantID })
}

// UpdateMirror changes a mirror's name, channels, public key or status. A
// status sent back unchanged is accepted whatever it is (a mirror
// reporting errors is "error").
func (a *App) UpdateMirror(ctx context.Context, id string, in MirrorPatch) (*catalog.Mirror, error) {
	if err := checkID(catalog.PrefixMirror, "mirror", id); err != nil {
		return nil, err
	}
	var chs []string
	if in.AllowedChannels != nil {
		var err error
		if chs, err = validateChannels(*in.AllowedChannels); err != nil {
			return nil, err
		}
	}
	if in.PublicKey != nil {
		if err := validatePublicKey(*in.PublicKey); err != nil {
			return nil, err
		}
	}
	if in.Name != nil {
		if err := catalog.ValidateName("name", *in.Name); err != nil {
			return nil, err
		}
	}
	return a.store.UpdateMirror(ctx, id, func(m *catalog.Mirror) error {
		if err := in.Unchanged.check(m); err != nil {
			return err
		}
		if in.Status != nil && *in.Status != m.Status {
			if err := catalog.ValidateEnum("status", *in.Status, []string{catalog.MirrorActive, catalog.MirrorInactive}); err != nil {
				return err
			}
			m.Status = *in.Status
		}
		if in.Name != nil {
			m.Name = *in.Name
		}
		if chs != nil {
			m.AllowedChannels = chs
		}
		if in.PublicKey != nil {
			m.PublicKey = *in.PublicKey
		}
		m.UpdatedAt = a.now()
		return nil
	})
}

// DeactivateMirror deactivates a mirror: its credential stops working at
// once. The record stays for the audit trail.
func (a *App) DeactivateMirror(ctx context.Context, id string) (*catalog.Mirror, error) {
	inactive := catalog.MirrorInactive
	return a.UpdateMirror(ctx, id, MirrorPatch{Status: &inactive})
}

// The operations below are a mirror's own, called with its credential
// (the principal's Mirror).

// MirrorSelf is what a mirror learns about itself.
type MirrorSelf struct {
	MirrorID        string   `json:"mirror_id"`
	TenantID        string   `json:"tenant_id"`
	AllowedChannels []string `json:"allowed_channels"`
	Status          string   `json:"status"`
}

func callingMirror(ctx context.Context) (*catalog.Mirror, error) {
	if p := principal(ctx); p.Role == RoleMirror && p.Mirror != nil {
		return p.Mirror, nil
	}
	return nil, catalog.Errorf(catalog.EFORBIDDEN, "this operation needs a mirror credential")
}

// Self describes the calling mirror.
func (a *App) Self(ctx context.Context) (*MirrorSelf, error) {
	m, err := callingMirror(ctx)
	if err != nil {
		return nil, err
	}
	return &MirrorSelf{MirrorID: m.MirrorID, TenantID: m.TenantID, AllowedChannels: m.AllowedChannels, Status: m.Status}, nil
}

// LatestSnapshot returns the calling mirror's tenant's newest snapshot,
// or nil when its sequence is not above after (the mirror holds it).
func (a *App) LatestSnapshot(ctx context.Context, after int64) (*catalog.Snapshot, error) {
	m, err := callingMirror(ctx)
	if err != nil {
		return nil, err
	}
	if after < 0 {
		return nil, catalog.Invalid("after", "must be a non-negative integer")
	}
	head, err := a.latestHead(ctx, m.TenantID)
	if err != nil {
		return nil, err
	}
	if head.Sequence <= after {
		return nil, nil
	}
	// One shared copy of the envelope however many mirrors ask at once
	// (the caller must not modify it).
	return a.latestSnapshot(ctx, m.TenantID, head)
}

// SyncReport is what a mirror reports after a sync.
type SyncReport struct {
	Status         string `json:"status"` // active (default) or error
	LastSnapshotID string `json:"last_snapshot_id"`
	Sequence       int64  `json:"sequence"`
	Error          string `json:"error"` // kept to 2000 bytes
}

// ReportSync records the calling mirror's sync outcome.
func (a *App) ReportSync(ctx context.Context, in SyncReport) (*catalog.Mirror, error) {
	caller, err := callingMirror(ctx)
	if err != nil {
		return nil, err
	}
	if in.Status == "" {
		in.Status = catalog.MirrorActive
	}
	if err := catalog.ValidateEnum("status", in.Status, []string{catalog.MirrorActive, catalog.MirrorError}); err != nil {
		return nil, err
	}
	// A trust: tuf mirror names the TUF snapshot version it holds.
	if _, isTUF := tuf.ParseVersionID(in.LastSnapshotID); in.LastSnapshotID != "" && !isTUF && !catalog.ValidID(catalog.PrefixSnapshot, in.LastSnapshotID) {
		return nil, catalog.Invalid("last_snapshot_id", "is neither a snapshot id (snp_…) nor a TUF snapshot version (tuf-N)")
	}
	if len(in.Error) > 2000 {
		in.Error = in.Error[:2000]
	}
	now := a.now()
	// The caller's record as authenticated: its last contact before this
	// report.
	a.noteRecovered(ctx, caller, now)
	return a.store.UpdateMirror(ctx, caller.MirrorID, func(m *catalog.Mirror) error {
		if m.Status == catalog.MirrorInactive {
			return catalog.Errorf(catalog.EUNAUTHORIZED, "mirror is deactivated")
		}
		m.Status = in.Status
		m.LastSyncAt = &now
		if in.LastSnapshotID != "" {
			m.LastSnapshotID = in.LastSnapshotID
		}
		m.LastSyncError = in.Error
		m.UpdatedAt = now
		return nil
	})
}

// MaxAuditUpload caps an uploaded mirror audit export.
const MaxAuditUpload = 256 << 20

// AuditIngest counts what an audit upload added, and the head of the
// mirror's chain the control plane now holds.
type AuditIngest struct {
	Received int               `json:"received"`
	Ingested int               `json:"ingested"`
	Head     catalog.AuditHead `json:"head"`
}

// auditBatch is how many events one ingest transaction appends.
const auditBatch = 500

// EventForkDetected is the audit event of an upload whose authentic chain
// does not extend the mirror's accepted head: a cloned or restored mirror
// data directory.
const EventForkDetected = "mirror.fork_detected"

// AuditHead is the head of the calling mirror's audit chain the control
// plane accepted; the mirror uploads the events after it.
func (a *App) AuditHead(ctx context.Context) (*catalog.AuditHead, error) {
	m, err := callingMirror(ctx)
	if err != nil {
		return nil, err
	}
	h := m.AuditHead
	return &h, nil
}

// IngestAudit ingests the calling mirror's exported audit chain. The
// export is verified as a stream (memory bounded by one line): the chain
// must extend the head accepted so far, every event and the trailer must
// be the authenticated mirror's, and the trailer's signature must verify
// with its key. Verified events are staged in a temporary file and only
// appended (a batch per transaction, moving the accepted head) once the
// whole export verified. An authentic chain that does not extend the
// accepted head is refused (409) and recorded as mirror.fork_detected.
func (a *App) IngestAudit(ctx context.Context, export io.Reader) (*AuditIngest, error) {
	m, err := callingMirror(ctx)
	if err != nil {
		return nil, err
	}
	return a.ingestAudit(ctx, m, export)
}

// ImportMirrorAudit ingests an audit export carried by hand from an
// air-gapped mirror (`mirror audit export`): admin only. The mirror is
// the one the export's trailer names; from there it is IngestAudit's
// path, verified with that mirror's registered key, idempotent.
func (a *App) ImportMirrorAudit(ctx context.Context, export io.Reader) (*AuditIngest, error) {
	if principal(ctx).Role != catalog.RoleAdmin {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "importing a mirror's audit export needs an admin token")
	}
	f, err := os.CreateTemp("", "outpost-audit-import-*.jsonl")
	if err != nil {
		return nil, fmt.Errorf("import mirror audit: spool: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(export, MaxAuditUpload+1))
	if err != nil {
		return nil, fmt.Errorf("import mirror audit: spool: %w", err)
	}
	if n > MaxAuditUpload {
		return nil, catalog.Errorf(catalog.ETOOLARGE, "audit export larger than %d bytes", MaxAuditUpload)
	}
	first := make([]byte, min(n, 64<<10))
	if _, err := f.ReadAt(first, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("import mirror audit: %w", err)
	}
	if i := bytes.IndexByte(first, '\n'); i >= 0 && returnfile.IsReturnFile(first[:i]) {
		// The one return file (`mirror report export`): both parts are
		// ingested, as `report import` does.
		r, err := a.importReturn(ctx, nil, f)
		if err != nil {
			return nil, err
		}
		return r.Audit, nil
	}
	id, err := auditTrailerMirror(f, n)
	if err != nil {
		return nil, err
	}
	m, err := a.store.Mirror(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("import mirror audit: %w", err)
	}
	return a.ingestAudit(ctx, m, f)
}

// auditTrailerMirror reads the mirror_id of an export's trailer (its last
// line) without reading the whole file.
func auditTrailerMirror(f *os.File, size int64) (string, error) {
	const tail = license.MaxAuditLine
	off := max(size-tail, 0)
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("import mirror audit: %w", err)
	}
	buf = bytes.TrimRight(buf, "\n")
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	}
	var tr struct {
		MirrorID string `json:"mirror_id"`
	}
	if err := json.Unmarshal(buf, &tr); err != nil || !catalog.ValidID(catalog.PrefixMirror, tr.MirrorID) {
		return "", catalog.Errorf(catalog.EINVALID, "audit export rejected: its last line is not a trailer naming a mirror (write it with `mirror audit export`)")
	}
	return tr.MirrorID, nil
}

func (a *App) ingestAudit(ctx context.Context, m *catalog.Mirror, export io.Reader) (*AuditIngest, error) {
	pub, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, catalog.Errorf(catalog.ECONFLICT, "mirror %s has no registered public key", m.MirrorID)
	}
	spool, err := os.CreateTemp("", "outpost-audit-*.jsonl")
	if err != nil {
		return nil, fmt.Errorf("ingest audit: %w", err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	bw := bufio.NewWriter(spool)
	enc := json.NewEncoder(bw)
	staged := 0
	from := m.AuditHead
	_, err = license.ReadAuditExportFrom(export, ed25519.PublicKey(pub), m.MirrorID, from, MaxAuditUpload, func(ev *catalog.AuditEvent) error {
		if ev.TenantID != "" && ev.TenantID != m.TenantID {
			return catalog.Errorf(catalog.EINVALID, "audit export rejected: event %s is for another tenant", ev.EventID)
		}
		staged++
		return enc.Encode(ev)
	})
	if err != nil {
		var fork *license.AuditForkError
		var broken *audit.BrokenLinkError
		var me *http.MaxBytesError
		switch {
		case errors.As(err, &fork):
			a.recordFork(ctx, m, fork)
			return nil, catalog.Errorf(catalog.ECONFLICT, "audit export rejected: %v; recorded as %s", fork, EventForkDetected)
		case errors.As(err, &broken):
			return nil, catalog.Errorf(catalog.EINVALID, "audit export rejected: %v", broken)
		case errors.As(err, &me):
			return nil, catalog.Errorf(catalog.ETOOLARGE, "audit export larger than %d bytes", MaxAuditUpload)
		case catalog.ErrorCode(err) != catalog.EINTERNAL:
			return nil, err
		case errors.Is(err, license.ErrAuditExport):
			return nil, catalog.Errorf(catalog.EINVALID, "audit export rejected: %v", err)
		}
		return nil, fmt.Errorf("ingest audit: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("ingest audit: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("ingest audit: %w", err)
	}
	res := &AuditIngest{Received: staged, Head: from}
	dec := json.NewDecoder(bufio.NewReader(spool))
	batch := make([]*catalog.AuditEvent, 0, auditBatch)
	head := from
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		last := batch[len(batch)-1]
		to := catalog.AuditHead{Seq: last.Seq, Hash: last.Hash}
		in := make([]*catalog.AuditEvent, len(batch))
		for i, ev := range batch {
			payload, err := json.Marshal(map[string]any{"mirror_id": m.MirrorID, "event": ev})
			if err != nil {
				return err
			}
			in[i] = &catalog.AuditEvent{
				TenantID: m.TenantID, ActorType: catalog.ActorMirror, ActorID: m.MirrorID,
				EventType: "mirror." + ev.EventType, Payload: payload, CreatedAt: ev.CreatedAt,
			}
		}
		if err := a.store.AppendMirrorAudit(ctx, m.MirrorID, head, to, in); err != nil {
			return err
		}
		res.Ingested += len(batch)
		head, res.Head = to, to
		batch = batch[:0]
		return nil
	}
	for range staged {
		var ev catalog.AuditEvent
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("ingest audit: staged events: %w", err)
		}
		batch = append(batch, &ev)
		if len(batch) == auditBatch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return res, nil
}

// recordFork appends mirror.fork_detected for m (a failure is logged: the
// upload is refused either way).
func (a *App) recordFork(ctx context.Context, m *catalog.Mirror, fork *license.AuditForkError) {
	payload, _ := json.Marshal(map[string]any{
		"mirror_id": m.MirrorID, "reason": fork.Reason, "accepted": fork.Accepted, "presented": fork.Presented,
	})
	ev := &catalog.AuditEvent{TenantID: m.TenantID, ActorType: catalog.ActorMirror, ActorID: m.MirrorID, EventType: EventForkDetected, Payload: payload}
	key := "fork:" + m.MirrorID + ":" + strconv.FormatInt(fork.Accepted.Seq, 10) + ":" + fork.Presented.Hash
	if _, err := a.store.AppendAudit(context.WithoutCancel(ctx), ev, key); err != nil {
		a.log.Error("record mirror fork", "mirror_id", m.MirrorID, "err", err)
	}
	a.log.Warn("mirror audit chain forked: a cloned or restored data dir?", "mirror_id", m.MirrorID, "reason", fork.Reason,
		"accepted_seq", fork.Accepted.Seq, "presented_seq", fork.Presented.Seq)
}
