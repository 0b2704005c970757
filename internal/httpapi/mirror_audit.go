package httpapi

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// maxAuditUpload caps an uploaded mirror audit export.
const maxAuditUpload = 256 << 20

type auditIngest struct {
	Received int `json:"received"`
	Ingested int `json:"ingested"`
}

// mirrorAudit ingests a mirror's exported audit chain: the chain and the
// mirror's signature over its head are verified first; then each event is
// appended to the tenant's audit events once (a second upload adds
// nothing).
func (s *Server) mirrorAudit(w http.ResponseWriter, r *http.Request, p *Principal) error {
	m := p.Mirror
	pub, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return catalog.Errorf(catalog.ECONFLICT, "mirror %s has no registered public key", m.MirrorID)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAuditUpload)
	events, err := license.VerifyAuditExport(r.Body, ed25519.PublicKey(pub), maxAuditUpload)
	if err != nil {
		var broken *audit.BrokenLinkError
		if errors.As(err, &broken) {
			return catalog.Errorf(catalog.EINVALID, "audit export rejected: %v", broken)
		}
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			return catalog.Errorf(catalog.ETOOLARGE, "audit export larger than %d bytes", maxAuditUpload)
		}
		return catalog.Errorf(catalog.EINVALID, "audit export rejected: %v", err)
	}
	res := auditIngest{Received: len(events)}
	for _, ev := range events {
		if ev.TenantID != "" && ev.TenantID != m.TenantID {
			return catalog.Errorf(catalog.EINVALID, "audit export rejected: event %s is for another tenant", ev.EventID)
		}
		payload, err := json.Marshal(map[string]any{"mirror_id": m.MirrorID, "event": ev})
		if err != nil {
			return err
		}
		in := &catalog.AuditEvent{
			EventID: catalog.NewID(catalog.PrefixEvent), TenantID: m.TenantID, ActorType: catalog.ActorMirror,
			ActorID: m.MirrorID, EventType: "mirror." + ev.EventType, Payload: payload, CreatedAt: ev.CreatedAt,
		}
		added, err := s.Store.AppendAudit(r.Context(), in, "mirror:"+m.MirrorID+":"+ev.EventID)
		if err != nil {
			return err
		}
		if added {
			res.Ingested++
		}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
