// Package httpapi is the control plane's HTTP transport: Server exposes a
// controlplane.App (routes.go is the route table: each route, who may call
// it, and its one service call), with authentication, route access, body
// limits, idempotency keys and metrics as middleware and every error
// answered in the internal/wire convention; Client is controlplane.Service
// over the same API.
package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/ratelimit"
	"github.com/outpost/outpost/internal/tlsconf"
	"github.com/outpost/outpost/internal/wire"
)

// Server is the control plane's HTTP API over an App: authentication,
// route access, body limits, idempotency keys and metrics are HTTP
// middleware here; every handler decodes, makes one service call and
// encodes (the route table in routes.go names each one).
type Server struct {
	App *controlplane.App
	Log *slog.Logger
	// MaxBodyBytes caps JSON request bodies (default 1 MiB).
	MaxBodyBytes int64
	// ReadTimeout and WriteTimeout bound reading the body of, and writing
	// the answer to, a JSON route (defaults 30s and 60s). Streaming routes
	// (uploads, downloads, backups, bundles, envelopes) get StreamIdle
	// (default 60s) per read or write instead: a stream may last as long as
	// it keeps moving.
	ReadTimeout, WriteTimeout, StreamIdle time.Duration
	// LeaseLimit, when set, limits each token's lease requests
	// (acquire, renew, release): over it, 429 with Retry-After.
	LeaseLimit *ratelimit.Limiter
	// MirrorClientCert makes the mirror routes (/v1/mirror/*) require a
	// verified TLS client certificate as well as the mirror credential.
	MirrorClientCert bool
	// IdempotencyStale is how long an Idempotency-Key reservation whose
	// request never answered (a crash) holds the key (default
	// DefaultIdempotencyStale).
	IdempotencyStale time.Duration
	// Collectors are more metrics to serve at /metrics (the store's).
	Collectors []prometheus.Collector

	once     sync.Once
	handler  http.Handler
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	idem     keyedMutex
	ready    atomic.Bool
}

// SetReady marks the server ready (readyz) or draining.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(s.init)
	s.handler.ServeHTTP(w, r)
}

func (s *Server) init() {
	if s.MaxBodyBytes <= 0 {
		s.MaxBodyBytes = 1 << 20
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = 30 * time.Second
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = time.Minute
	}
	if s.StreamIdle <= 0 {
		s.StreamIdle = time.Minute
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_controlplane_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "outpost_controlplane_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
	}, []string{"route"})
	s.registry.MustRegister(s.requests, s.duration)
	s.registry.MustRegister(s.Collectors...)

	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", wire.NoRoute)
	s.handler = mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		wire.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.App.Ready(ctx); err != nil {
		wire.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": catalog.ErrorMessage(err)})
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type route struct {
	pattern string
	access  access
	// raw routes read their own body (artifact uploads); others get a
	// size-limited body.
	raw bool
	// stream routes write long answers: raw and stream routes get a
	// deadline per read or write (StreamIdle), others one for the whole
	// body and one for the whole answer.
	stream bool
	// limited routes count against the token's LeaseLimit.
	limited bool
	// paged routes take ?limit= and ?cursor=.
	paged bool
	// body routes decode a JSON body (create and change builders); other
	// non-raw routes refuse one (noBody).
	body    bool
	handler handler
}

// handler serves one route; an error it returns is answered in the wire
// convention.
type handler func(w http.ResponseWriter, r *http.Request) error

// statusWriter records the status for metrics. With extend set (a
// streaming route), every write first pushes the write deadline on.
type statusWriter struct {
	http.ResponseWriter
	status int
	extend func()
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.extend != nil {
		w.extend()
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and ServeContent reach the original
// writer (sendfile).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					s.requests.WithLabelValues(rt.pattern, "aborted").Inc()
					panic(v)
				}
				s.Log.Error("panic in handler", "route", rt.pattern, "panic", v)
				if sw.status == 0 {
					wire.WriteError(sw, r, nil, catalog.Errorf(catalog.EINTERNAL, "internal error"))
				}
			}
			s.requests.WithLabelValues(rt.pattern, strconv.Itoa(sw.status)).Inc()
			s.duration.WithLabelValues(rt.pattern).Observe(time.Since(start).Seconds())
		}()
		if rt.access == mirrorOnly && s.MirrorClientCert && tlsconf.VerifiedClientCert(r) == nil {
			wire.WriteError(sw, r, s.Log, catalog.Errorf(catalog.EUNAUTHORIZED, "a client certificate issued by the mirror CA is required"))
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			wire.WriteError(sw, r, s.Log, err)
			return
		}
		if p.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
			wire.WriteError(sw, r, s.Log, catalog.Errorf(catalog.EFORBIDDEN, "this token is read-only"))
			return
		}
		if !allowed(rt.access, p) {
			wire.WriteError(sw, r, s.Log, catalog.Errorf(catalog.EFORBIDDEN, "this token may not call %s", rt.pattern))
			return
		}
		if rt.limited && s.LeaseLimit != nil {
			if ok, after := s.LeaseLimit.Allow("tok:" + p.TokenID); !ok {
				wire.WriteError(sw, r, s.Log, &ratelimit.Error{After: after})
				return
			}
		}
		s.deadlines(sw, r, rt)
		r = r.WithContext(controlplane.WithPrincipal(r.Context(), p))
		if !rt.raw {
			r.Body = http.MaxBytesReader(sw, r.Body, s.MaxBodyBytes)
		}
		if err := query(r); err != nil {
			wire.WriteError(sw, r, s.Log, err)
			return
		}
		if !rt.raw && !rt.body {
			if err := noBody(r); err != nil {
				wire.WriteError(sw, r, s.Log, err)
				return
			}
		}
		if r.Method == http.MethodPost && r.Header.Get(wire.HeaderIdempotencyKey) != "" {
			s.idempotent(sw, r, p, rt)
			return
		}
		if err := rt.handler(sw, r); err != nil {
			wire.WriteError(sw, r, s.Log, err)
		}
	})
}

// ReadFrom keeps the sendfile path of the underlying writer; on a
// streaming route it copies in chunks, pushing the write deadline on
// before each (wire.ReadFromInChunks).
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	if w.extend == nil {
		return rf.ReadFrom(r)
	}
	return wire.ReadFromInChunks(rf, r, w.extend)
}

// deadlines sets the route's read and write deadlines (see Server's
// ReadTimeout): one for the whole body and answer of a JSON route, one
// per read and write of a streaming one. A writer that cannot take
// deadlines (a test recorder) keeps none.
func (s *Server) deadlines(sw *statusWriter, r *http.Request, rt route) {
	rc := http.NewResponseController(sw)
	now := time.Now()
	if !rt.raw && !rt.stream {
		_ = rc.SetReadDeadline(now.Add(s.ReadTimeout))
		_ = rc.SetWriteDeadline(now.Add(s.WriteTimeout))
		return
	}
	idle := s.StreamIdle
	sw.extend = func() { _ = rc.SetWriteDeadline(time.Now().Add(idle)) }
	sw.extend()
	if r.Body != nil && r.Body != http.NoBody {
		_ = rc.SetReadDeadline(now.Add(idle))
		r.Body = &wire.IdleBody{ReadCloser: r.Body, Extend: func() { _ = rc.SetReadDeadline(time.Now().Add(idle)) }}
	}
}
