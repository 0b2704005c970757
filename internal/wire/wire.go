// Package wire is Outpost's one HTTP convention, shared by both daemons and
// every client: domain error codes map to HTTP statuses here and back, every
// error answer has one body shape, and each header has one name.
//
// An error answer is
//
//	{"error":{"code":"not_found","message":"release \"rel_…\" not found","field":"…"}}
//
// with the status StatusOf(code). Internal errors are logged by the server
// and answered with a generic message, never their details.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outpost/outpost/internal/catalog"
)

// Header names, one per meaning, used by both daemons and the clients.
const (
	// HeaderSequence carries the sequence of the signed metadata an answer
	// was computed from.
	HeaderSequence = "Outpost-Sequence"
	// HeaderSnapshotID carries the id of that metadata.
	HeaderSnapshotID = "Outpost-Snapshot-Id"
	// HeaderIdempotencyKey makes a POST safe to retry.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplay marks an answer replayed for a repeated key.
	HeaderIdempotentReplay = "Idempotent-Replayed"
	// HeaderRetryAfter tells a client when to try again (429, 503).
	HeaderRetryAfter = "Retry-After"
	// HeaderLeaseSecret carries a lease holder's secret.
	HeaderLeaseSecret = "Outpost-Lease-Secret"
	// HeaderChecksum carries the sha256 (hex) of the bytes an artifact or
	// delta answer carries (beside ETag "<sha256>"), on both daemons.
	HeaderChecksum = "X-Checksum-Sha256"
	// HeaderBundleResult is the trailer after a bundle export's tar: what
	// the bundle holds (controlplane.BundleResult as JSON).
	HeaderBundleResult = "Outpost-Bundle-Result"
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
	catalog.ERATELIMITED:  http.StatusTooManyRequests,
	catalog.ENOSPACE:      http.StatusInsufficientStorage,
}

// StatusOf returns the HTTP status for a domain error code (500 for a code
// it does not know).
func StatusOf(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeOf returns the domain error code for an HTTP status: the client's
// fallback when a body carries none.
func CodeOf(status int) string {
	for c, s := range codeStatus {
		if s == status && c != catalog.EINTERNAL {
			return c
		}
	}
	if status == http.StatusMethodNotAllowed || status == http.StatusUnsupportedMediaType {
		return catalog.EINVALID
	}
	return catalog.EINTERNAL
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Body returns the error body and status for err. Internal errors keep
// their details to themselves.
func Body(err error) (int, ErrorBody) {
	var me *http.MaxBytesError
	if catalog.ErrorCode(err) == catalog.EINTERNAL && errors.As(err, &me) {
		err = catalog.Errorf(catalog.ETOOLARGE, "request body larger than %d bytes", me.Limit)
	}
	code := catalog.ErrorCode(err)
	b := ErrorBody{Error: ErrorDetail{Code: code, Message: catalog.ErrorMessage(err)}}
	var de *catalog.Error
	if errors.As(err, &de) {
		b.Error.Field = de.Field
	}
	return StatusOf(code), b
}

// WriteError answers err in the one error shape. Internal errors are logged
// to log (when not nil) with the request, and their details withheld; an
// insufficient_storage error is logged too, with its cause, since the
// operator must act on it. A
// rate-limit or unavailable error carrying a RetryAfter sets Retry-After.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, b := Body(err)
	if (b.Error.Code == catalog.EINTERNAL || b.Error.Code == catalog.ENOSPACE) && log != nil && r != nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		secs := int(ra.RetryAfter().Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set(HeaderRetryAfter, strconv.Itoa(secs))
	}
	WriteJSON(w, status, b)
}

// NoRoute answers a request no route of the daemon takes (an unknown
// path, or a known one with another method): 404 not_found in the one
// shape, on both daemons.
func NoRoute(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, nil, catalog.Errorf(catalog.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
}

// WriteLocalError answers err in the one error shape with its whole text,
// internal errors included: for an owner-only local channel (the mirror's
// admin socket), whose caller prints the message as it would print the
// error of the same operation run in-process.
func WriteLocalError(w http.ResponseWriter, err error) {
	status, b := Body(err)
	b.Error.Message = err.Error()
	WriteJSON(w, status, b)
}

// WriteJSON answers v as JSON with status. Answers are not cached by
// intermediaries unless the handler said otherwise.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	w.Write(body)
}

// Error is an error answer as a client sees it: the HTTP status and the
// code, message and field from the body (or derived from the status when
// the body has none). It unwraps to the matching *catalog.Error, so code
// that branches on catalog.ErrorCode works across the wire.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	// RetryAfter is the server's Retry-After on a 429 or 503 (0 when it
	// sent none): how long to wait before trying again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server: %s (%d)", e.Code, e.Status)
	}
	return fmt.Sprintf("server: %s: %s", e.Code, e.Message)
}

