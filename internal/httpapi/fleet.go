package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/wire"
)

// importReport takes a fleet return file as the raw body (a mirror's
// upload or a file carried by hand); the App spools it to a temp file and
// verifies it before anything is ingested.
func (s *Server) importReport(fn func(context.Context, io.Reader) (*controlplane.ReportImport, error)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, controlplane.MaxReportUpload)
		res, err := fn(r.Context(), r.Body)
		if err != nil {
			return err
		}
		wire.WriteJSON(w, http.StatusOK, res)
		return nil
	}
}

func (c *Client) postReport(ctx context.Context, path string, body io.Reader) (*controlplane.ReportImport, error) {
	resp, err := c.send(ctx, "POST", path, "application/x-ndjson", body, -1)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res controlplane.ReportImport
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&res); err != nil {
		return nil, fmt.Errorf("import report: decode answer: %w", err)
	}
	return &res, nil
}

// ImportReport posts a carried return file (admin).
func (c *Client) ImportReport(ctx context.Context, body io.Reader) (*controlplane.ReportImport, error) {
	return c.postReport(ctx, "/v1/reports", body)
}

// UploadReport posts the calling mirror's return file.
func (c *Client) UploadReport(ctx context.Context, body io.Reader) (*controlplane.ReportImport, error) {
	return c.postReport(ctx, "/v1/mirror/reports", body)
}

// noContent answers 204 when fn succeeds.
func noContent(fn func(r *http.Request) error) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := fn(r); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (c *Client) CreateWebhook(ctx context.Context, in controlplane.WebhookInput) (*controlplane.WebhookCreated, error) {
	return one[controlplane.WebhookCreated](ctx, c, "POST", "/v1/webhooks", in)
}

func (c *Client) Webhooks(ctx context.Context) ([]*webhook.Subscription, error) {
	return whole[*webhook.Subscription](ctx, c, "/v1/webhooks")
}

func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/webhooks/"+esc(id), nil, nil)
}

func (c *Client) WebhookDeliveries(ctx context.Context, id string, limit int) ([]webhook.Delivery, error) {
	return whole[webhook.Delivery](ctx, c, "/v1/webhooks/"+esc(id)+"/deliveries")
}

func (c *Client) WebhookAttempts(ctx context.Context, deliveryID string) ([]webhook.Attempt, error) {
	return whole[webhook.Attempt](ctx, c, "/v1/webhooks/deliveries/"+esc(deliveryID)+"/attempts")
}

func (c *Client) RedeliverWebhook(ctx context.Context, deliveryID string) error {
	return c.do(ctx, "POST", "/v1/webhooks/deliveries/"+esc(deliveryID)+"/redeliver", nil, nil)
}
