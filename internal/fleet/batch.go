package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// BatchLimits caps a batch of events (POST /v1/events).
type BatchLimits struct {
	MaxBytes  int64 // the whole body
	MaxEvents int   // events in one batch
	MaxFuture time.Duration
	MaxAge    time.Duration
}

// DefaultBatchLimits are the caps used when a field is zero.
var DefaultBatchLimits = BatchLimits{MaxBytes: 1 << 20, MaxEvents: 1000, MaxFuture: time.Hour, MaxAge: 90 * 24 * time.Hour}

func (l BatchLimits) withDefaults() BatchLimits {
	d := DefaultBatchLimits
	if l.MaxBytes > 0 {
		d.MaxBytes = l.MaxBytes
	}
	if l.MaxEvents > 0 {
		d.MaxEvents = l.MaxEvents
	}
	if l.MaxFuture > 0 {
		d.MaxFuture = l.MaxFuture
	}
	if l.MaxAge > 0 {
		d.MaxAge = l.MaxAge
	}
	return d
}

// ErrBatch wraps every reason a whole batch is refused (too large, not
// JSON, too many events). A single bad event is a Rejection instead.
var ErrBatch = errors.New("invalid event batch")

// ErrTooLarge is also wrapped when the batch is refused for its size (the
// body or the number of events): HTTP 413 rather than 400.
var ErrTooLarge = errors.New("too large")

// Rejection is one event of a batch that was refused; the others are kept.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// Batch is a decoded batch: the valid events, and the refused ones by
// index, so a client can drop what will never be accepted and keep going.
type Batch struct {
	Events   []Event
	Rejected []Rejection
}

type wireBatch struct {
	Events []json.RawMessage `json:"events"`
}

// DecodeBatch reads {"events":[...]} from r with the caps of l (zero
// fields take DefaultBatchLimits), validating each event against now.
// Structural problems refuse the whole batch (ErrBatch); an invalid event
// (unknown field, bad value) is listed in Rejected.
func DecodeBatch(r io.Reader, l BatchLimits, now time.Time) (*Batch, error) {
	l = l.withDefaults()
	body, err := io.ReadAll(io.LimitReader(r, l.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read event batch: %w", err)
	}
	if int64(len(body)) > l.MaxBytes {
		return nil, fmt.Errorf("%w: %w: body is larger than %d bytes", ErrBatch, ErrTooLarge, l.MaxBytes)
	}
	// Count the events before decoding them, so a huge array of tiny
	// values is refused without building it.
	var wb wireBatch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBatch, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrBatch)
	}
	if wb.Events == nil {
		return nil, fmt.Errorf("%w: events: is required", ErrBatch)
	}
	if len(wb.Events) > l.MaxEvents {
		return nil, fmt.Errorf("%w: %w: events: %d events, at most %d per batch", ErrBatch, ErrTooLarge, len(wb.Events), l.MaxEvents)
	}
	clock := Clock{Now: now, MaxFuture: l.MaxFuture, MaxAge: l.MaxAge}
	b := &Batch{Events: make([]Event, 0, len(wb.Events))}
	for i, raw := range wb.Events {
		var e Event
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			b.Rejected = append(b.Rejected, Rejection{Index: i, Error: fmt.Sprintf("events[%d]: %v", i, err)})
			continue
		}
		if err := e.Validate(clock); err != nil {
			b.Rejected = append(b.Rejected, Rejection{Index: i, Error: fmt.Sprintf("events[%d].%v", i, err)})
			continue
		}
		b.Events = append(b.Events, e)
	}
	return b, nil
}
