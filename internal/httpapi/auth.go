package httpapi

import (
	"net/http"
	"strings"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
)

// access levels for routes.
type access int

const (
	adminOnly  access = iota + 1 // admin tokens
	tenantRead                   // admin, or a tenant token (the service scopes by tenant)
	mirrorOnly                   // mirror credentials
)

func allowed(a access, p *controlplane.Principal) bool {
	switch a {
	case adminOnly:
		return p.Role == catalog.RoleAdmin
	case tenantRead:
		return p.Role == catalog.RoleAdmin || p.Role == catalog.RoleTenant
	case mirrorOnly:
		return p.Role == controlplane.RoleMirror
	}
	return false
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// authenticate resolves the request's bearer token to a principal.
func (s *Server) authenticate(r *http.Request) (*controlplane.Principal, error) {
	return s.App.Authenticate(r.Context(), bearer(r))
}
