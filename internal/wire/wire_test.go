package wire

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TestCheckQuery_FastPathAgrees checks the allocation-free fast path of
// CheckQuery against the full parse: whenever the fast path accepts a
// query, url.ParseQuery finds it valid, unrepeated UTF-8.
func TestCheckQuery_FastPathAgrees(t *testing.T) {
	tests := []struct {
		raw      string
		wantFast bool
		wantErr  bool
	}{
		{"", true, false},
		{"a=1&b=2", true, false},
		{"a=1&&b=2&", true, false},
		{"a&b", true, false},
		{"a=1&a=2", false, true},
		{"a&a", false, true},
		{"=1&=2", false, true},
		{"a=%ZZ", false, true},
		{"a=%41&b=1", false, false},
		{"a=1&%61=2", false, true},
		{"a=x+y", false, false},
		{"a=1;b=2", false, true},
		{"a=\xff", false, true},
		{"k\xc3=1", false, true},
		{"é=ü", true, false},
		{"product=prd_1&channel=stable&platform=linux&arch=x64&version=1.0.0&client_id=c-42", true, false},
		{"a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1&q=1", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			if got := PlainQuery(tt.raw); got != tt.wantFast {
				t.Errorf("PlainQuery = %v, want %v", got, tt.wantFast)
			}
			r := httptest.NewRequest("GET", "/x?"+tt.raw, nil)
			r.URL.RawQuery = tt.raw
			if err := CheckQuery(r); (err != nil) != tt.wantErr {
				t.Errorf("CheckQuery = %v, want error %v", err, tt.wantErr)
			}
			// The full parse alone agrees with the fast path's yes.
			if tt.wantFast {
				q, err := url.ParseQuery(tt.raw)
				for k, v := range q {
					if len(v) > 1 {
						err = errors.New("repeated " + k)
					}
				}
				if err != nil {
					t.Errorf("fast path accepted what the full parse refuses: %v", err)
				}
			}
		})
	}
}

// TestWriteLocalError_WholeMessage: on an owner-only local channel the
// error keeps its code and its whole text, internal ones included.
func TestWriteLocalError_WholeMessage(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"internal keeps its text", fmt.Errorf("import: %w", errors.New("disk full at /var/lib/x")), 500, catalog.EINTERNAL},
		{"conflict", catalog.Errorf(catalog.ECONFLICT, "sync: no source configured"), 409, catalog.ECONFLICT},
		{"wrapped invalid", fmt.Errorf("import b.tar: %w", catalog.Invalid("bundle", "not a tar")), 400, catalog.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteLocalError(rec, c.err)
			resp := rec.Result()
			if got := resp.StatusCode; got != c.wantStatus {
				t.Fatalf("status = %d, want %d", got, c.wantStatus)
			}
			got := ReadError(resp).Unwrap()
			if got.Error() != c.err.Error() || catalog.ErrorCode(got) != c.wantCode {
				t.Errorf("got %q (code %s), want %q (code %s)", got, catalog.ErrorCode(got), c.err, c.wantCode)
			}
		})
	}
}
