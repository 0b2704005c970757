// Package ratelimit limits requests per client: each key (a client token
// id, or the remote IP when there is none) gets a token bucket of a
// configured rate and burst (golang.org/x/time/rate). A request over the
// limit is answered 429 rate_limited in the one error shape of
// internal/wire, with Retry-After saying when the next one will pass.
//
// Memory is bounded: at most MaxClients buckets are kept, the least
// recently used dropped first. A dropped bucket had been idle longest; if
// it was full anyway (idle for Burst/Rate or more) dropping it changes
// nothing, otherwise its client starts again from a full burst.
package ratelimit

import (
	"container/list"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/wire"
)

// DefaultMaxClients is the bucket cap when Config.MaxClients is 0.
const DefaultMaxClients = 10_000

// Config sets a limiter's rate.
type Config struct {
	// Rate is the sustained number of requests per second a client may
	// make; it must be positive.
	Rate float64
	// Burst is how many requests a client may make at once; at least 1.
	Burst int
	// MaxClients caps how many clients' buckets are kept (0: 10000).
	MaxClients int
	// Now is the clock (nil: time.Now); tests replace it.
	Now func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !(c.Rate > 0) || c.Rate > 1e9 {
		return fmt.Errorf("ratelimit: rate must be a positive number of requests per second, not %v", c.Rate)
	}
	if c.Burst < 1 {
		return fmt.Errorf("ratelimit: burst must be at least 1, not %d", c.Burst)
	}
	if c.MaxClients < 0 {
		return fmt.Errorf("ratelimit: max clients must not be negative, not %d", c.MaxClients)
	}
	return nil
}

// Limiter holds one token bucket per client key.
type Limiter struct {
	rate     rate.Limit
	burst    int
	max      int
	now      func() time.Time
	rejected atomic.Uint64

	mu    sync.Mutex
	lru   *list.List // of *entry, most recently used at the front
	byKey map[string]*list.Element
}

type entry struct {
	key string
	lim *rate.Limiter
}

// New returns a limiter for cfg.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Limiter{rate: rate.Limit(cfg.Rate), burst: cfg.Burst, max: cfg.MaxClients, now: cfg.Now,
		lru: list.New(), byKey: map[string]*list.Element{}}
	if l.max == 0 {
		l.max = DefaultMaxClients
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Allow takes one token from key's bucket. When there is none it takes
// nothing and returns false and how long until there will be one.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.bucket(key)
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		l.rejected.Add(1)
		return false, d
	}
	return true, 0
}

// bucket returns key's limiter, creating it and evicting the least
// recently used one past the cap. l.mu is held.
func (l *Limiter) bucket(key string) *rate.Limiter {
	if el, ok := l.byKey[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*entry).lim
	}
	for l.lru.Len() >= l.max {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.byKey, old.Value.(*entry).key)
	}
	e := &entry{key: key, lim: rate.NewLimiter(l.rate, l.burst)}
	l.byKey[key] = l.lru.PushFront(e)
	return e.lim
}

// Len is the number of buckets kept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// Rejected is the number of requests refused so far.
func (l *Limiter) Rejected() uint64 { return l.rejected.Load() }

// Error is the answer to a request over its limit: a rate_limited domain
// error whose RetryAfter wire.WriteError turns into the Retry-After header.
type Error struct {
	After time.Duration
}

func (e *Error) Error() string {
	secs := (e.After + time.Second - 1) / time.Second
	return fmt.Sprintf("too many requests: try again in %ds", max(secs, 1))
}

// RetryAfter is how long the client should wait.
func (e *Error) RetryAfter() time.Duration { return e.After }

// Unwrap gives the domain error, so catalog.ErrorCode is rate_limited.
func (e *Error) Unwrap() error {
	return &catalog.Error{Code: catalog.ERATELIMITED, Message: e.Error()}
}

// KeyFunc names the client a request comes from; "" falls back to the
// remote IP.
type KeyFunc func(r *http.Request) string

// Middleware limits each client of next. key names the client (nil: the
// remote IP); a request it names "" is keyed by its remote IP (an IPv6
// address by its /64). Keys from key should carry their own prefix
// ("tok:<id>") so they cannot meet an IP key. Over the
// limit, the answer is 429 rate_limited with Retry-After, and next is not
// called. log may be nil.
func (l *Limiter) Middleware(key KeyFunc, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := ""
			if key != nil {
				k = key(r)
			}
			if k == "" {
				k = ipKey(RemoteIP(r))
			}
			if ok, after := l.Allow(k); !ok {
				wire.WriteError(w, r, log, &Error{After: after})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ipKey keys an IPv4 address by itself and an IPv6 address by its /64,
// the block one site or host is usually given whole.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}

// RemoteIP is the IP of the peer that sent r (r.RemoteAddr without the
// port). Forwarding headers are not trusted.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
