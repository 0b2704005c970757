package httpapi

import (
	"context"
	"crypto/ed25519"
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

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
)

// Artifact delivery modes for the mirror API.
const (
	DeliveryProxy    = "proxy"    // stream bytes through the control plane
	DeliveryRedirect = "redirect" // 302 to a presigned URL where the blob store can presign
)

// Config tunes the server; zero values take the defaults.
type Config struct {
	MaxBodyBytes     int64         // JSON request bodies (default 1 MiB)
	MaxArtifactBytes int64         // artifact uploads (default 64 GiB)
	SnapshotTTL      time.Duration // snapshot expires_at - created_at (default 30 days)
	ArtifactDelivery string        // DeliveryProxy (default) or DeliveryRedirect
	PresignTTL       time.Duration // default 15 minutes
	ExternalTimeout  time.Duration // EXTERNAL artifact verification (default 1 hour)
	// AllowPrivateURLs lets EXTERNAL artifact URLs point at loopback and
	// private addresses (off by default: see externalClient).
	AllowPrivateURLs bool
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxArtifactBytes <= 0 {
		c.MaxArtifactBytes = 64 << 30
	}
	if c.SnapshotTTL <= 0 {
		c.SnapshotTTL = 30 * 24 * time.Hour
	}
	if c.ArtifactDelivery == "" {
		c.ArtifactDelivery = DeliveryProxy
	}
	if c.PresignTTL <= 0 {
		c.PresignTTL = 15 * time.Minute
	}
	if c.ExternalTimeout <= 0 {
		c.ExternalTimeout = time.Hour
	}
}

// PublicKey is a vendor signing key as GET /v1/keys shows it.
type PublicKey struct {
	KeyID     string            `json:"key_id"`
	PublicKey ed25519.PublicKey `json:"public_key"` // base64 in JSON
	Status    string            `json:"status"`
	CreatedAt time.Time         `json:"created_at"`
}

// Keyring gives the active signers and every public key.
type Keyring interface {
	Signers() []snapshot.Signer
	PublicKeys() []PublicKey
}

// Server is the control plane's HTTP API.
type Server struct {
	Store   store.Store
	Blobs   blob.Store
	Keys    Keyring
	Secrets *Sealer
	Log     *slog.Logger
	Config  Config
	Now     func() time.Time
	// HTTPClient fetches EXTERNAL artifacts for verification.
	HTTPClient *http.Client

	once     sync.Once
	handler  http.Handler
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	idem     keyedMutex
	engines  engineCache
	ready    atomic.Bool
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// SetReady marks the server ready (readyz) or draining.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(s.init)
	s.handler.ServeHTTP(w, r)
}

func (s *Server) init() {
	s.Config.defaults()
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.HTTPClient == nil {
		s.HTTPClient = externalClient(s.Config.ExternalTimeout, s.Config.AllowPrivateURLs)
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

	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.Log, catalog.Errorf(catalog.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
	})
	s.handler = mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, _, err := s.Store.Tenants(ctx, store.Page{Limit: 1}); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
		return
	}
	if len(s.Keys.Signers()) == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no active signing key"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type route struct {
	pattern string
	access  access
	// raw routes read their own body (artifact uploads); others get a
	// size-limited body.
	raw     bool
	handler func(w http.ResponseWriter, r *http.Request, p *Principal) error
}

// statusWriter records the status for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
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
					writeError(sw, r, nil, catalog.Errorf(catalog.EINTERNAL, "internal error"))
				}
			}
			s.requests.WithLabelValues(rt.pattern, strconv.Itoa(sw.status)).Inc()
			s.duration.WithLabelValues(rt.pattern).Observe(time.Since(start).Seconds())
		}()
		var p *Principal
		if rt.access != public {
			var err error
			p, err = s.authenticate(r)
			if err != nil {
				writeError(sw, r, s.Log, err)
				return
			}
			if !allowed(rt.access, p) {
				writeError(sw, r, s.Log, catalog.Errorf(catalog.EFORBIDDEN, "this token may not call %s", rt.pattern))
				return
			}
			r = r.WithContext(catalog.WithActor(context.WithValue(r.Context(), principalKey{}, p), p.actor()))
		}
		if !rt.raw {
			r.Body = http.MaxBytesReader(sw, r.Body, s.Config.MaxBodyBytes)
		}
		if r.Method == http.MethodPost && r.Header.Get("Idempotency-Key") != "" && p != nil {
			s.idempotent(sw, r, p, rt)
			return
		}
		if err := rt.handler(sw, r, p); err != nil {
			writeError(sw, r, s.Log, err)
		}
	})
}

func allowed(a access, p *Principal) bool {
	switch a {
	case adminOnly:
		return p.Role == catalog.RoleAdmin
	case tenantRead:
		return p.Role == catalog.RoleAdmin || p.Role == catalog.RoleTenant
	case mirrorOnly:
		return p.Role == roleMirror
	}
	return false
}

// ReadFrom keeps the sendfile path of the underlying writer.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}
