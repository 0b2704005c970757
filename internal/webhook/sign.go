package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a delivery's signature:
//
//	Outpost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC is keyed with the subscription's secret and covers
// "<t>.<body>". A receiver may see several v1 entries (during a secret
// rotation); one matching is enough.
const SignatureHeader = "Outpost-Signature"

// Other delivery headers.
const (
	EventIDHeader   = "Outpost-Event-Id" // dedupe on this: delivery is at least once
	EventTypeHeader = "Outpost-Event-Type"
	AttemptHeader   = "Outpost-Delivery-Attempt"
)

// DefaultWindow is the replay window receivers should use.
const DefaultWindow = 5 * time.Minute

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verification errors.
var (
	ErrBadHeader  = errors.New("webhook signature: malformed header")
	ErrStale      = errors.New("webhook signature: timestamp outside the replay window")
	ErrNoMatch    = errors.New("webhook signature: no signature matches")
	errNoSecret   = errors.New("webhook signature: empty secret")
	maxHeaderSize = 4096
)

// Verify checks a delivery as a receiver should: header is the
// Outpost-Signature value, body the raw request body (before any JSON
// decoding), now the receiver's clock and window the replay window
// (DefaultWindow if zero): the timestamp must be within window of now,
// either way. The comparison is constant-time. A receiver must also
// dedupe on the event id (Outpost-Event-Id, or "id" in the body), since
// a delivery may be repeated; a replay inside the window is such a repeat.
func Verify(secret, header string, body []byte, now time.Time, window time.Duration) error {
	if secret == "" {
		return errNoSecret
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if len(header) > maxHeaderSize {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadHeader, maxHeaderSize)
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrBadHeader, clip(part))
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrBadHeader)
			}
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
		// Other schemes (v0, future v2) are ignored.
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrBadHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return fmt.Errorf("%w: t=%q is not unix seconds", ErrBadHeader, clip(ts))
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("%w: signed at %s, now %s, window %s", ErrStale, time.Unix(sec, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), window)
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrNoMatch
}

func clip(s string) string { return clipN(s, 40) }

// clipN bounds untrusted text echoed in a message.
func clipN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
