package fleet

import (
	"context"
	"errors"
	"time"
)

// Record is an event as kept by the aggregator: a sequence number (the
// acknowledgement cursor counts these) and when the mirror received it.
type Record struct {
	Seq        uint64    `json:"seq"`
	ReceivedAt time.Time `json:"received_at"`
	Event
}

// OtherErrorCodes counts the failures whose error code did not fit in an
// aggregate's bounded code table. It cannot collide with a real code ('~'
// is outside their charset).
const OtherErrorCodes = "~other"

// MaxErrorCodes bounds the distinct error codes one aggregate counts.
const MaxErrorCodes = 32

// AggregateKey names one aggregate: a release (empty for checks that found
// no release) and an outcome.
type AggregateKey struct {
	ProductID string `json:"product_id,omitempty"`
	ReleaseID string `json:"release_id,omitempty"`
	Type      Type   `json:"type"`
}

// Aggregate is the cumulative count of one key's events since the store
// was created. LastSeq is the sequence of the last event folded in: a
// newer aggregate for the same key (and store) has a larger LastSeq.
type Aggregate struct {
	AggregateKey
	Count         int64            `json:"count"`
	DurationMSSum int64            `json:"duration_ms_sum"`
	ErrorCodes    map[string]int64 `json:"error_codes,omitempty"`
	FirstAt       time.Time        `json:"first_at"`
	LastAt        time.Time        `json:"last_at"`
	LastSeq       uint64           `json:"last_seq"`
}

// Key is a's key.
func (a *Aggregate) Key() AggregateKey { return a.AggregateKey }

// Clone returns a deep copy of a.
func (a Aggregate) Clone() Aggregate {
	if a.ErrorCodes != nil {
		m := make(map[string]int64, len(a.ErrorCodes))
		for k, v := range a.ErrorCodes {
			m[k] = v
		}
		a.ErrorCodes = m
	}
	return a
}

// fold adds r to a.
func (a *Aggregate) fold(r *Record) {
	if a.Count == 0 || r.Time.Before(a.FirstAt) {
		a.FirstAt = r.Time
	}
	if r.Time.After(a.LastAt) {
		a.LastAt = r.Time
	}
	a.Count++
	if s := a.DurationMSSum + r.DurationMS; s >= a.DurationMSSum {
		a.DurationMSSum = s // saturate rather than wrap
	}
	if r.Type.Failed() && r.ErrorCode != "" {
		if a.ErrorCodes == nil {
			a.ErrorCodes = map[string]int64{}
		}
		code := r.ErrorCode
		if _, ok := a.ErrorCodes[code]; !ok && len(a.ErrorCodes) >= MaxErrorCodes {
			code = OtherErrorCodes
		}
		a.ErrorCodes[code]++
	}
	a.LastSeq = r.Seq
}

// Meta is a store's identity and cursors.
type Meta struct {
	// StoreID is random, made when the store is created: sequence numbers
	// are only unique within one store (a reset mirror starts again at 1),
	// so the vendor keys what it ingests by (mirror, store, seq).
	StoreID string
	// LastSeq is the sequence of the last event ever stored (0: none).
	LastSeq uint64
	// Acked is the vendor's acknowledgement cursor: every event up to it
	// has reached the vendor, so shipping sends only what is above it.
	Acked uint64
	// OldestSeq is the first event still in the recent window (0: empty).
	// When it is above Acked+1, events were dropped from the window before
	// the vendor got them (their aggregates still count them).
	OldestSeq uint64
}

// Commit is one atomic change to a store.
type Commit struct {
	// Records to append; their sequences follow Meta.LastSeq without gaps.
	Records []Record
	// Put replaces these aggregates (by key).
	Put []Aggregate
	// Drop deletes these aggregates.
	Drop []AggregateKey
	// TrimBefore deletes every record with a sequence below it (0: none).
	TrimBefore uint64
}

// ErrSequence means a commit's records do not follow the store's last
// sequence: another writer got there first, or a caller bug.
var ErrSequence = errors.New("fleet store: records out of sequence")

// ErrAckAhead means an acknowledgement names a sequence the store has not
// reached.
var ErrAckAhead = errors.New("fleet store: acknowledgement beyond the last event")

// Store persists an aggregator's state. Implementations: MemStore here,
// and boltstore (bbolt). storetest.Run is their shared contract.
type Store interface {
	// Meta returns the store's identity and cursors.
	Meta(ctx context.Context) (Meta, error)
	// Commit applies c atomically: all of it or nothing. It returns
	// ErrSequence (wrapped) when the records do not follow LastSeq.
	Commit(ctx context.Context, c Commit) error
	// Aggregates calls fn for every aggregate, in key order.
	Aggregates(ctx context.Context, fn func(Aggregate) error) error
	// Records calls fn for every record in the window with a sequence
	// above after, in order, from one consistent view.
	Records(ctx context.Context, after uint64, fn func(Record) error) error
	// Ack moves the acknowledgement cursor up to seq; a seq at or below
	// the cursor changes nothing (acknowledgements may repeat or arrive
	// out of order). A seq above LastSeq is ErrAckAhead.
	Ack(ctx context.Context, seq uint64) error
}
