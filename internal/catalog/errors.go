// Package catalog holds the domain types of Outpost's data model, the rules
// that apply to them without I/O, and the error kinds shared by every layer.
package catalog

import (
	"errors"
	"fmt"
)

// Error codes. They survive the wire: the HTTP layer maps each to a status
// and back (see internal/httpapi).
const (
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EINVALID      = "invalid"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
	ETOOLARGE     = "too_large"
	EUNAVAILABLE  = "unavailable"
	ERATELIMITED  = "rate_limited"
	// ENOSPACE: a store ran out of space (ENOSPC, EDQUOT); nothing was
	// stored, and the same request works once space returns.
	ENOSPACE = "insufficient_storage"
)

// Error is a domain error: a code a caller can branch on and a message a
// person can read.
type Error struct {
	Code    string
	Message string
	Field   string // the offending field, when there is one
}

func (e *Error) Error() string {
	if e.Field != "" && e.Message == "" {
		return fmt.Sprintf("%s: %s", e.Code, e.Field)
	}
	return e.Message
}

// Errorf returns a domain error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// NotFound returns an ENOTFOUND error for an object kind and id.
func NotFound(kind, id string) *Error {
	return &Error{Code: ENOTFOUND, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

// ErrorCode returns the code of the first domain error in err's chain,
// EINTERNAL for any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first domain error in err's chain,
// or a generic text for internal errors (which must not leak details).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}
