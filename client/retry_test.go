package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// flakyServer resets the connection of the first fail requests (or
// answers them with failStatus when it is not 0), then answers an
// up-to-date decision.
func flakyServer(t *testing.T, fail int64, failStatus int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= fail {
			if failStatus != 0 {
				w.WriteHeader(failStatus)
				return
			}
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Error("no hijacker")
				return
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"update_available":false,"action":"NONE"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestCheck_RetriesIdempotentRequests(t *testing.T) {
	q := Query{Product: "p", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"}
	cases := []struct {
		name      string
		fail      int64
		status    int
		tries     int
		wantErr   error
		wantCalls int64
	}{
		{"two resets then ok", 2, 0, 3, nil, 3},
		{"three resets exhaust three tries", 3, 0, 3, ErrNetwork, 3},
		{"one try means no retry", 1, 0, 1, ErrNetwork, 1},
		{"503 is retried", 2, http.StatusServiceUnavailable, 3, nil, 3},
		{"500 is not retried", 1, http.StatusInternalServerError, 3, nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, calls := flakyServer(t, c.fail, c.status)
			cl, err := New(srv.URL, WithRetries(0, time.Millisecond), WithRequestRetries(c.tries, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.Check(context.Background(), q)
			switch {
			case c.status == http.StatusInternalServerError:
				if ErrorCode(err) != CodeInternal {
					t.Errorf("err = %v, want the server's internal error", err)
				}
			case c.wantErr == nil && err != nil:
				t.Errorf("err = %v, want nil", err)
			case c.wantErr != nil && !errors.Is(err, c.wantErr):
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
			if got := calls.Load(); got != c.wantCalls {
				t.Errorf("requests = %d, want %d", got, c.wantCalls)
			}
		})
	}
}

func TestIdempotent_StopsAtWithin(t *testing.T) {
	srv, calls := flakyServer(t, 10, 0)
	// The first wait (1 h, jittered to at least 30 min) would end past
	// within: one attempt only, no sleep.
	cl, err := New(srv.URL, WithRetries(0, time.Hour), WithRequestRetries(5, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Check(context.Background(), Query{Product: "p", Channel: "c", Platform: "l", Arch: "a", Version: "1"})
	if !errors.Is(err, ErrNetwork) {
		t.Errorf("err = %v, want ErrNetwork", err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestJitter_Bounds(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, time.Millisecond, time.Second} {
		for range 100 {
			if got := jitter(d); got < d/2 || got > d {
				t.Fatalf("jitter(%v) = %v, want within [%v, %v]", d, got, d/2, d)
			}
		}
	}
}

func TestWithRequestRetries_Rejects(t *testing.T) {
	for _, c := range []struct {
		tries  int
		within time.Duration
	}{{0, time.Second}, {3, -time.Second}} {
		if _, err := New("http://127.0.0.1:1", WithRequestRetries(c.tries, c.within)); !errors.Is(err, ErrConfig) {
			t.Errorf("WithRequestRetries(%d, %v) err = %v, want ErrConfig", c.tries, c.within, err)
		}
	}
}

// TestIdempotent_RespectsRetryAfter: a busy server's Retry-After is the
// least wait; one that would end past within is not waited for.
func TestIdempotent_RespectsRetryAfter(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"busy"}}`))
	}))
	t.Cleanup(srv.Close)
	cl, err := New(srv.URL, WithRetries(0, time.Millisecond), WithRequestRetries(5, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Check(context.Background(), Query{Product: "p", Channel: "c", Platform: "l", Arch: "a", Version: "1"})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *Error", err)
	}
	if e.Code != CodeUnavailable || e.RetryAfter != time.Hour {
		t.Errorf("code, retry after = %q, %v, want unavailable, 1h", e.Code, e.RetryAfter)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("requests = %d, want 1 (a 1 h Retry-After ends past within)", got)
	}
}