// Unwrap gives the domain error the answer carried.
func (e *Error) Unwrap() error {
	return &catalog.Error{Code: e.Code, Message: e.Message, Field: e.Field}
}

// maxErrorBody caps how much of an error answer a client reads.
const maxErrorBody = 64 << 10

// ReadError turns a non-success answer into an *Error. It reads at most
// 64 KiB of the body and keeps server-supplied strings printable and
// short, so a hostile server cannot paint a terminal.
func ReadError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter, _ = ParseRetryAfter(resp.Header.Get(HeaderRetryAfter), time.Now())
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var b ErrorBody
	if json.Unmarshal(raw, &b) == nil && b.Error.Code != "" {
		e.Code = Clean(b.Error.Code, 64)
		e.Message = Clean(b.Error.Message, 512)
		e.Field = Clean(b.Error.Field, 128)
		return e
	}
	e.Code = CodeOf(resp.StatusCode)
	e.Message = Clean(strings.TrimSpace(string(raw)), 200)
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// maxRetryAfter caps a Retry-After a client takes from a peer.
const maxRetryAfter = 24 * time.Hour

// ParseRetryAfter parses a Retry-After value: delay seconds or an HTTP
// date, capped at a day; garbage and negative values are ignored.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// Clean keeps a string from a peer printable and at most max bytes long.
func Clean(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CheckNoBody refuses a request body on a route that takes none (anything but
// nothing, whitespace, {} or null), so that a body meant for another route
// is never silently ignored.
func CheckNoBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 65))
	if err != nil {
		return catalog.Invalid("body", "unreadable request body: %v", err)
	}
	switch string(bytes.TrimSpace(b)) {
	case "", "{}", "null":
		return nil
	}
	return catalog.Invalid("body", "%s %s takes no request body", r.Method, r.URL.Path)
}

// CheckQuery refuses a parameter given twice (which of them would count is
// ambiguous) and one that is not valid UTF-8.
func CheckQuery(r *http.Request) error { return CheckRawQuery(r.URL.RawQuery) }

// CheckRawQuery is CheckQuery on a raw query string (for a server that
// reads requests itself).
func CheckRawQuery(raw string) error {
	if PlainQuery(raw) {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return catalog.Invalid("query", "malformed query string")
	}
	for k, v := range q {
		if len(v) > 1 {
			return catalog.Invalid(k, "query parameter given %d times", len(v))
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
			return catalog.Invalid("query", "query parameters must be valid UTF-8")
		}
	}
	return nil
}

// PlainQuery reports, without allocating, that CheckQuery would accept
// raw: a query of at most 16 parameters, none escaped ('%' or '+'), no ';',
// every key distinct and everything valid UTF-8. False means "not sure":
// CheckQuery then parses the query fully.
func PlainQuery(raw string) bool {
	if raw == "" {
		return true
	}
	if strings.ContainsAny(raw, "%+;") || !utf8.ValidString(raw) {
		return false
	}
	var keys [16]string
	n := 0
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if n == len(keys) {
			return false
		}
		for _, seen := range keys[:n] {
			if seen == k {
				return false
			}
		}
		keys[n] = k
		n++
	}
	return true
}

// StrictRequests refuses, before next sees it, a request whose query
// repeats or garbles a parameter, and a GET, HEAD or DELETE that carries
// a body: an ambiguous or misdirected request is an error, never silently
// half-read.
func StrictRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := CheckQuery(r)
		if err == nil && (r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodDelete) {
			err = CheckNoBody(r)
		}
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
