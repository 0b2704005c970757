package license

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
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
}

// Handler serves the mirror's lease API over l, with current returning
// the held (verified) manifest or nil:
//
//	PUT    /v1/leases/{subject_id}                    {"entitlement_id","subject_type"} -> 200 LeaseResponse
//	DELETE /v1/leases/{subject_id}?entitlement_id=...[&subject_type=...] -> 204
//
// Errors are {"error":{"code","message"}} with the code's status.
func Handler(l *Ledger, current func() *snapshot.Manifest) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/leases/{subject_id}", func(w http.ResponseWriter, r *http.Request) {
		subject := r.PathValue("subject_id")
		var req LeaseRequest
		if err := catalog.DecodeStrict(http.MaxBytesReader(w, r.Body, maxLeaseBody), &req); err != nil {
			writeError(w, r, err)
			return
		}
		if req.EntitlementID == "" {
			writeError(w, r, catalog.Invalid("entitlement_id", "is required"))
			return
		}
		lease, token, err := l.Acquire(r.Context(), current(), req.EntitlementID, req.SubjectType, subject, time.Now())
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, LeaseResponse{
			LeaseID: lease.LeaseID, Token: token, EntitlementID: lease.EntitlementID,
			SubjectType: lease.SubjectType, SubjectID: lease.SubjectID,
			IssuedAt: lease.IssuedAt, ExpiresAt: lease.ExpiresAt, MirrorID: l.mirrorID,
		})
	})
	mux.HandleFunc("DELETE /v1/leases/{subject_id}", func(w http.ResponseWriter, r *http.Request) {
		eid := r.URL.Query().Get("entitlement_id")
		if eid == "" {
			writeError(w, r, catalog.Invalid("entitlement_id", "query parameter is required"))
			return
		}
		if err := l.Release(r.Context(), eid, r.URL.Query().Get("subject_type"), r.PathValue("subject_id"), time.Now()); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

var statusOf = map[string]int{
	catalog.ENOTFOUND:     http.StatusNotFound,
	catalog.ECONFLICT:     http.StatusConflict,
	catalog.EINVALID:      http.StatusBadRequest,
	catalog.EUNAUTHORIZED: http.StatusUnauthorized,
	catalog.EFORBIDDEN:    http.StatusForbidden,
	catalog.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	catalog.EUNAVAILABLE:  http.StatusServiceUnavailable,
	catalog.EINTERNAL:     http.StatusInternalServerError,
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := catalog.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if code == catalog.EINTERNAL {
		slog.ErrorContext(r.Context(), "lease request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: catalog.ErrorMessage(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
