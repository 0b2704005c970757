package wire

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

type retryErr struct{ err *catalog.Error }

func (e retryErr) Error() string           { return e.err.Error() }
func (retryErr) RetryAfter() time.Duration { return 2 * time.Second }
func (e retryErr) Unwrap() error           { return e.err }

func TestWriteError_RoundTrip(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantField  string
		wantRetry  string
	}{
		{"not found", catalog.NotFound("release", "rel_1"), 404, catalog.ENOTFOUND, "", ""},
		{"invalid field", fmt.Errorf("create: %w", catalog.Invalid("version", "is required")), 400, catalog.EINVALID, "version", ""},
		{"internal hides details", errors.New("disk on fire at /secret/path"), 500, catalog.EINTERNAL, "", ""},
		{"body too large", &http.MaxBytesError{Limit: 10}, 413, catalog.ETOOLARGE, "", ""},
		{"rate limited", retryErr{catalog.Errorf(catalog.ERATELIMITED, "slow down")}, 429, catalog.ERATELIMITED, "", "2"},
		{"busy", retryErr{catalog.Errorf(catalog.EUNAVAILABLE, "busy")}, 503, catalog.EUNAVAILABLE, "", "2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, httptest.NewRequest("GET", "/x", nil), nil, c.err)
			resp := rec.Result()
			if got := resp.StatusCode; got != c.wantStatus {
				t.Fatalf("status = %d, want %d", got, c.wantStatus)
			}
			if got := resp.Header.Get(HeaderRetryAfter); got != c.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, c.wantRetry)
			}
			e := ReadError(resp)
			if e.Code != c.wantCode || e.Field != c.wantField {
				t.Errorf("got code %q field %q, want %q %q", e.Code, e.Field, c.wantCode, c.wantField)
			}
			if strings.Contains(e.Message, "secret") {
				t.Errorf("internal details leaked: %q", e.Message)
			}
			if got := catalog.ErrorCode(e); got != c.wantCode {
				t.Errorf("catalog.ErrorCode across the wire = %q, want %q", got, c.wantCode)
			}
			if want := map[string]time.Duration{"": 0, "2": 2 * time.Second}[c.wantRetry]; e.RetryAfter != want {
				t.Errorf("RetryAfter across the wire = %v, want %v", e.RetryAfter, want)
			}
		})
	}
}

func TestParseRetryAfter_Forms(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"99999999999999999", 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(100 * 24 * time.Hour).Format(http.TimeFormat), 24 * time.Hour, true},
		{"soon", 0, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, ok := ParseRetryAfter(c.in, now)
			if got != c.want || ok != c.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %v, %v, want %v, %v", c.in, got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestReadError_HostileBody(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		body     string
		wantCode string
	}{
		{"plain text", 404, "nope", catalog.ENOTFOUND},
		{"empty", 503, "", catalog.EUNAVAILABLE},
		{"control characters", 400, `{"error":{"code":"invalid","message":"\u001b[31mred"}}`, catalog.EINVALID},
		{"huge", 500, strings.Repeat("x", 1<<20), catalog.EINTERNAL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: c.status, Body: io.NopCloser(strings.NewReader(c.body))}
			e := ReadError(resp)
			if e.Code != c.wantCode {
				t.Errorf("code = %q, want %q", e.Code, c.wantCode)
			}
			if strings.ContainsRune(e.Message, 0x1b) || len(e.Message) > 520 {
				t.Errorf("message not cleaned: %q", e.Message[:min(len(e.Message), 40)])
			}
		})
	}
}

func TestStatusOf_EveryCodeMapsBack(t *testing.T) {
	for code, status := range codeStatus {
		if code == catalog.EINTERNAL {
			continue
		}
		if got := CodeOf(StatusOf(code)); got != code {
			t.Errorf("CodeOf(StatusOf(%q)) = %q (status %d)", code, got, status)
		}
	}
}

func TestStatusOf_NoSpaceIs507(t *testing.T) {
	if got, want := StatusOf(catalog.ENOSPACE), http.StatusInsufficientStorage; got != want {
		t.Errorf("StatusOf(%q) = %d, want %d", catalog.ENOSPACE, got, want)
	}
}
