package mirror

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/wire"
)

// maxLeaseBody caps a lease request body.
const maxLeaseBody = 16 << 10

// LeaseRequest is the body of PUT /v1/leases/{subject_id}.
type LeaseRequest struct {
	EntitlementID string `json:"entitlement_id"`
	SubjectType   string `json:"subject_type"`
}

// LeaseResponse answers PUT /v1/leases/{subject_id}.
type LeaseResponse struct {
	LeaseID       string    `json:"lease_id"`
	Token         string    `json:"token"`
	EntitlementID string    `json:"entitlement_id"`
	SubjectType   string    `json:"subject_type"`
	SubjectID     string    `json:"subject_id"`
	IssuedAt      time.Time `json:"issued_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	MirrorID      string    `json:"mirror_id"`
	// HolderSecret is returned once, by the acquire that bound the lease
	// to its holder; renewing (PUT again) and releasing (DELETE) need it
	// in the Outpost-Lease-Secret header.
	HolderSecret string `json:"holder_secret,omitempty"`
}

// Leases opens the mirror's lease ledger on first use: a mirror synced
// from the control plane only learns its id on its first sync, so the
// ledger cannot always be opened at start.
type Leases struct {
	st       *state.State
	mirrorID string // configured; "" to use the one the state remembers
	tenantID string
	key      func() (ed25519.PrivateKey, error)

	mu     sync.Mutex
	ledger *state.Ledger
}

// NewLeases returns the lazily opened ledger over st; key loads the
// mirror's signing key.
func NewLeases(st *state.State, mirrorID, tenantID string, key func() (ed25519.PrivateKey, error)) *Leases {
	return &Leases{st: st, mirrorID: mirrorID, tenantID: tenantID, key: key}
}

// Ledger returns the ledger, or why there is none yet.
func (l *Leases) Ledger() (*state.Ledger, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ledger != nil {
		return l.ledger, nil
	}
	id := l.mirrorID
	if id == "" {
		var err error
		if id, err = l.st.MirrorID(); err != nil {
			return nil, err
		}
	}
	if id == "" {
		return nil, state.ErrNoMirrorID
	}
	key, err := l.key()
	if err != nil {
		return nil, err
	}
	led, err := l.st.Ledger(id, key, l.tenantID)
	if err != nil {
		return nil, err
	}
	l.ledger = led
	return led, nil
}

// ExportAudit writes the mirror's signed audit export (sync.Config's
// AuditExport).
func (l *Leases) ExportAudit(ctx context.Context, w io.Writer) error {
	led, err := l.Ledger()
	if err != nil {
		return err
	}
	return led.ExportAudit(ctx, w)
}

// ExportAuditAfter is ExportAudit with only the events after sequence
// after (sync.Config's AuditExportAfter).
func (l *Leases) ExportAuditAfter(ctx context.Context, w io.Writer, after int64) error {
	led, err := l.Ledger()
	if err != nil {
		return err
	}
	return led.ExportAuditAfter(ctx, w, after)
}

// LeaseHandler serves the mirror's lease API over the ledger ledger
// returns (503 saying why while there is none) and the held, verified
// manifest current returns (nil when none):
//
//	PUT    /v1/leases/{subject_id}  {"entitlement_id","subject_type"} -> 200 LeaseResponse
//	DELETE /v1/leases/{subject_id}?entitlement_id=…[&subject_type=…] -> 204
//
// A new lease is bound to a holder secret returned once (holder_secret);
// renewing or releasing an active lease needs it in the
// Outpost-Lease-Secret header (403 without it, nothing changes).
//
// Errors are wire errors.
func LeaseHandler(ledger func() (*state.Ledger, error), current func() *snapshot.Manifest, now func() time.Time, log *slog.Logger) http.Handler {
	h := &leaseAPI{ledger: ledger, current: current, now: now, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/leases/{subject_id}", h.acquire)
	mux.HandleFunc("DELETE /v1/leases/{subject_id}", h.release)
	mux.HandleFunc("/", wire.NoRoute)
	return mux
}

type leaseAPI struct {
	ledger  func() (*state.Ledger, error)
	current func() *snapshot.Manifest
	now     func() time.Time
	log     *slog.Logger
}

func (h *leaseAPI) get(w http.ResponseWriter, r *http.Request) (*state.Ledger, bool) {
	led, err := h.ledger()
	if err != nil {
		wire.WriteError(w, r, h.log, catalog.Errorf(catalog.EUNAVAILABLE, "leases unavailable: %s", err))
		return nil, false
	}
	return led, true
}

func (h *leaseAPI) acquire(w http.ResponseWriter, r *http.Request) {
	led, ok := h.get(w, r)
	if !ok {
		return
	}
	var req LeaseRequest
	if err := catalog.DecodeStrict(http.MaxBytesReader(w, r.Body, maxLeaseBody), &req); err != nil {
		wire.WriteError(w, r, h.log, err)
		return
	}
	if req.EntitlementID == "" {
		wire.WriteError(w, r, h.log, catalog.Invalid("entitlement_id", "is required"))
		return
	}
	secret, fresh := r.Header.Get(wire.HeaderLeaseSecret), ""
	if secret != "" && !license.ValidHolderSecret(secret) {
		wire.WriteError(w, r, h.log, catalog.Errorf(catalog.EFORBIDDEN, "malformed lease holder secret"))
		return
	}
	if secret == "" {
		fresh, _ = license.NewHolderSecret()
		secret = fresh
	}
	lease, token, err := led.Acquire(r.Context(), h.current(), req.EntitlementID, req.SubjectType, r.PathValue("subject_id"), secret, h.now())
	if err != nil {
		wire.WriteError(w, r, h.log, err)
		return
	}
	resp := LeaseResponse{
		LeaseID: lease.LeaseID, Token: token, EntitlementID: lease.EntitlementID,
		SubjectType: lease.SubjectType, SubjectID: lease.SubjectID,
		IssuedAt: lease.IssuedAt, ExpiresAt: lease.ExpiresAt, MirrorID: led.MirrorID(),
	}
	if fresh != "" && lease.HolderHash == license.HolderHash(fresh) {
		resp.HolderSecret = fresh
	}
	wire.WriteJSON(w, http.StatusOK, resp)
}

func (h *leaseAPI) release(w http.ResponseWriter, r *http.Request) {
	led, ok := h.get(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	eid := q.Get("entitlement_id")
	if eid == "" {
		wire.WriteError(w, r, h.log, catalog.Invalid("entitlement_id", "query parameter is required"))
		return
	}
	if err := led.Release(r.Context(), eid, q.Get("subject_type"), r.PathValue("subject_id"), r.Header.Get(wire.HeaderLeaseSecret), false, h.now()); err != nil {
		wire.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Manifest returns the manifest of the snapshot being served, or nil.
func (s *Server) Manifest() *snapshot.Manifest {
	v := s.cur.Load()
	if v == nil || v.held == nil {
		return nil
	}
	return v.held.Manifest
}
