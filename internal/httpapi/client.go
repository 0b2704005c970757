package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/outpost/outpost/internal/catalog"
)

// Client calls the control plane API. Errors come back as *catalog.Error
// with the server's code, so callers branch on catalog.ErrorCode as they
// would in-process.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Do sends a JSON request (body may be nil) and decodes a JSON answer into
// out (may be nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	return c.DoRaw(ctx, method, path, "application/json", rd, -1, out)
}

// DoRaw sends body with the given content type and length (-1 unknown).
func (c *Client) DoRaw(ctx context.Context, method, path, contentType string, body io.Reader, length int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
		if length >= 0 {
			req.ContentLength = length
		}
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return catalog.Errorf(catalog.EUNAVAILABLE, "%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeError(resp)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw, err = io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	var b errorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &b) == nil && b.Error.Code != "" {
		return &catalog.Error{Code: b.Error.Code, Message: b.Error.Message}
	}
	return &catalog.Error{Code: CodeOf(resp.StatusCode), Message: fmt.Sprintf("server answered %s", resp.Status)}
}
