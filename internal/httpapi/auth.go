package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/outpost/outpost/internal/catalog"
)

// Token prefixes make leaked secrets recognisable.
const (
	tokenPrefix      = "opt_"
	credentialPrefix = "omc_"
)

// NewSecret returns prefix + base64url of 32 random bytes.
func NewSecret(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// NewToken returns a new API token secret.
func NewToken() string { return NewSecret(tokenPrefix) }

// NewCredential returns a new mirror credential secret.
func NewCredential() string { return NewSecret(credentialPrefix) }

// HashSecret returns the hex sha256 the store keeps instead of a secret.
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Principal is who a request acts as.
type Principal struct {
	Role     string // catalog.RoleAdmin, catalog.RoleTenant or "mirror"
	TenantID string
	TokenID  string
	Mirror   *catalog.Mirror
}

const roleMirror = "mirror"

type principalKey struct{}

func principalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

var errUnauthorized = catalog.Errorf(catalog.EUNAUTHORIZED, "missing or invalid bearer token")

// authenticate resolves the bearer token to a principal. The lookup is by
// hash; the stored hash is then compared in constant time so that no
// comparison on secret material short-circuits.
func (s *Server) authenticate(r *http.Request) (*Principal, error) {
	secret := bearer(r)
	if secret == "" || len(secret) > 256 {
		return nil, errUnauthorized
	}
	hash := HashSecret(secret)
	switch {
	case strings.HasPrefix(secret, credentialPrefix):
		m, err := s.Store.MirrorByCredentialHash(r.Context(), hash)
		if err != nil || subtle.ConstantTimeCompare([]byte(m.CredentialHash), []byte(hash)) != 1 {
			return nil, errUnauthorized
		}
		if m.Status == catalog.MirrorInactive {
			return nil, catalog.Errorf(catalog.EUNAUTHORIZED, "mirror is deactivated")
		}
		if err := s.tenantActive(r.Context(), m.TenantID); err != nil {
			return nil, err
		}
		return &Principal{Role: roleMirror, TenantID: m.TenantID, TokenID: m.MirrorID, Mirror: m}, nil
	default:
		t, err := s.Store.TokenByHash(r.Context(), hash)
		if err != nil || subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 {
			return nil, errUnauthorized
		}
		if t.Role != catalog.RoleAdmin {
			if err := s.tenantActive(r.Context(), t.TenantID); err != nil {
				return nil, err
			}
		}
		return &Principal{Role: t.Role, TenantID: t.TenantID, TokenID: t.TokenID}, nil
	}
}

// tenantActive refuses the credentials of a tenant the vendor suspended
// (403: they come back when it is reactivated) or deleted (401: they never
// work again), so its update checks, downloads, leases and mirror syncs
// stop at once rather than at the snapshot's expiry.
func (s *Server) tenantActive(ctx context.Context, tenantID string) error {
	t, err := s.Store.Tenant(ctx, tenantID)
	switch {
	case catalog.ErrorCode(err) == catalog.ENOTFOUND:
		return errUnauthorized
	case err != nil:
		return err
	case t.Status == catalog.TenantActive:
		return nil
	case t.Status == catalog.TenantSuspended:
		return catalog.Errorf(catalog.EFORBIDDEN, "tenant is suspended")
	default:
		return catalog.Errorf(catalog.EUNAUTHORIZED, "tenant is %s", t.Status)
	}
}

// access levels for routes.
type access int

const (
	public     access = iota // no token
	adminOnly                // admin tokens
	tenantRead               // admin, or a tenant token (handler scopes by tenant)
	mirrorOnly               // mirror credentials
)

// canSeeTenant reports whether p may see objects of tenantID. Callers
// answer 404, never 403, when it may not, so ids of other tenants do not
// leak.
func (p *Principal) canSeeTenant(tenantID string) bool {
	return p.Role == catalog.RoleAdmin || (p.Role != roleMirror && p.TenantID == tenantID)
}

func (p *Principal) actor() catalog.Actor {
	switch p.Role {
	case roleMirror:
		return catalog.Actor{Type: catalog.ActorMirror, ID: p.TokenID}
	default:
		return catalog.Actor{Type: catalog.ActorServiceAccount, ID: p.TokenID}
	}
}
