package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Seat assignment modes.
const (
	SeatsAutomatic = "automatic"
	SeatsExplicit  = "explicit"
)

// EntitlementPolicy is an entitlement's policy_json (docs/licensing.md).
type EntitlementPolicy struct {
	// MaxSeats is the number of seats sold, at least 1.
	MaxSeats int `json:"max_seats"`
	// SeatAssignmentMode: automatic (default; any subject takes a free
	// seat with a lease) or explicit (only assigned subjects get leases).
	SeatAssignmentMode string `json:"seat_assignment_mode,omitempty"`
	// LeaseTTL is how long a lease lasts before it must be renewed
	// (Go duration, default 24h, 1m..8760h).
	LeaseTTL Duration `json:"lease_ttl,omitempty"`
	// Features the licence unlocks, carried in lease tokens.
	Features []string `json:"features,omitempty"`
	// OfflineGrace is how long past expires_at a client may keep using a
	// lease it cannot renew (default 0, at most 720h).
	OfflineGrace Duration `json:"offline_grace,omitempty"`
	// MirrorSeats gives mirrors (by mirror_id) seats they may hand out
	// offline. These are taken out of the control plane's own pool, so the
	// two sides together never exceed MaxSeats.
	MirrorSeats map[string]int `json:"mirror_seats,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("24h").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("must be a duration string such as \"24h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"24h\"", s)
	}
	*d = Duration(v)
	return nil
}

// ParseEntitlementPolicy decodes and validates policy_json strictly:
// unknown keys and ill-typed values are EINVALID errors naming the key.
// Defaults are filled in.
func ParseEntitlementPolicy(raw json.RawMessage) (*EntitlementPolicy, error) {
	if len(raw) == 0 {
		return nil, Invalid("policy_json", "is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p EntitlementPolicy
	if err := dec.Decode(&p); err != nil {
		return nil, Invalid("policy_json", "%s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Invalid("policy_json", "trailing data after the object")
	}
	if p.MaxSeats < 1 || p.MaxSeats > 1_000_000 {
		return nil, Invalid("policy_json.max_seats", "must be between 1 and 1000000")
	}
	if p.SeatAssignmentMode == "" {
		p.SeatAssignmentMode = SeatsAutomatic
	}
	if err := ValidateEnum("policy_json.seat_assignment_mode", p.SeatAssignmentMode, []string{SeatsAutomatic, SeatsExplicit}); err != nil {
		return nil, err
	}
	if p.LeaseTTL == 0 {
		p.LeaseTTL = Duration(24 * time.Hour)
	}
	if p.LeaseTTL < Duration(time.Minute) || p.LeaseTTL > Duration(8760*time.Hour) {
		return nil, Invalid("policy_json.lease_ttl", "must be between 1m and 8760h")
	}
	if p.OfflineGrace < 0 || p.OfflineGrace > Duration(720*time.Hour) {
		return nil, Invalid("policy_json.offline_grace", "must be between 0 and 720h")
	}
	if len(p.Features) > 256 {
		return nil, Invalid("policy_json.features", "at most 256 features")
	}
	for _, f := range p.Features {
		if f == "" || len(f) > 128 || strings.ContainsAny(f, "\x00\n\r\t") {
			return nil, Invalid("policy_json.features", "each feature must be 1..128 printable bytes")
		}
	}
	sort.Strings(p.Features)
	// Checked sum: total never exceeds MaxSeats, so MaxSeats-total cannot
	// overflow, and a huge count cannot wrap the sum negative and slip
	// under the cap. Sorted, so the error names the same mirror each time.
	total := 0
	for _, id := range slices.Sorted(maps.Keys(p.MirrorSeats)) {
		n := p.MirrorSeats[id]
		if !ValidID(PrefixMirror, id) {
			return nil, Invalid("policy_json.mirror_seats", "%q is not a mirror id", id)
		}
		if n < 0 {
			return nil, Invalid("policy_json.mirror_seats", "seats for %s must not be negative", id)
		}
		if n > p.MaxSeats-total {
			return nil, Invalid("policy_json.mirror_seats", "mirrors are given more seats than max_seats %d (%d before %s, which asks for %d)", p.MaxSeats, total, id, n)
		}
		total += n
	}
	return &p, nil
}

// OnlineSeats is the number of seats the control plane itself may hand
// out: max_seats less those delegated to mirrors. It is always between 0
// and MaxSeats, even for a policy that did not pass
// ParseEntitlementPolicy (negative or huge mirror counts cannot raise it).
func (p *EntitlementPolicy) OnlineSeats() int {
	n := max(p.MaxSeats, 0)
	for _, s := range p.MirrorSeats {
		if s <= 0 {
			continue
		}
		if s >= n {
			return 0
		}
		n -= s
	}
	return n
}

// jsonErrorText turns encoding/json errors into messages that name the
// field.
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: must be %s, not %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("must be %s, not %s", te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "malformed JSON: unexpected end of input"
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + rest
	}
	return strings.TrimPrefix(msg, "json: ")
}

// DecodeStrict decodes one JSON object from r into v, rejecting unknown
// fields, ill-typed values and trailing data with EINVALID errors that name
// the field.
func DecodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return Errorf(EINVALID, "request body is empty")
		}
		var me interface{ Error() string }
		if errors.As(err, &me) && strings.Contains(err.Error(), "http: request body too large") {
			return Errorf(ETOOLARGE, "request body too large")
		}
		return Errorf(EINVALID, "%s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(EINVALID, "trailing data after the JSON object")
	}
	return nil
}
