package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/outpost/outpost/internal/fleet"
)

// Event is one report to a mirror's POST /v1/events (docs/fleet.md): what
// happened when this client checked, downloaded or installed an update.
// ClientID must be pseudonymous (NewClientID), never a host or user name.
type Event = fleet.Event

// EventType is an event's outcome.
type EventType = fleet.Type

// The event types.
const (
	EventCheck          = fleet.TypeCheck
	EventDownloadOK     = fleet.TypeDownloadOK
	EventDownloadFailed = fleet.TypeDownloadFailed
	EventInstallOK      = fleet.TypeInstallOK
	EventInstallFailed  = fleet.TypeInstallFailed
)

// MaxEventBatch is how many events ReportEvents sends in one request.
const MaxEventBatch = 500

// NewClientID returns a fresh pseudonymous client id ("c-" and 32 hex
// digits): make it once, keep it, and send it with every event.
func NewClientID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "c-" + hex.EncodeToString(b)
}

// EventRejection is one event the server refused (it will never accept
// it: drop it).
type EventRejection = fleet.Rejection

// RejectedError reports the events a server refused in a batch it
// otherwise accepted.
type RejectedError struct {
	Rejected []EventRejection
	Sent     int
}

func (e *RejectedError) Error() string {
	msgs := make([]string, 0, min(len(e.Rejected), 3))
	for _, r := range e.Rejected[:min(len(e.Rejected), 3)] {
		msgs = append(msgs, r.Error)
	}
	return fmt.Sprintf("server rejected %d of %d events: %s", len(e.Rejected), e.Sent, strings.Join(msgs, "; "))
}

type eventAnswer struct {
	Accepted int               `json:"accepted"`
	Rejected []fleet.Rejection `json:"rejected"`
}

// ReportEvents sends events to the server (a mirror) in batches of at
// most MaxEventBatch, filling a zero Time with now. It is best effort:
// the caller may ignore the error, and a failed batch is not retried.
// Events the server refuses one by one come back as a *RejectedError (the
// rest were stored); a refused batch or a transport failure is the usual
// *Error or ErrNetwork, and the batches after it are not sent.
func (c *Client) ReportEvents(ctx context.Context, events []Event) error {
	if c.base == nil {
		return fmt.Errorf("%w: no server to report to", ErrConfig)
	}
	now := c.now().UTC()
	var rej RejectedError
	for start := 0; start < len(events); start += MaxEventBatch {
		batch := make([]Event, 0, min(MaxEventBatch, len(events)-start))
		for _, e := range events[start:min(start+MaxEventBatch, len(events))] {
			if e.Time.IsZero() {
				e.Time = now
			}
			batch = append(batch, e)
		}
		var ans eventAnswer
		if err := c.doJSON(ctx, "POST", "/v1/events", map[string]any{"events": batch}, &ans, 200); err != nil {
			return fmt.Errorf("report events: %w", err)
		}
		for _, r := range ans.Rejected {
			r.Index += start
			rej.Rejected = append(rej.Rejected, r)
		}
		rej.Sent += len(batch)
	}
	if len(rej.Rejected) > 0 {
		return &rej
	}
	return nil
}
