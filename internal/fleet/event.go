// Package fleet is the domain of client feedback: the events clients
// report (check, download and install outcomes), their strict validation,
// a batch decoder with caps, an aggregator that keeps durable bounded
// state (aggregates per release and outcome plus a bounded window of
// recent events) behind the Store interface, the signed return file that
// carries that state to the vendor, and the pure evaluation of rollout
// schedules and health gates. It does no HTTP; the daemons wire it.
package fleet

import (
	"fmt"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Type is what happened on a client.
type Type string

// The event types.
const (
	TypeCheck          Type = "check"
	TypeDownloadOK     Type = "download_ok"
	TypeDownloadFailed Type = "download_failed"
	TypeInstallOK      Type = "install_ok"
	TypeInstallFailed  Type = "install_failed"
)

// Types lists every event type in a fixed order.
var Types = []Type{TypeCheck, TypeDownloadOK, TypeDownloadFailed, TypeInstallOK, TypeInstallFailed}

// Valid reports whether t is a known type.
func (t Type) Valid() bool {
	for _, k := range Types {
		if t == k {
			return true
		}
	}
	return false
}

// Failed reports whether t is a failure outcome (it may carry an error code).
func (t Type) Failed() bool { return t == TypeDownloadFailed || t == TypeInstallFailed }

// Field limits. Every string field is also restricted to a small charset.
const (
	MaxClientIDLen  = 64
	MinClientIDLen  = 8
	MaxVersionLen   = 64
	MaxErrorCodeLen = 64
	MaxDuration     = 7 * 24 * time.Hour
)

// Event is one client report. ClientID is pseudonymous: an opaque random
// token the client keeps (never a host name, user or address; the charset
// refuses '@', spaces and the like).
type Event struct {
	Type        Type      `json:"type"`
	ClientID    string    `json:"client_id"`
	ProductID   string    `json:"product_id,omitempty"`
	ReleaseID   string    `json:"release_id,omitempty"`
	ArtifactID  string    `json:"artifact_id,omitempty"`
	FromVersion string    `json:"from_version,omitempty"`
	ToVersion   string    `json:"to_version,omitempty"`
	ErrorCode   string    `json:"error_code,omitempty"`
	DurationMS  int64     `json:"duration_ms,omitempty"`
	Time        time.Time `json:"time"`
}

// Clock bounds an event's time relative to now: at most MaxFuture ahead
// (clock skew) and at most MaxAge old (clients queue events while offline).
type Clock struct {
	Now       time.Time
	MaxFuture time.Duration
	MaxAge    time.Duration
}

// FieldError names the field an event was refused for.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks e strictly. A zero Clock.Now skips the time window (the
// time must still be set).
func (e *Event) Validate(c Clock) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if !e.Type.Valid() {
		return bad("type", "%q is not one of check, download_ok, download_failed, install_ok, install_failed", clip(string(e.Type)))
	}
	if n := len(e.ClientID); n < MinClientIDLen || n > MaxClientIDLen || !charset(e.ClientID, "-_.") {
		return bad("client_id", "must be %d to %d characters of A-Z a-z 0-9 - _ . (a pseudonymous random id)", MinClientIDLen, MaxClientIDLen)
	}
	if e.ProductID != "" && !catalog.ValidID(catalog.PrefixProduct, e.ProductID) {
		return bad("product_id", "%q is not a product id", clip(e.ProductID))
	}
	if e.ReleaseID != "" && !catalog.ValidID(catalog.PrefixRelease, e.ReleaseID) {
		return bad("release_id", "%q is not a release id", clip(e.ReleaseID))
	}
	if e.ArtifactID != "" && !catalog.ValidID(catalog.PrefixArtifact, e.ArtifactID) && !catalog.ValidID(catalog.PrefixReleaseArtifact, e.ArtifactID) {
		return bad("artifact_id", "%q is not an artifact id", clip(e.ArtifactID))
	}
	if e.Type != TypeCheck {
		if e.ReleaseID == "" {
			return bad("release_id", "is required for %s", e.Type)
		}
		if e.ToVersion == "" {
			return bad("to_version", "is required for %s", e.Type)
		}
	}
	for _, f := range []struct{ name, v string }{{"from_version", e.FromVersion}, {"to_version", e.ToVersion}} {
		if len(f.v) > MaxVersionLen || !charset(f.v, "-_.+") {
			return bad(f.name, "must be at most %d characters of A-Z a-z 0-9 - _ . +", MaxVersionLen)
		}
	}
	if e.ErrorCode != "" {
		if !e.Type.Failed() {
			return bad("error_code", "is only allowed on download_failed and install_failed")
		}
		if len(e.ErrorCode) > MaxErrorCodeLen || !charset(e.ErrorCode, "-_.:") {
			return bad("error_code", "must be at most %d characters of A-Z a-z 0-9 - _ . :", MaxErrorCodeLen)
		}
	}
	if e.DurationMS < 0 || e.DurationMS > MaxDuration.Milliseconds() {
		return bad("duration_ms", "must be between 0 and %d", MaxDuration.Milliseconds())
	}
	if e.Time.IsZero() {
		return bad("time", "is required")
	}
	if !c.Now.IsZero() {
		if e.Time.After(c.Now.Add(c.MaxFuture)) {
			return bad("time", "%s is more than %s in the future", e.Time.UTC().Format(time.RFC3339), c.MaxFuture)
		}
		if c.MaxAge > 0 && e.Time.Before(c.Now.Add(-c.MaxAge)) {
			return bad("time", "%s is more than %s old", e.Time.UTC().Format(time.RFC3339), c.MaxAge)
		}
	}
	return nil
}

// ValidErrorCode reports whether s is acceptable as an error code.
func ValidErrorCode(s string) bool {
	return s != "" && len(s) <= MaxErrorCodeLen && charset(s, "-_.:")
}

// charset reports whether s holds only ASCII letters, digits and extra.
func charset(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// clip bounds hostile input echoed in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
