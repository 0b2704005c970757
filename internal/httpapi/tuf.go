package httpapi

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
)

// tufHandlers keeps one tufhttp.Handler per tenant and server, so each
// keeps its cache of compressed metadata.
var tufHandlers sync.Map // tufKey -> *tufhttp.Handler

type tufKey struct {
	s        *Server
	tenantID string
}

// serveTUF serves a tenant's TUF repository below .../tuf/: the tenant
// of the path (admin, or its own tenant token) or, for a mirror, its own.
func (s *Server) serveTUF(w http.ResponseWriter, r *http.Request) error {
	tenantID := r.PathValue("id")
	if p := controlplane.PrincipalFrom(r.Context()); tenantID == "" && p != nil {
		tenantID = p.TenantID
	}
	repo, err := s.App.TUFRepo(r.Context(), tenantID)
	if err != nil {
		return err
	}
	k := tufKey{s, tenantID}
	h, ok := tufHandlers.Load(k)
	if !ok {
		h, _ = tufHandlers.LoadOrStore(k, tufhttp.New(repo, tufhttp.Options{Prefix: "/", OnError: func(r *http.Request, err error) {
			s.Log.Error("tuf repository", "tenant", tenantID, "path", r.URL.Path, "err", err)
		}}))
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + r.PathValue("path")
	r2.URL.RawPath = ""
	h.(*tufhttp.Handler).ServeHTTP(w, r2)
	return nil
}

// tufRoot answers a tenant's newest root.json byte for byte (signed
// metadata: re-encoding it would break its signatures).
func (s *Server) tufRoot(w http.ResponseWriter, r *http.Request) error {
	b, err := s.App.TUFRoot(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}
