// Package fleethttp is the mirror's POST /v1/events: a capped, strictly
// decoded batch of client events into the aggregator. The mirror mounts it
// behind its client-token check; answers use the wire conventions.
package fleethttp

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/wire"
)

// Handler serves POST /v1/events.
type Handler struct {
	Agg    *fleet.Aggregator
	Limits fleet.BatchLimits // zero fields: fleet.DefaultBatchLimits
	Log    *slog.Logger
	Now    func() time.Time // default time.Now
}

// Answer is the body of a 200 answer.
type Answer struct {
	Accepted int               `json:"accepted"`
	FirstSeq uint64            `json:"first_seq,omitempty"`
	LastSeq  uint64            `json:"last_seq,omitempty"`
	Rejected []fleet.Rejection `json:"rejected"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		wire.WriteError(w, r, h.Log, catalog.Errorf(catalog.EINVALID, "method %s: use POST", r.Method))
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	b, err := fleet.DecodeBatch(r.Body, h.Limits, now())
	switch {
	case errors.Is(err, fleet.ErrTooLarge):
		wire.WriteError(w, r, h.Log, catalog.Errorf(catalog.ETOOLARGE, "%v", err))
		return
	case errors.Is(err, fleet.ErrBatch):
		wire.WriteError(w, r, h.Log, catalog.Errorf(catalog.EINVALID, "%v", err))
		return
	case err != nil:
		wire.WriteError(w, r, h.Log, catalog.Errorf(catalog.EINVALID, "read event batch: %v", err))
		return
	}
	ans := Answer{Accepted: len(b.Events), Rejected: b.Rejected}
	if ans.Rejected == nil {
		ans.Rejected = []fleet.Rejection{}
	}
	ans.FirstSeq, ans.LastSeq, err = h.Agg.Ingest(r.Context(), b.Events)
	if err != nil {
		wire.WriteError(w, r, h.Log, err) // internal: logged, details withheld
		return
	}
	wire.WriteJSON(w, http.StatusOK, ans)
}
