package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Defaults for WithRequestRetries.
const (
	// maxDoublings caps the wait between attempts at 8 times the first.
	maxDoublings = 3

	DefaultRequestTries  = 3
	DefaultRequestWithin = 30 * time.Second
)

// WithRequestRetries sets how an idempotent request (the update check, a
// snapshot fetch, the server-kind probe: GET and HEAD) is retried after a
// network error or a 502, 503 or 504: at most tries attempts in all, none
// started after within has passed since the first. The waits are the
// backoff of WithRetries, doubling up to 8 times it, with jitter, and at
// least the Retry-After of a 503 (a busy server says when to come back;
// a wait that would pass within is not made). tries 1 disables retries.
// Requests that change state (POST, PUT, DELETE) are never retried.
func WithRequestRetries(tries int, within time.Duration) Option {
	return func(c *Client) error {
		if tries < 1 {
			return errors.New("request retries: tries must be at least 1")
		}
		if within < 0 {
			return errors.New("request retries: within must not be negative")
		}
		c.reqTries, c.reqWithin = tries, within
		return nil
	}
}

// retryable reports whether err is worth another attempt of an idempotent
// request: a transport failure, or a gateway or availability answer.
func retryable(err error) bool {
	if tlsHint(err) != "" {
		return false // a certificate the client does not trust stays so
	}
	if errors.Is(err, ErrNetwork) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// retryAfterOf is the Retry-After a 429 or 503 answer carried (0: none).
func retryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// idempotent runs do (one attempt of an idempotent request) until it
// succeeds, fails with an error retrying cannot help, or the bounds of
// WithRequestRetries are reached; it returns the last error.
func (c *Client) idempotent(ctx context.Context, do func() error) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := do()
		if err == nil || !retryable(err) || attempt >= c.reqTries {
			return err
		}
		wait := jitter(c.backoff << min(attempt-1, maxDoublings))
		if ra := retryAfterOf(err); ra > wait {
			wait = ra // the server said when: sooner only adds to its load
		}
		if time.Since(start)+wait > c.reqWithin {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// jitter returns a wait between d/2 and d, so clients cut off together do
// not come back together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
