package httpapi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/wire"
)

// The handler builders below are the whole of most routes: decode, one
// service call, encode.

// create decodes a JSON body into In, calls fn and answers its result
// with status.
func create[In, Out any](status int, fn func(r *http.Request, in In) (Out, error)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in In
		body, err := jsonBody(r)
		if err != nil {
			return err
		}
		if err := catalog.DecodeStrict(body, &in); err != nil {
			return err
		}
		out, err := fn(r, in)
		if err != nil {
			return err
		}
		wire.WriteJSON(w, status, out)
		return nil
	}
}

// change decodes an update body into In (read-only fields echoed from a
// GET go to its Unchanged), calls fn and answers 200 with its result.
func change[In, Out any](fn func(r *http.Request, in In) (Out, error)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in In
		body, err := jsonBody(r)
		if err != nil {
			return err
		}
		if err := controlplane.DecodeUpdate(body, &in); err != nil {
			return err
		}
		out, err := fn(r, in)
		if err != nil {
			return err
		}
		wire.WriteJSON(w, http.StatusOK, out)
		return nil
	}
}

// jsonBody reads a JSON request body (already capped at MaxBodyBytes) and
// refuses one that is not valid UTF-8: encoding/json would otherwise
// store U+FFFD in place of the bad bytes.
func jsonBody(r *http.Request) (io.Reader, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			return nil, catalog.Errorf(catalog.ETOOLARGE, "request body larger than %d bytes", me.Limit)
		}
		return nil, catalog.Invalid("body", "unreadable request body: %v", err)
	}
	if !utf8.Valid(b) {
		return nil, catalog.Invalid("body", "request body is not valid UTF-8")
	}
	return bytes.NewReader(b), nil
}

// noBody refuses a request body on a route that takes none.
func noBody(r *http.Request) error { return wire.CheckNoBody(r) }

// query refuses ambiguous or non-UTF-8 query parameters.
func query(r *http.Request) error { return wire.CheckQuery(r) }

// call calls fn (the request has no body) and answers its result with
// status.
func call[Out any](status int, fn func(r *http.Request) (Out, error)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		out, err := fn(r)
		if err != nil {
			return err
		}
		wire.WriteJSON(w, status, out)
		return nil
	}
}

// all answers a whole list in the list shape.
func all[T any](fn func(r *http.Request) ([]T, error)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		items, err := fn(r)
		if err != nil {
			return err
		}
		writeList(w, items, "")
		return nil
	}
}

// paged reads ?limit= and ?cursor= and answers a page of fn's list.
func paged[T any](fn func(r *http.Request, pg store.Page) ([]T, string, error)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		pg, err := page(r)
		if err != nil {
			return err
		}
		items, next, err := fn(r, pg)
		if err != nil {
			return err
		}
		writeList(w, items, next)
		return nil
	}
}

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

// List is the shape of every list answer.
type List[T any] struct {
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
	wire.WriteJSON(w, http.StatusOK, List[T]{Items: items, NextCursor: next})
}

// int64Param reads an optional non-negative integer query parameter.
func int64Param(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, catalog.Invalid(name, "must be a non-negative integer")
	}
	return n, nil
}
