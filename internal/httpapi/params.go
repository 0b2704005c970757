package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// page reads ?limit= and ?cursor=. Cursors are opaque to clients.
func page(r *http.Request) (store.Page, error) {
	var p store.Page
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return p, catalog.Invalid("query", "malformed query string")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxLimit {
			return p, catalog.Invalid("limit", "must be an integer from 1 to %d", store.MaxLimit)
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) > 200 {
			return p, catalog.Invalid("cursor", "is not a cursor this server issued")
		}
		p.Cursor = string(b)
	}
	return p.Normalize(), nil
}

type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func writeList[T any](w http.ResponseWriter, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	if next != "" {
		next = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	writeJSON(w, http.StatusOK, list[T]{Items: items, NextCursor: next})
}

func decode(r *http.Request, v any) error {
	return catalog.DecodeStrict(r.Body, v)
}

// pathID reads a path id and checks its prefix, so a malformed id is a
// clear 404 without a store lookup.
func pathID(r *http.Request, name, prefix, kind string) (string, error) {
	id := r.PathValue(name)
	if !catalog.ValidID(prefix, id) {
		return "", catalog.NotFound(kind, id)
	}
	return id, nil
}

// tenantList serves GET /v1/tenants/{id}/… lists: the tenant as p may
// see it, then a page of its objects.
func tenantList[T any](s *Server, list func(ctx context.Context, tenantID string, p store.Page) ([]T, string, error)) func(http.ResponseWriter, *http.Request, *Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) error {
		t, err := s.tenantFor(r, p)
		if err != nil {
			return err
		}
		pg, err := page(r)
		if err != nil {
			return err
		}
		items, next, err := list(r.Context(), t.TenantID, pg)
		if err != nil {
			return err
		}
		writeList(w, items, next)
		return nil
	}
}
