// Package httpapi is the control plane's HTTP API (handlers, auth,
// idempotency, metrics) and a Go client for it. Domain error codes map to
// HTTP statuses here, in one place, and back in the client.
package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/outpost/outpost/internal/catalog"
)

var codeStatus = map[string]int{
	catalog.ENOTFOUND:     http.StatusNotFound,
	catalog.ECONFLICT:     http.StatusConflict,
	catalog.EINVALID:      http.StatusBadRequest,
	catalog.EUNAUTHORIZED: http.StatusUnauthorized,
	catalog.EFORBIDDEN:    http.StatusForbidden,
	catalog.EINTERNAL:     http.StatusInternalServerError,
	catalog.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	catalog.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status for a domain error code.
func StatusOf(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeOf returns the domain error code for an HTTP status (the client's
// fallback when a body carries none).
func CodeOf(status int) string {
	for c, s := range codeStatus {
		if s == status && c != catalog.EINTERNAL {
			return c
		}
	}
	return catalog.EINTERNAL
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes err in the API's error shape. Internal errors are
// logged and their details withheld.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := catalog.ErrorCode(err)
	if code == catalog.EINTERNAL {
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			err = catalog.Errorf(catalog.ETOOLARGE, "request body larger than %d bytes", me.Limit)
			code = catalog.ETOOLARGE
		} else if log != nil {
			log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	var b errorBody
	b.Error.Code = code
	b.Error.Message = catalog.ErrorMessage(err)
	writeJSON(w, StatusOf(code), b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encode response"}}`, http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
