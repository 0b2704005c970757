package ratelimit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/wire"
)

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t *testing.T, cfg Config) (*Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Now = c.Now
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestConfig_Validate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Rate: 1, Burst: 1}, true},
		{"fractional rate", Config{Rate: 0.1, Burst: 5}, true},
		{"zero rate", Config{Rate: 0, Burst: 1}, false},
		{"negative rate", Config{Rate: -1, Burst: 1}, false},
		{"NaN rate", Config{Rate: nan(), Burst: 1}, false},
		{"zero burst", Config{Rate: 1, Burst: 0}, false},
		{"negative max clients", Config{Rate: 1, Burst: 1, MaxClients: -1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if got := err == nil; got != c.ok {
				t.Fatalf("New(%+v) = %v, want ok=%v", c.cfg, err, c.ok)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestLimiter_BurstThenRate(t *testing.T) {
	l, clk := newLimiter(t, Config{Rate: 2, Burst: 3}) // a token every 500ms
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, after := l.Allow("a")
	if ok || after != 500*time.Millisecond {
		t.Fatalf("4th request = %v, retry after %s; want refused, 500ms", ok, after)
	}
	// A refused request takes no token: waiting the advertised time is enough.
	ok, after = l.Allow("a")
	if ok || after != 500*time.Millisecond {
		t.Fatalf("5th request = %v, retry after %s; want refused, 500ms", ok, after)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another client is limited by a's bucket")
	}
	clk.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("request after Retry-After refused")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("second request after one refill allowed")
	}
	if got := l.Rejected(); got != 3 {
		t.Fatalf("Rejected = %d, want 3", got)
	}
}

func TestLimiter_BoundedMemory(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 1, Burst: 1, MaxClients: 3})
	l.Allow("hot")
	for i := range 100 {
		l.Allow(fmt.Sprint("k", i))
		l.Allow("hot") // keeps hot recently used; refused, bucket empty
		if got := l.Len(); got > 3 {
			t.Fatalf("after %d keys Len = %d, want at most 3", i+1, got)
		}
	}
	if ok, _ := l.Allow("hot"); ok {
		t.Fatal("a client in constant use was evicted and got a fresh burst")
	}
	if ok, _ := l.Allow("k0"); !ok {
		t.Fatal("an evicted idle client did not start from a full bucket")
	}
}

func TestMiddleware_Answers429(t *testing.T) {
	l, clk := newLimiter(t, Config{Rate: 0.25, Burst: 1}) // a token every 4s
	calls := 0
	h := l.Middleware(func(r *http.Request) string {
		if tok := r.Header.Get("X-Token"); tok != "" {
			return "tok:" + tok
		}
		return ""
	}, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusNoContent)
	}))
	do := func(remote, token string) *http.Response {
		r := httptest.NewRequest("PUT", "/v1/leases/alice", nil)
		r.RemoteAddr = remote
		if token != "" {
			r.Header.Set("X-Token", token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result()
	}
	cases := []struct {
		name, remote, token string
		wantStatus          int
		wantRetry           string
	}{
		{"first from ip", "192.0.2.1:1000", "", 204, ""},
		{"second from same ip, other port", "192.0.2.1:2000", "", 429, "4"},
		{"other ip", "192.0.2.2:1000", "", 204, ""},
		{"token from the limited ip", "192.0.2.1:1000", "t1", 204, ""},
		{"same token from elsewhere", "198.51.100.9:1", "t1", 429, "4"},
		{"v6 client", "[2001:db8:1:2::1]:1", "", 204, ""},
		{"same v6 /64", "[2001:db8:1:2::ffff]:1", "", 429, "4"},
		{"other v6 /64", "[2001:db8:1:3::1]:1", "", 204, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := calls
			resp := do(c.remote, c.token)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, c.wantStatus)
			}
			if got := resp.Header.Get(wire.HeaderRetryAfter); got != c.wantRetry {
				t.Fatalf("Retry-After = %q, want %q", got, c.wantRetry)
			}
			if c.wantStatus != 429 {
				return
			}
			if calls != before {
				t.Fatal("the handler ran for a refused request")
			}
			var b wire.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
				t.Fatal(err)
			}
			if b.Error.Code != catalog.ERATELIMITED || b.Error.Message == "" {
				t.Fatalf("body = %+v, want code %s with a message", b, catalog.ERATELIMITED)
			}
		})
	}
	clk.Add(4 * time.Second)
	if resp := do("192.0.2.1:3000", ""); resp.StatusCode != 204 {
		t.Fatalf("after Retry-After status = %d, want 204", resp.StatusCode)
	}
}

func TestError_IsRateLimited(t *testing.T) {
	err := fmt.Errorf("lease: %w", &Error{After: 1500 * time.Millisecond})
	if got := catalog.ErrorCode(err); got != catalog.ERATELIMITED {
		t.Fatalf("ErrorCode = %q, want %q", got, catalog.ERATELIMITED)
	}
	rec := httptest.NewRecorder()
	wire.WriteError(rec, httptest.NewRequest("GET", "/", nil), nil, err)
	if rec.Code != 429 || rec.Header().Get(wire.HeaderRetryAfter) != "2" {
		t.Fatalf("answer %d Retry-After %q, want 429 and 2", rec.Code, rec.Header().Get(wire.HeaderRetryAfter))
	}
}

func TestLimiter_Concurrent(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 1, Burst: 50, MaxClients: 8})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprint("k", (g+i)%4)
				if ok, _ := l.Allow(k); ok {
					mu.Lock()
					allowed[k]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for k, n := range allowed {
		if n != 50 {
			t.Errorf("%s: %d allowed with a frozen clock, want exactly the burst 50", k, n)
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	l, err := New(Config{Rate: 1e6, Burst: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("tok:", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

func BenchmarkAllow_Churn(b *testing.B) {
	l, err := New(Config{Rate: 1, Burst: 1, MaxClients: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(fmt.Sprint("ip:", i))
		i++
	}
}
