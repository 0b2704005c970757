package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/tuf"
)

// tufPrefix is where the source publishes the tenant's TUF repository.
func (s *HTTPSource) tufPrefix() string {
	if s.upstream {
		return "/tuf/"
	}
	return "/v1/mirror/tuf/"
}

// Fetch implements Source (tuf.Fetcher) over HTTP. The transport asks
// for gzip and inflates; the client caps the inflated bytes. The
// timestamp is asked with If-None-Match of the last one, so an idle sync
// is a 304.
func (s *HTTPSource) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	if err := tuf.CheckPath(path); err != nil {
		return nil, fmt.Errorf("tuf path: %w", err)
	}
	req, err := s.request(ctx, http.MethodGet, s.tufPrefix()+path, nil)
	if err != nil {
		return nil, err
	}
	isTS := path == storeTimestamp
	s.tsMu.Lock()
	etag, cached := s.tsETag, s.tsBody
	s.tsMu.Unlock()
	if isTS && etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && isTS && etag != "":
		resp.Body.Close()
		return io.NopCloser(bytesReader(cached)), nil
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		defer resp.Body.Close()
		return nil, statusError("fetch "+path, resp)
	}
	if resp.ContentLength > maxBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %d bytes, at most %d: %w", path, resp.ContentLength, maxBytes, tuf.ErrTooLarge)
	}
	if !isTS {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	b, err := readCapped(resp.Body, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	if tag := resp.Header.Get("ETag"); tag != "" {
		s.tsMu.Lock()
		s.tsETag, s.tsBody = tag, b
		s.tsMu.Unlock()
	}
	return io.NopCloser(bytesReader(b)), nil
}

// TUFTarget implements Source: a ranged GET of the published path.
func (s *HTTPSource) TUFTarget(ctx context.Context, path string, offset int64) (*fetch.Body, error) {
	if err := tuf.CheckPath(path); err != nil {
		return nil, fmt.Errorf("tuf path: %w", err)
	}
	open := fetch.HTTP(s.client.Do,
		func(ctx context.Context) (*http.Request, error) {
			return s.request(ctx, http.MethodGet, s.tufPrefix()+path, nil)
		},
		func(resp *http.Response) error { return statusError("fetch "+path, resp) })
	b, err := open(ctx, offset)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	return b, nil
}

// Fetch implements Source on the upstream mirror's /tuf/.
func (u *UpstreamSource) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	return u.h.Fetch(ctx, path, maxBytes)
}

// TUFTarget implements Source on the upstream mirror's /tuf/.
func (u *UpstreamSource) TUFTarget(ctx context.Context, path string, offset int64) (*fetch.Body, error) {
	return u.h.TUFTarget(ctx, path, offset)
}

// Fetch implements Source: the repository's files under the bucket
// prefix (<prefix>metadata/…, <prefix>targets/…).
func (b *BucketSource) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	if err := tuf.CheckPath(path); err != nil {
		return nil, fmt.Errorf("tuf path: %w", err)
	}
	obj, info, err := b.store.Open(ctx, b.prefix+path)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if info.Size > maxBytes {
		obj.Close()
		return nil, fmt.Errorf("%s: %d bytes, at most %d: %w", path, info.Size, maxBytes, tuf.ErrTooLarge)
	}
	return obj, nil
}

// TUFTarget implements Source.
func (b *BucketSource) TUFTarget(ctx context.Context, path string, offset int64) (*fetch.Body, error) {
	if err := tuf.CheckPath(path); err != nil {
		return nil, fmt.Errorf("tuf path: %w", err)
	}
	obj, _, err := b.store.Open(ctx, b.prefix+path)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, permanent("%s not in the bucket", b.prefix+path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if offset > 0 {
		if _, err := obj.Seek(offset, io.SeekStart); err != nil {
			obj.Close()
			return nil, fmt.Errorf("seek %s to %d: %w", path, offset, err)
		}
	}
	return &fetch.Body{ReadCloser: obj, Start: offset, Total: -1}, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
