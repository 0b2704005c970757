package controlplane

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/kvstore"
)

// Webhooks is the vendor's webhook subscriptions and their delivery log
// (docs/webhooks.md). Admin only.
type Webhooks interface {
	// CreateWebhook subscribes an endpoint; its secret is returned once.
	CreateWebhook(ctx context.Context, in WebhookInput) (*WebhookCreated, error)
	Webhooks(ctx context.Context) ([]*webhook.Subscription, error)
	DeleteWebhook(ctx context.Context, id string) error
	WebhookDeliveries(ctx context.Context, id string, limit int) ([]webhook.Delivery, error)
	WebhookAttempts(ctx context.Context, deliveryID string) ([]webhook.Attempt, error)
	// RedeliverWebhook requeues a delivery, delivered or failed, due now.
	RedeliverWebhook(ctx context.Context, deliveryID string) error
}

// WebhookInput subscribes an endpoint to event types ("*" for all), for
// one tenant's events (and those of no tenant) when TenantID is set.
type WebhookInput struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	TenantID   string   `json:"tenant_id,omitempty"`
}

// WebhookCreated is a new subscription with its secret, shown this once.
type WebhookCreated struct {
	*webhook.Subscription
}

// auditWebhooks maps the audit events that have a webhook event type.
var auditWebhooks = map[string]string{
	"release.created":          webhook.ReleasePublished,
	"release.revoked":          webhook.ReleaseRevoked,
	"snapshot.created":         webhook.SnapshotBuilt,
	EventRolloutAdvanced:       webhook.RolloutAdvanced,
	EventRolloutHalted:         webhook.RolloutHalted,
	EventReportImported:        webhook.ReportImported,
	"mirror.snapshot.synced":   webhook.MirrorSynced,
	"mirror.snapshot.imported": webhook.MirrorSynced,
	EventSeatsExhausted:        webhook.LeaseSeatsExhausted,
	EventForkDetected:          webhook.MirrorForkDetected,
	EventMirrorStale:           webhook.MirrorStale,
	EventMirrorRecovered:       webhook.MirrorSynced,
}

// EventSeatsExhausted is the audit event of a lease refused for lack of
// seats.
const EventSeatsExhausted = "lease.seats_exhausted"

// noteSeatsExhausted records a lease refused for lack of seats (the only
// conflict the store's lease admission answers), at most once a minute
// per entitlement, so a client retrying in a loop does not flood the log
// or the webhooks. Best effort: a failure to record is logged.
func (a *App) noteSeatsExhausted(ctx context.Context, e *catalog.Entitlement, in Subject, refusal error) {
	if catalog.ErrorCode(refusal) != catalog.ECONFLICT {
		return
	}
	now := a.now()
	payload, err := json.Marshal(map[string]any{
		"entitlement_id": e.EntitlementID, "product_id": e.ProductID, "subject_type": in.SubjectType,
		"subject_id": in.SubjectID, "reason": refusal.Error(),
	})
	if err == nil {
		ev := &catalog.AuditEvent{TenantID: e.TenantID, EventType: EventSeatsExhausted, Payload: payload, CreatedAt: now}
		_, err = a.store.AppendAudit(ctx, ev, "seats_exhausted:"+e.EntitlementID+":"+now.Format("2006-01-02T15:04"))
	}
	if err != nil {
		a.log.Warn("lease refusal not recorded", "entitlement", e.EntitlementID, "err", err)
	}
}

// maxWebhookMember drops payload members larger than this from an
// event's data (a snapshot's manifest summary, say), keeping it small.
const maxWebhookMember = 4 << 10

// WebhookEvent is the webhook event an audit event makes, if any: the same
// id (so a receiver can find it in the audit log), the mapped type, and
// the audit payload as data, without members larger than 4 KiB.
func WebhookEvent(ev *catalog.AuditEvent) (webhook.Event, bool) {
	typ, ok := auditWebhooks[ev.EventType]
	if !ok {
		return webhook.Event{}, false
	}
	var members map[string]json.RawMessage
	data := json.RawMessage(`{}`)
	if json.Unmarshal(ev.Payload, &members) == nil {
		for k, v := range members {
			if len(v) > maxWebhookMember {
				delete(members, k)
			}
		}
		members["audit_event_type"], _ = json.Marshal(ev.EventType)
		if raw, err := json.Marshal(members); err == nil && len(raw) <= webhook.MaxDataBytes {
			data = raw
		}
	}
	return webhook.Event{ID: ev.EventID, Type: typ, TenantID: ev.TenantID, CreatedAt: ev.CreatedAt.UTC(), Data: data}, true
}

