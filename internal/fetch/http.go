package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// HTTP is an Opener over HTTP GET. newRequest builds the request (URL,
// credentials); HTTP adds the Range header for a non-zero offset, sends
// it with do and reads the answer: 206 gives the Content-Range start and
// total, 200 the whole content (Start 0: the partial file restarts), 416
// ErrRangeNotSatisfiable. Any other answer is fail(resp)'s error (the
// caller's error mapping); the body is closed after fail returns.
func HTTP(do func(*http.Request) (*http.Response, error), newRequest func(ctx context.Context) (*http.Request, error), fail func(*http.Response) error) Opener {
	return func(ctx context.Context, offset int64) (*Body, error) {
		req, err := newRequest(ctx)
		if err != nil {
			return nil, err
		}
		if offset > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		}
		resp, err := do(req)
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			// Content-Length is not trusted as the total: reading stops
			// one byte past the expected size anyway.
			return &Body{ReadCloser: resp.Body, Start: 0, Total: -1}, nil
		case http.StatusPartialContent:
			start, total, err := ParseContentRange(resp.Header.Get("Content-Range"))
			if err != nil {
				drainClose(resp.Body)
				return nil, fmt.Errorf("%w: %w", ErrRange, err)
			}
			return &Body{ReadCloser: resp.Body, Start: start, Total: total}, nil
		case http.StatusRequestedRangeNotSatisfiable:
			drainClose(resp.Body)
			return nil, fmt.Errorf("%w: from byte %d", ErrRangeNotSatisfiable, offset)
		default:
			defer drainClose(resp.Body)
			return nil, fail(resp)
		}
	}
}

// drainClose reads a little of what is left so the connection can be
// reused, then closes.
func drainClose(rc io.ReadCloser) {
	io.CopyN(io.Discard, rc, 4<<10)
	rc.Close()
}

// ParseContentRange parses "bytes START-END/TOTAL"; total is -1 when it
// is "*".
func ParseContentRange(s string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: not bytes", clip(s))
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: no total", clip(s))
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: no range", clip(s))
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("content-range %q: bad range", clip(s))
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return 0, 0, fmt.Errorf("content-range %q: bad total", clip(s))
		}
	}
	return start, total, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
