package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
// domain code and message from the body ({"error":{"code","message"}}), or
// a code derived from the status when the body carries none.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server: %s (%d)", e.Code, e.Status)
	}
	return fmt.Sprintf("server: %s: %s", e.Code, e.Message)
}

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

var statusCode = map[int]string{
	http.StatusNotFound:              CodeNotFound,
	http.StatusConflict:              CodeConflict,
	http.StatusBadRequest:            CodeInvalid,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusForbidden:             CodeForbidden,
	http.StatusRequestEntityTooLarge: CodeTooLarge,
	http.StatusServiceUnavailable:    CodeUnavailable,
}

// responseError turns a non-success answer into an *Error.
func responseError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := decodeJSON(strings.NewReader(string(raw)), &body); err == nil && body.Error.Code != "" {
		e.Code = clean(body.Error.Code, 64)
		e.Message = clean(body.Error.Message, 512)
		return e
	}
	if c, ok := statusCode[resp.StatusCode]; ok {
		e.Code = c
	} else {
		e.Code = CodeInternal
	}
	e.Message = clean(strings.TrimSpace(string(raw)), 200)
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// clean keeps a server-supplied string printable and short, so a hostile
// server cannot paint the user's terminal.
func clean(s string, max int) string {
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