// enqueueWebhook is the store's audit hook: the webhook event of an audit
// event enters the outbox in the transaction that appends it.
func enqueueWebhook(tx kv.Tx, ev *catalog.AuditEvent) error {
	wev, ok := WebhookEvent(ev)
	if !ok {
		return nil
	}
	if err := kvstore.EnqueueTx(tx, wev); err != nil {
		return fmt.Errorf("enqueue webhook %s: %w", wev.Type, err)
	}
	return nil
}

// installWebhooks opens the outbox on the store's backend and hooks it to
// the audit log; nil when the store is not on store/kv.
func installWebhooks(st any, secrets *Sealer) webhook.Store {
	b, ok := st.(interface{ Backend() kv.Backend })
	h, hok := st.(interface{ SetAuditHook(kv.AuditHook) })
	if !ok || !hok {
		return nil
	}
	h.SetAuditHook(enqueueWebhook)
	return &sealedOutbox{Store: kvstore.New(b.Backend()), secrets: secrets}
}

// WebhookStore is the outbox the daemon's Dispatcher works through (nil
// without one); subscription secrets come out of it opened.
func (a *App) WebhookStore() webhook.Store { return a.hooks }

// sealedOutbox keeps subscription secrets sealed with the data-encryption
// key at rest and opens them for the dispatcher.
type sealedOutbox struct {
	webhook.Store
	secrets *Sealer
}

// Unwrap is the outbox as stored, secrets sealed.
func (s *sealedOutbox) Unwrap() webhook.Store { return s.Store }

const sealedPrefix = "sealed:"

func secretAD(subID string) string { return "webhook-secret:" + subID }

func (s *sealedOutbox) seal(sub webhook.Subscription) (webhook.Subscription, error) {
	if s.secrets == nil || strings.HasPrefix(sub.Secret, sealedPrefix) {
		return sub, nil
	}
	raw, err := s.secrets.Seal(secretAD(sub.ID), []byte(sub.Secret))
	if err != nil {
		return sub, fmt.Errorf("seal webhook secret: %w", err)
	}
	sub.Secret = sealedPrefix + base64.RawStdEncoding.EncodeToString(raw)
	return sub, nil
}

func (s *sealedOutbox) open(sub webhook.Subscription) (webhook.Subscription, error) {
	rest, ok := strings.CutPrefix(sub.Secret, sealedPrefix)
	if !ok || s.secrets == nil {
		return sub, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err == nil {
		raw, err = s.secrets.Open(secretAD(sub.ID), raw)
	}
	if err != nil {
		return sub, fmt.Errorf("webhook %s secret: %w", sub.ID, err)
	}
	sub.Secret = string(raw)
	return sub, nil
}

func (s *sealedOutbox) PutSubscription(ctx context.Context, sub webhook.Subscription) error {
	sub, err := s.seal(sub)
	if err != nil {
		return err
	}
	return s.Store.PutSubscription(ctx, sub)
}

func (s *sealedOutbox) Subscription(ctx context.Context, id string) (webhook.Subscription, error) {
	sub, err := s.Store.Subscription(ctx, id)
	if err != nil {
		return sub, err
	}
	return s.open(sub)
}

func (s *sealedOutbox) Subscriptions(ctx context.Context) ([]webhook.Subscription, error) {
	subs, err := s.Store.Subscriptions(ctx)
	for i := range subs {
		if err == nil {
			subs[i], err = s.open(subs[i])
		}
	}
	return subs, err
}

func (s *sealedOutbox) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]webhook.Claimed, error) {
	cs, err := s.Store.Claim(ctx, now, leaseUntil, limit)
	for i := range cs {
		if err == nil {
			cs[i].Subscription, err = s.open(cs[i].Subscription)
		}
	}
	return cs, err
}

