// Package webhook tells the vendor's own systems what happened: events
// (release.published, rollout.halted, …) go into a durable outbox (Store)
// and a Dispatcher delivers them to subscribed HTTPS endpoints at least
// once, signed with HMAC-SHA256 over a timestamp and the body (Sign,
// Verify), with exponential backoff and jitter, a log of every attempt,
// manual redelivery, and automatic disabling of an endpoint that keeps
// failing. Destinations are checked on the address actually dialled, with
// the daemon's private-address rule.
package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Event types.
const (
	ReleasePublished    = "release.published"
	ReleaseRevoked      = "release.revoked"
	SnapshotBuilt       = "snapshot.built"
	RolloutAdvanced     = "rollout.advanced"
	RolloutHalted       = "rollout.halted"
	MirrorSynced        = "mirror.synced"
	MirrorStale         = "mirror.stale"
	MirrorForkDetected  = "mirror.fork_detected"
	LeaseSeatsExhausted = "lease.seats_exhausted"
	ReportImported      = "report.imported"
	// Ping is sent by hand to test an endpoint.
	Ping = "webhook.ping"
)

// EventTypes lists every type a subscription may name.
var EventTypes = []string{ReleasePublished, ReleaseRevoked, SnapshotBuilt, RolloutAdvanced, RolloutHalted,
	MirrorSynced, MirrorStale, MirrorForkDetected, LeaseSeatsExhausted, ReportImported, Ping}

// AllTypes in a subscription's EventTypes matches every type.
const AllTypes = "*"

// ID prefixes.
const (
	PrefixSubscription = "whk"
	PrefixEvent        = "evt" // the audit log's prefix: an event made from an audit event may reuse its id
)

// MaxDataBytes caps an event's data.
const MaxDataBytes = 64 << 10

// Event is what is delivered: the request body is its JSON.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	TenantID  string          `json:"tenant_id,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// NewEvent makes an event with a fresh id.
func NewEvent(typ, tenantID string, data any, now time.Time) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("new webhook event: %w", err)
	}
	ev := Event{ID: catalog.NewID(PrefixEvent), Type: typ, TenantID: tenantID, CreatedAt: now.UTC(), Data: raw}
	return ev, ev.Validate()
}

// Validate checks an event before it is enqueued.
func (e *Event) Validate() error {
	switch {
	case e.ID == "" || len(e.ID) > 64 || !idChars(e.ID):
		return catalog.Invalid("id", "must be 1 to 64 characters of a-z 0-9 _")
	case !slices.Contains(EventTypes, e.Type):
		return catalog.Invalid("type", "%q is not a webhook event type", clip(e.Type))
	case e.CreatedAt.IsZero():
		return catalog.Invalid("created_at", "is required")
	case len(e.Data) > MaxDataBytes:
		return catalog.Invalid("data", "is larger than %d bytes", MaxDataBytes)
	case len(e.Data) == 0 || !json.Valid(e.Data):
		return catalog.Invalid("data", "must be JSON")
	}
	return nil
}

// Body is the request body: the event's JSON.
func (e *Event) Body() ([]byte, error) { return json.Marshal(e) }

func idChars(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Subscription is an endpoint subscribed to event types.
type Subscription struct {
	ID         string   `json:"id"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	// TenantID, when set, limits the subscription to that tenant's events
	// (events without a tenant still match).
	TenantID string `json:"tenant_id,omitempty"`
	// Secret keys the HMAC. Never shown again after creation.
	Secret         string    `json:"secret"`
	Disabled       bool      `json:"disabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	FailureStreak  int       `json:"failure_streak"`
	CreatedAt      time.Time `json:"created_at"`
}

// NewSubscription makes a subscription with a fresh id and secret.
func NewSubscription(rawURL string, types []string, tenantID string, allowHTTP bool, now time.Time) (Subscription, error) {
	s := Subscription{ID: catalog.NewID(PrefixSubscription), URL: rawURL, EventTypes: types, TenantID: tenantID, Secret: NewSecret(), CreatedAt: now.UTC()}
	return s, s.Validate(allowHTTP)
}

// NewSecret returns a random secret: "whsec_" + 64 hex characters.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "whsec_" + hex.EncodeToString(b[:])
}

