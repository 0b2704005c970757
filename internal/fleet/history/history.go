// Package history keeps a small, bounded time series per rollout (its
// percentage and what the fleet reports say about its release) and per
// entitlement (seats in use), on the store's key-value backend (store/kv),
// for the console's charts. Each series keeps at most MaxPoints points no
// older than MaxAge; Append prunes the series it writes to.
package history

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/store/kv"
)

// The bounds of every series: one point per housekeeping round (hourly by
// default) and per report import, so 2000 points are about 80 days of
// hourly rounds; points older than 90 days (the fleet event retention)
// are dropped.
const (
	MaxPoints = 2000
	MaxAge    = 90 * 24 * time.Hour
)

var bHistory = []byte("fleet_history")

// Buckets lists the buckets the history uses; a backend that needs its
// buckets created (bbolt) creates these.
var Buckets = [][]byte{bHistory}

// Kind names a series family.
type Kind string

// The kinds of series.
const (
	Rollout     Kind = "r"
	Entitlement Kind = "e"
)

// Point is one sample. Rollout points fill Percentage and the install and
// check totals (cumulative counts from the fleet aggregates of the
// rollout's release, and InstallsProduct of every release of its product);
// entitlement points fill Seats and Leases (-1: not known).
type Point struct {
	At              time.Time `json:"at"`
	Percentage      float64   `json:"percentage,omitempty"`
	InstallsOK      int64     `json:"installs_ok,omitempty"`
	InstallsFailed  int64     `json:"installs_failed,omitempty"`
	InstallsProduct int64     `json:"installs_product,omitempty"`
	Checks          int64     `json:"checks,omitempty"`
	Seats           int64     `json:"seats,omitempty"`
	Leases          int64     `json:"leases,omitempty"`
}

// FailureRate is failed ÷ (ok + failed) installs in percent, or -1 when
// there were no installs.
func (p Point) FailureRate() float64 {
	n := p.InstallsOK + p.InstallsFailed
	if n == 0 {
		return -1
	}
	return 100 * float64(p.InstallsFailed) / float64(n)
}

// Adoption is the release's share of the product's successful installs in
// percent (each client installs a release once, so this is the share of
// the reporting clients that moved to it), or -1 when there were none.
func (p Point) Adoption() float64 {
	if p.InstallsProduct <= 0 {
		return -1
	}
	return min(100, 100*float64(p.InstallsOK)/float64(p.InstallsProduct))
}

// History is the series on one backend.
type History struct{ b kv.Backend }

// New returns the history on b, whose Buckets must exist.
func New(b kv.Backend) *History { return &History{b: b} }

// ErrBadID is returned for an empty id or one with a '/'.
var ErrBadID = errors.New("history: bad series id")

func prefix(k Kind, id string) ([]byte, error) {
	if id == "" || len(id) > 200 {
		return nil, ErrBadID
	}
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return nil, ErrBadID
		}
	}
	return []byte(string(k) + "/" + id + "/"), nil
}

func key(p []byte, at time.Time) []byte {
	k := make([]byte, len(p)+8)
	copy(k, p)
	binary.BigEndian.PutUint64(k[len(p):], uint64(max(at.UnixNano(), 0)))
	return k
}

// Append stores pt in the series (k, id), replacing a point at the same
// instant, and prunes the series to MaxPoints points no older than MaxAge
// before pt.At.
func (h *History) Append(ctx context.Context, k Kind, id string, pt Point) error {
	p, err := prefix(k, id)
	if err != nil {
		return err
	}
	pt.At = pt.At.UTC()
	v, err := json.Marshal(pt)
	if err != nil {
		return fmt.Errorf("history: encode: %w", err)
	}
	err = h.b.Update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bHistory)
		if err := b.Put(key(p, pt.At), v); err != nil {
			return err
		}
		return prune(b, p, pt.At.Add(-MaxAge), MaxPoints)
	})
	if err != nil {
		return fmt.Errorf("history: append %s/%s: %w", k, id, err)
	}
	return nil
}

// prune drops the series' points before cutoff, then the oldest beyond
// keep.
func prune(b kv.Bucket, p []byte, cutoff time.Time, keep int) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	cut := key(p, cutoff)
	drop := 0
	for drop < len(keys) && string(keys[drop]) < string(cut) {
		drop++
	}
	drop = max(drop, len(keys)-keep)
	for _, k := range keys[:drop] {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }

// Points returns the series (k, id), oldest first.
func (h *History) Points(ctx context.Context, k Kind, id string) ([]Point, error) {
	p, err := prefix(k, id)
	if err != nil {
		return nil, err
	}
	var out []Point
	err = h.b.View(ctx, func(tx kv.Tx) error {
		c := tx.Bucket(bHistory).Cursor()
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
			var pt Point
			if err := json.Unmarshal(v, &pt); err != nil {
				return fmt.Errorf("decode point: %w", err)
			}
			out = append(out, pt)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history: read %s/%s: %w", k, id, err)
	}
	return out, nil
}