func (a *App) webhooksAdmin(ctx context.Context) error {
	if principal(ctx).Role != catalog.RoleAdmin {
		return catalog.Errorf(catalog.EFORBIDDEN, "webhooks need an admin token")
	}
	if a.hooks == nil {
		return catalog.Errorf(catalog.EUNAVAILABLE, "this store keeps no webhook outbox")
	}
	return nil
}

func notFoundWebhook(err error, kind, id string) error {
	if errors.Is(err, webhook.ErrNotFound) {
		return catalog.NotFound(kind, id)
	}
	return err
}

// CreateWebhook subscribes an endpoint. Plain http:// is accepted only
// with Config.AllowPrivateWebhooks (tests, a lab).
func (a *App) CreateWebhook(ctx context.Context, in WebhookInput) (*WebhookCreated, error) {
	if err := a.webhooksAdmin(ctx); err != nil {
		return nil, err
	}
	if in.TenantID != "" {
		if _, err := a.Tenant(ctx, in.TenantID); err != nil {
			return nil, err
		}
	}
	sub, err := webhook.NewSubscription(in.URL, in.EventTypes, in.TenantID, a.cfg.AllowPrivateWebhooks, a.now())
	if err != nil {
		return nil, err
	}
	if err := a.hooks.PutSubscription(ctx, sub); err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(map[string]any{"id": sub.ID, "url": sub.URL, "event_types": sub.EventTypes, "tenant_id": sub.TenantID})
	if _, err := a.store.AppendAudit(ctx, &catalog.AuditEvent{EventType: "webhook.created", Payload: payload}, ""); err != nil {
		return nil, err
	}
	return &WebhookCreated{Subscription: &sub}, nil
}

// Webhooks lists the subscriptions, secrets withheld.
func (a *App) Webhooks(ctx context.Context) ([]*webhook.Subscription, error) {
	if err := a.webhooksAdmin(ctx); err != nil {
		return nil, err
	}
	subs, err := a.hooks.Subscriptions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*webhook.Subscription, 0, len(subs))
	for i := range subs {
		subs[i].Secret = ""
		out = append(out, &subs[i])
	}
	return out, nil
}

// DeleteWebhook removes a subscription; its pending deliveries fail.
func (a *App) DeleteWebhook(ctx context.Context, id string) error {
	if err := a.webhooksAdmin(ctx); err != nil {
		return err
	}
	if err := a.hooks.DeleteSubscription(ctx, id); err != nil {
		return notFoundWebhook(err, "webhook", id)
	}
	payload, _ := json.Marshal(map[string]any{"id": id})
	_, err := a.store.AppendAudit(ctx, &catalog.AuditEvent{EventType: "webhook.deleted", Payload: payload}, "")
	return err
}

// WebhookDeliveries lists a subscription's deliveries, newest first.
func (a *App) WebhookDeliveries(ctx context.Context, id string, limit int) ([]webhook.Delivery, error) {
	if err := a.webhooksAdmin(ctx); err != nil {
		return nil, err
	}
	if _, err := a.hooks.Subscription(ctx, id); err != nil {
		return nil, notFoundWebhook(err, "webhook", id)
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return a.hooks.Deliveries(ctx, id, limit)
}

// WebhookAttempts is a delivery's attempt log.
func (a *App) WebhookAttempts(ctx context.Context, deliveryID string) ([]webhook.Attempt, error) {
	if err := a.webhooksAdmin(ctx); err != nil {
		return nil, err
	}
	if _, err := a.hooks.Delivery(ctx, deliveryID); err != nil {
		return nil, notFoundWebhook(err, "delivery", deliveryID)
	}
	return a.hooks.Attempts(ctx, deliveryID)
}

// RedeliverWebhook requeues a delivery due now (the dispatcher picks it
// up at its next look at the outbox).
func (a *App) RedeliverWebhook(ctx context.Context, deliveryID string) error {
	if err := a.webhooksAdmin(ctx); err != nil {
		return err
	}
	return notFoundWebhook(a.hooks.Redeliver(ctx, deliveryID, a.now()), "delivery", deliveryID)
}
