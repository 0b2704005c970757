package controlplaned

import (
	"crypto/tls"
	"net/netip"
	"time"

	"github.com/outpost/outpost/internal/netguard"
	"github.com/outpost/outpost/internal/webhook"
)

// WebhookConfig tunes the daemon's webhook dispatcher; zero values take
// the dispatcher's defaults (docs/webhooks.md).
type WebhookConfig struct {
	BaseDelay    time.Duration // first retry delay (default 10s)
	MaxDelay     time.Duration // retry delay cap (default 1h)
	Timeout      time.Duration // one request (default 10s)
	PollInterval time.Duration // idle look at the outbox (default 1s)
	TLSConfig    *tls.Config   // endpoints' roots (nil: the system's)
}

// dispatcher is the webhook dispatcher over the App's outbox, or nil when
// the store keeps none. Endpoints must be public addresses (the rule of
// EXTERNAL artifact URLs, internal/netguard) unless the service allows
// private webhooks, which also lets plain http:// through.
func (c *ControlPlane) dispatcher() (*webhook.Dispatcher, error) {
	out := c.app.WebhookStore()
	if out == nil {
		return nil, nil
	}
	check := func(a netip.Addr) error { return netguard.Check(a) }
	private := c.app.Config().AllowPrivateWebhooks
	if private {
		check = webhook.AllowAny
	}
	w := c.cfg.Webhooks
	return webhook.NewDispatcher(webhook.Config{
		Store: out, CheckAddr: check, AllowHTTP: private,
		TLSConfig: w.TLSConfig, BaseDelay: w.BaseDelay, MaxDelay: w.MaxDelay, Timeout: w.Timeout, PollInterval: w.PollInterval,
		Logger: c.cfg.logger(),
	})
}
