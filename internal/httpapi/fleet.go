package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/outpost/outpost/internal/controlplane"
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