// Validate checks a subscription. Plain http endpoints are refused unless
// allowHTTP (tests, a lab); the address rule is applied at dial time.
func (s *Subscription) Validate(allowHTTP bool) error {
	if err := ValidateURL(s.URL, allowHTTP); err != nil {
		return err
	}
	if len(s.EventTypes) == 0 {
		return catalog.Invalid("event_types", "needs at least one type (or \"*\")")
	}
	if len(s.EventTypes) > len(EventTypes) {
		return catalog.Invalid("event_types", "has %d entries, at most %d", len(s.EventTypes), len(EventTypes))
	}
	for i, t := range s.EventTypes {
		if t != AllTypes && !slices.Contains(EventTypes, t) {
			return catalog.Invalid(fmt.Sprintf("event_types[%d]", i), "%q is not one of %s or \"*\"", clip(t), strings.Join(EventTypes, ", "))
		}
	}
	if s.TenantID != "" && !catalog.ValidID(catalog.PrefixTenant, s.TenantID) {
		return catalog.Invalid("tenant_id", "%q is not a tenant id", clip(s.TenantID))
	}
	if len(s.Secret) < 16 || len(s.Secret) > 256 {
		return catalog.Invalid("secret", "must be 16 to 256 characters")
	}
	return nil
}

// ValidateURL checks an endpoint URL.
func ValidateURL(raw string, allowHTTP bool) error {
	if len(raw) > 2048 {
		return catalog.Invalid("url", "is longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return catalog.Invalid("url", "must be an absolute https URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	default:
		return catalog.Invalid("url", "scheme %q: must be https", clip(u.Scheme))
	}
	if u.User != nil {
		return catalog.Invalid("url", "must not carry credentials (the signature authenticates deliveries)")
	}
	if u.Fragment != "" {
		return catalog.Invalid("url", "must not have a fragment")
	}
	return nil
}

// Matches reports whether s wants ev: enabled, the type subscribed, and
// the tenant (if s names one) the event's.
func Matches(s *Subscription, ev *Event) bool {
	if s.Disabled {
		return false
	}
	if s.TenantID != "" && ev.TenantID != "" && s.TenantID != ev.TenantID {
		return false
	}
	return slices.Contains(s.EventTypes, AllTypes) || slices.Contains(s.EventTypes, ev.Type)
}

// State is a delivery's state.
type State string

// The states.
const (
	Pending   State = "pending"
	Delivered State = "delivered"
	Failed    State = "failed" // gave up after MaxAttempts; Redeliver requeues it
)

// Delivery is one event for one subscription. Its id is
// DeliveryID(event, subscription), so expanding an event twice is harmless.
type Delivery struct {
	ID             string    `json:"id"`
	EventID        string    `json:"event_id"`
	SubscriptionID string    `json:"subscription_id"`
	State          State     `json:"state"`
	Attempts       int       `json:"attempts"` // since it was (re)queued
	NextAttempt    time.Time `json:"next_attempt"`
	LastStatus     int       `json:"last_status,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	DeliveredAt    time.Time `json:"delivered_at,omitzero"`
}

// DeliveryID is the id of ev's delivery to sub.
func DeliveryID(eventID, subID string) string { return eventID + "." + subID }

// Attempt is one try, as logged.
type Attempt struct {
	DeliveryID string        `json:"delivery_id"`
	N          int           `json:"n"` // 1, 2, … over the delivery's whole life (set by the store)
	At         time.Time     `json:"at"`
	Status     int           `json:"status,omitempty"` // HTTP status; 0 when no response
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// ErrNotFound is returned for an unknown subscription, event or delivery.
var ErrNotFound = errors.New("webhook: not found")
