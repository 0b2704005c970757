package client

import (
	"errors"
	"net/http"

	"github.com/outpost/outpost/internal/wire"
)

// Error codes a server answers with; they match the server's domain codes.
const (
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeInvalid      = "invalid"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeInternal     = "internal"
	CodeTooLarge     = "too_large"
	CodeUnavailable  = "unavailable"
)

// Error is an error the server answered with: its HTTP status and the
// domain code, message and field from the body ({"error":{"code","message"}}),
// or a code derived from the status when the body carries none. It is the
// one wire convention's error (internal/wire): errors.As(err, **Error)
// works as before, and catalog.ErrorCode sees the code.
type Error = wire.Error

// ErrorCode returns the server's code when err carries an *Error, else "".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

var (
	// ErrVerification marks an answer the client refused because it does
	// not match what the vendor signed: a lying mirror, a forged or
	// foreign snapshot, altered bytes. Errors from internal snapshot
	// verification are wrapped with it too.
	ErrVerification = errors.New("verification failed")
	// ErrNetwork marks a transport failure (connection refused or dropped,
	// timeout); retrying may help.
	ErrNetwork = errors.New("network error")
	// ErrProtocol marks an answer that is not what the API promises
	// (malformed JSON, missing fields, oversized body).
	ErrProtocol = errors.New("protocol error")
	// ErrConfig marks a client that lacks what a call needs (trusted keys,
	// tenant).
	ErrConfig = errors.New("client configuration")
)

// responseError turns a non-success answer into an *Error (wire.ReadError:
// at most 64 KiB read, server strings kept printable and short).
func responseError(resp *http.Response) error { return wire.ReadError(resp) }

// clean keeps a server-supplied string printable and short, so a hostile
// server cannot paint the user's terminal.
func clean(s string, max int) string { return wire.Clean(s, max) }
