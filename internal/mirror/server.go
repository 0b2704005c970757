package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/fleethttp"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/ratelimit"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/wire"
)

// UpdateBuilder builds the GET /v1/updates/check handler for a newly held
// snapshot (cmd/mirror wires internal/update here). It runs once per
// commit, never per request.
type UpdateBuilder func(m *snapshot.Manifest) (http.Handler, error)

// Options configure a Server.
type Options struct {
	State        *state.State
	Cache        *cache.Cache
	ServeExpired bool     // keep serving a held snapshot past expires_at
	ClientTokens []string // when set, /v1/ needs one of them as a bearer token
	Updates      UpdateBuilder
	// Leases, when set, serves PUT/DELETE /v1/leases/{subject_id} (behind
	// the client token check like every /v1/ path).
	Leases *Leases
	// LeaseLimit and EventLimit, when set, limit each client (keyed by its
	// client token when tokens are configured, else by its IP) on the
	// lease and event routes: over the limit is 429 with Retry-After.
	LeaseLimit, EventLimit *ratelimit.Limiter
	// Events, when set, serves POST /v1/events (client reports, behind
	// the client token check) into this aggregator, with batches capped
	// by EventBatch (zero fields: fleet.DefaultBatchLimits).
	Events     *fleet.Aggregator
	EventBatch fleet.BatchLimits
	// EventSummary, when set (the store under Events), answers the events
	// part of /v1/status and /metrics from its kept summary; without it
	// they are computed from the aggregator per request.
	EventSummary *EventSummary
	// BodyTimeout bounds how long reading a request body of the event and
	// lease routes may take (0: DefaultBodyTimeout), so a client trickling
	// its body cannot hold a handler.
	BodyTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// view is everything served for one held snapshot; swapped atomically on
// commit so a request sees the old snapshot or the new one, never a mix.
type view struct {
	held  *state.Held
	byID  map[string]snapshot.Artifact
	bySHA map[string]snapshot.Artifact
	// deltas are the signed deltas to served artifacts, by delta id, as
	// the blobs to serve (ArtifactID the delta id, SHA256 and SizeBytes
	// the delta's).
	deltas  map[string]snapshot.Artifact
	updates http.Handler
	// rendered is the update check's rendered answer for a raw query,
	// when updates offers it (Front answers with it).
	rendered func(rawQuery string) ([]byte, error)
}

// renderer is an update-check handler whose answers can be had without
// net/http (update.Handler): the rendered document, or the error the
// handler answers; both nil when the handler must answer itself.
type renderer interface {
	Rendered(rawQuery string) ([]byte, error)
}

// Server is the mirror's HTTP API.
type Server struct {
	o       Options
	cur     atomic.Pointer[view]
	files   *cache.Files // open blobs, reset when the held snapshot changes
	mux     *http.ServeMux
	root    http.Handler
	reg     *prometheus.Registry
	tokens  [][32]byte
	metrics struct {
		sequence, expired           prometheus.Gauge
		syncs, syncErrors           prometheus.Counter
		downloaded, served, commits prometheus.Counter
	}
}

// NewServer loads the held snapshot (if any) and builds the router.
func NewServer(o Options) (*Server, error) {
	if o.State == nil || o.Cache == nil {
		return nil, errors.New("mirror server: state and cache are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, mux: http.NewServeMux(), reg: prometheus.NewRegistry(), files: cache.NewFiles(o.Cache, 0)}
	for _, t := range o.ClientTokens {
		s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
	}
	s.initMetrics()
	if err := s.Reload(); err != nil {
		return nil, err
	}
	s.routes()
	// The token guards every /v1/ path, mounted and unknown ones included;
	// healthz, readyz and metrics stay open for probes and scrapers.
	// Past it, a repeated or garbled query parameter and a body on a GET,
	// HEAD or DELETE are refused, as on the control plane.
	strict := wire.StrictRequests(s.o.Logger, s.mux)
	guarded := s.auth(strict.ServeHTTP)
	// The update check, the hottest route, skips the router's pattern
	// match: the same checks, then the handler the router would pick.
	check := s.auth(wire.StrictRequests(s.o.Logger, http.HandlerFunc(s.updates)).ServeHTTP)
	// So does an artifact download by id (GET /v1/artifacts/{artifact_id})
	// written plainly: no escapes, one segment.
	artifact := s.auth(wire.StrictRequests(s.o.Logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.artifact(w, r, strings.TrimPrefix(r.URL.Path, artifactsPrefix))
	})).ServeHTTP)
	s.root = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get := r.Method == http.MethodGet || r.Method == http.MethodHead
		if r.URL.Path == "/v1/updates/check" && get {
			check.ServeHTTP(w, r)
			return
		}
		if id, ok := strings.CutPrefix(r.URL.Path, artifactsPrefix); ok && get && id != "" && r.URL.RawPath == "" && !strings.Contains(id, "/") {
			artifact.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			guarded.ServeHTTP(w, r)
			return
		}
		strict.ServeHTTP(w, r)
	})
	return s, nil
}

func (s *Server) initMetrics() {
	m := &s.metrics
	m.sequence = prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_mirror_snapshot_sequence", Help: "Sequence of the held snapshot (0 when none)."})
	m.expired = prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_mirror_snapshot_expired", Help: "1 when the held snapshot is past its expires_at."})
	m.syncs = prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_mirror_syncs_total", Help: "Sync and import attempts."})
	m.syncErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_mirror_sync_errors_total", Help: "Failed sync and import attempts."})
	m.commits = prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_mirror_snapshot_commits_total", Help: "Snapshots committed."})
	m.downloaded = prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_mirror_downloaded_bytes_total", Help: "Artifact bytes downloaded or imported."})
	m.served = prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_mirror_served_bytes_total", Help: "Artifact bytes served to clients."})
	for route, l := range map[string]*ratelimit.Limiter{"leases": s.o.LeaseLimit, "events": s.o.EventLimit} {
		if l == nil {
			continue
		}
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "outpost_mirror_rate_limited_total", Help: "Requests refused with 429 by the per-client rate limit.",
			ConstLabels: prometheus.Labels{"route": route},
		}, func() float64 { return float64(l.Rejected()) }))
	}
	if s.o.Events != nil {
		s.reg.MustRegister(eventCollector{s.o.Events, s.o.EventSummary})
	}
	s.reg.MustRegister(m.sequence, m.expired, m.syncs, m.syncErrors, m.commits, m.downloaded, m.served,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The expiry gauge follows the clock, not just commits.
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outpost_mirror_snapshot_expires_in_seconds", Help: "Seconds until the held snapshot expires (negative once expired).",
	}, func() float64 {
		v := s.cur.Load()
		if v == nil || v.held == nil {
			return 0
		}
		left := v.held.ExpiresAt.Sub(s.o.Now()).Seconds()
		if left <= 0 {
			s.metrics.expired.Set(1)
		} else {
			s.metrics.expired.Set(0)
		}
		return left
	}))
}

// Reload re-reads the held snapshot from the state and swaps it in. Call
// it after every commit.
func (s *Server) Reload() error {
	h, err := s.o.State.Current()
	if err != nil {
		return err
	}
	v := &view{held: h, byID: map[string]snapshot.Artifact{}, bySHA: map[string]snapshot.Artifact{}, deltas: map[string]snapshot.Artifact{}}
	if h != nil {
		for _, a := range state.Needed(h.Manifest, h.Channels) {
			v.byID[a.ArtifactID] = a
			v.bySHA[a.SHA256] = a
		}
		for _, d := range h.Manifest.Deltas {
			if _, ok := v.bySHA[d.ToSHA256]; ok {
				v.deltas[d.DeltaID] = snapshot.Artifact{ArtifactID: d.DeltaID, SHA256: d.SHA256, SizeBytes: d.SizeBytes}
			}
		}
		if s.o.Updates != nil {
			u, err := s.o.Updates(state.Served(h.Manifest, h.Channels))
			if err != nil {
				return fmt.Errorf("build update engine for snapshot %d: %w", h.Sequence, err)
			}
			v.updates = u
			if r, ok := u.(renderer); ok {
				v.rendered = r.Rendered
			}
		}
		s.metrics.sequence.Set(float64(h.Sequence))
		if s.expired(h) {
			s.metrics.expired.Set(1)
		} else {
			s.metrics.expired.Set(0)
		}
	}
	s.cur.Store(v)
	// Handles opened for the previous snapshot are not reused.
	s.files.Reset()
	return nil
}

// ObserveSync feeds a sync or import result into the metrics.
func (s *Server) ObserveSync(r state.SyncResult) {
	s.metrics.syncs.Inc()
	if !r.OK {
		s.metrics.syncErrors.Inc()
	}
	if r.Changed && r.OK {
		s.metrics.commits.Inc()
	}
	s.metrics.downloaded.Add(float64(r.Bytes))
}

// Close closes the artifact files the server keeps open between
// requests (those in use close when their request ends).
func (s *Server) Close() { s.files.Reset() }

// Registry is the server's Prometheus registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler is the root handler.
func (s *Server) Handler() http.Handler { return s.root }

func (s *Server) expired(h *state.Held) bool {
	return h != nil && !h.ExpiresAt.IsZero() && !s.o.Now().Before(h.ExpiresAt)
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.mux.Handle("GET /v1/snapshot", s.auth(s.snapshot))
	s.mux.Handle("GET /v1/snapshots/{snapshot_id}", s.auth(s.snapshotByID))
	s.mux.Handle("GET /v1/artifacts/{artifact_id}", s.auth(s.artifactByID))
	// by-sha256/{hex} and {artifact_id}/download overlap as patterns.
	s.mux.Handle("GET /v1/artifacts/{artifact_id}/{sub}", s.auth(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("artifact_id") == "by-sha256":
			s.artifactBySHA(w, r)
		case r.PathValue("sub") == "download":
			s.artifactByID(w, r)
		default:
			wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.ENOTFOUND, "no such path"))
		}
	}))
	s.mux.Handle("GET /v1/deltas/{delta_id}/download", s.auth(s.deltaByID))
	s.mux.Handle("GET /v1/status", s.auth(s.status))
	s.mux.Handle("GET /v1/updates/check", s.auth(s.updates))
	// The tenant's TUF repository (trust: tuf), in the layout unmodified
	// TUF clients expect. It is behind the client tokens like /v1/. The
	// signed bytes are served as committed, expired or not: TUF clients
	// apply the expiry themselves (docs/metadata.md).
	tufh := tufhttp.New(tufRepo{s}, tufhttp.Options{Prefix: "/tuf/", OnError: func(r *http.Request, err error) { s.o.Logger.Error("tuf repository", "path", r.URL.Path, "err", err) }})
	s.mux.Handle("/tuf/", s.auth(tufh.ServeHTTP))
	if s.o.Events != nil {
		events := &fleethttp.Handler{Agg: s.o.Events, Limits: s.o.EventBatch, Log: s.o.Logger, Now: s.o.Now}
		s.mux.Handle("POST /v1/events", s.auth(s.limit(s.o.EventLimit, s.bodyDeadline(events)).ServeHTTP))
	}
	// Anything else, a known path with another method included, is
	// not_found in the wire shape, as on the control plane.
	s.mux.HandleFunc("/", wire.NoRoute)
	if s.o.Leases != nil {
		leases := s.auth(s.limit(s.o.LeaseLimit, s.bodyDeadline(LeaseHandler(s.o.Leases.Ledger, s.Manifest, s.o.Now, s.o.Logger))).ServeHTTP)
		s.mux.Handle("PUT /v1/leases/{subject_id}", leases)
		s.mux.Handle("DELETE /v1/leases/{subject_id}", leases)
	}
}

// DefaultBodyTimeout is Options.BodyTimeout when unset.
const DefaultBodyTimeout = 30 * time.Second

// bodyDeadline sets a read deadline for the request body of h.
func (s *Server) bodyDeadline(h http.Handler) http.Handler {
	d := s.o.BodyTimeout
	if d <= 0 {
		d = DefaultBodyTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
}

// tokenIDKey carries the id of the client token a request presented.
type tokenIDKey struct{}

func (s *Server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.tokens) > 0 && r.Context().Value(tokenIDKey{}) == nil {
			// (Routes are guarded twice, by the root and by their own
			// wrapper: the token is checked once.)
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			which, match := s.matchToken([]byte(tok))
			if !ok || !match {
				w.Header().Set("WWW-Authenticate", `Bearer realm="outpost-mirror"`)
				wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAUTHORIZED, "a valid client token is required"))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), tokenIDKey{}, fmt.Sprintf("tok:%d", which)))
		}
		h(w, r)
	})
}

// matchToken reports whether tok is one of the client tokens, and which,
// in time that does not depend on which or on where they differ.
func (s *Server) matchToken(tok []byte) (int, bool) {
	sum := sha256.Sum256(tok)
	match, which := 0, 0
	for i, t := range s.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], t[:])
		match |= eq
		which = subtle.ConstantTimeSelect(eq, i, which)
	}
	return which, match == 1
}

// clientKey names the client of r for the rate limits: the client token
// it presented, or "" (its IP) when the mirror has no client tokens.
func clientKey(r *http.Request) string {
	id, _ := r.Context().Value(tokenIDKey{}).(string)
	return id
}

// limit puts h behind l (nil: no limit).
func (s *Server) limit(l *ratelimit.Limiter, h http.Handler) http.Handler {
	if l == nil {
		return h
	}
	return l.Middleware(clientKey, s.o.Logger)(h)
}

// usable returns the view, or writes 503 when nothing may be served.
func (s *Server) usable(w http.ResponseWriter, r *http.Request) (*view, bool) {
	v := s.cur.Load()
	if v.held == nil {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "no snapshot held yet"))
		return nil, false
	}
	if !s.o.ServeExpired && s.expired(v.held) {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "the held snapshot has expired and serve_expired is false"))
		return nil, false
	}
	return v, true
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	v := s.cur.Load()
	switch {
	case v.held == nil:
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "no complete snapshot held"))
	case s.expired(v.held) && !s.o.ServeExpired:
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "the held snapshot has expired"))
	case s.expired(v.held):
		io.WriteString(w, "expired\n")
	default:
		io.WriteString(w, "ok\n")
	}
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	// ?after=N, as on the control plane: 304 when the held snapshot is not
	// newer than N, so a downstream mirror's idle poll moves no envelope.
	after := int64(-1)
	if q := r.URL.Query().Get("after"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n < 0 {
			wire.WriteError(w, r, s.o.Logger, catalog.Invalid("after", "must be a sequence number (a non-negative integer), not %q", q))
			return
		}
		after = n
	}
	v := s.cur.Load()
	if v.held == nil {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "no snapshot held yet"))
		return
	}
	if v.held.Sequence <= after {
		w.Header().Set(wire.HeaderSequence, strconv.FormatInt(v.held.Sequence, 10))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	serveEnvelope(w, r, v.held)
}

func (s *Server) snapshotByID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("snapshot_id")
	// The held one (the usual ask) is served from memory.
	if v := s.cur.Load(); v.held != nil && v.held.SnapshotID == id {
		serveEnvelope(w, r, v.held)
		return
	}
	h, err := s.o.State.EnvelopeBySnapshotID(id)
	if errors.Is(err, state.ErrNotFound) {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.ENOTFOUND, "snapshot not retained by this mirror"))
		return
	}
	if err != nil {
		wire.WriteError(w, r, s.o.Logger, fmt.Errorf("read snapshot %s: %w", id, err))
		return
	}
	serveEnvelope(w, r, h)
}

func serveEnvelope(w http.ResponseWriter, r *http.Request, h *state.Held) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"`+h.Hash+`"`)
	w.Header().Set(wire.HeaderSequence, fmt.Sprint(h.Sequence))
	w.Header().Set(wire.HeaderSnapshotID, h.SnapshotID)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.Envelope))
}

// artifactsPrefix starts the paths of the artifact downloads.
const artifactsPrefix = "/v1/artifacts/"

func (s *Server) artifactByID(w http.ResponseWriter, r *http.Request) {
	s.artifact(w, r, r.PathValue("artifact_id"))
}

// artifact serves the artifact id of the held snapshot.
func (s *Server) artifact(w http.ResponseWriter, r *http.Request, id string) {
	v, ok := s.usable(w, r)
	if !ok {
		return
	}
	a, ok := v.byID[id]
	if !ok {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.ENOTFOUND, "artifact not served by this mirror"))
		return
	}
	s.serveBlob(w, r, a)
}

// deltaByID serves a signed delta to a served artifact when the cache
// holds it (docs/deltas.md); a client told not_found downloads the whole
// artifact.
func (s *Server) deltaByID(w http.ResponseWriter, r *http.Request) {
	v, ok := s.usable(w, r)
	if !ok {
		return
	}
	d, ok := v.deltas[r.PathValue("delta_id")]
	if !ok || !s.o.Cache.Has(d.SHA256, d.SizeBytes) {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.ENOTFOUND, "delta not served by this mirror"))
		return
	}
	s.serveBlob(w, r, d)
}

func (s *Server) artifactBySHA(w http.ResponseWriter, r *http.Request) {
	v, ok := s.usable(w, r)
	if !ok {
		return
	}
	a, ok := v.bySHA[r.PathValue("sub")]
	if !ok {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.ENOTFOUND, "artifact not served by this mirror"))
		return
	}
	s.serveBlob(w, r, a)
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, a snapshot.Artifact) {
	// The handle comes from a pool of open blobs; its size was checked
	// against the signed one when it was opened, so a blob truncated on
	// disk is never served as if complete.
	f, err := s.files.Acquire(a.SHA256, a.SizeBytes)
	if errors.Is(err, cache.ErrSize) {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "artifact in the cache has the wrong size; run `mirror verify`"))
		return
	}
	if err != nil {
		s.o.Logger.Error("artifact missing from cache", "artifact_id", a.ArtifactID, "sha256", a.SHA256, "err", err)
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "artifact missing from the cache; run `mirror verify` and sync"))
		return
	}
	defer s.files.Release(f)
	h := w.Header()
	start, n, partial, ok := plainRange(r, a.SizeBytes)
	if !ok {
		// Conditional requests, several ranges, unsatisfiable or odd
		// ones: net/http's full implementation.
		h["Etag"] = []string{`"` + a.SHA256 + `"`}
		h["Content-Type"] = headerOctetStream
		h[wire.HeaderChecksum] = []string{a.SHA256}
		h["Cache-Control"] = headerImmutable
		http.ServeContent(&countingWriter{ResponseWriter: w, n: s.metrics.served}, r, "", time.Time{}, f.ReadSeeker())
		return
	}
	// What http.ServeContent answers for these requests, without its
	// seeks: the headers (their values in one string and one slice, the
	// Date formatted once a second), then the bytes by sendfile from the
	// open blob.
	code := http.StatusOK
	var buf [192]byte
	b := append(buf[:0], '"')
	b = append(b, a.SHA256...)
	b = append(b, '"')
	etagEnd := len(b)
	b = strconv.AppendInt(b, n, 10)
	lenEnd := len(b)
	if partial {
		code = http.StatusPartialContent
		b = appendContentRange(b, start, n, a.SizeBytes)
	}
	str := string(b)
	vals := &[4]string{str[:etagEnd], a.SHA256, str[etagEnd:lenEnd], str[lenEnd:]}
	h["Etag"] = vals[0:1:1]
	h[wire.HeaderChecksum] = vals[1:2:2]
	h["Content-Length"] = vals[2:3:3]
	if partial {
		h["Content-Range"] = vals[3:4:4]
	}
	h["Content-Type"] = headerOctetStream
	h["Cache-Control"] = headerImmutable
	h["Accept-Ranges"] = headerBytes
	h["Date"] = httpDate.get(time.Now())
	w.WriteHeader(code)
	if r.Method == http.MethodHead || n == 0 {
		return
	}
	// Headers out first, so net/http hands the body straight to its
	// ReaderFrom instead of reading its first 512 bytes to sniff. On a
	// connection of Listener they go with MSG_MORE (sharing segments
	// with the body), then the range by sendfile at its offset.
	fl, canFlush := w.(http.Flusher)
	rf, canSend := w.(io.ReaderFrom)
	sc, _ := r.Context().Value(connKey{}).(*sendConn)
	var sent int64
	if sc != nil && canFlush && canSend {
		sc.more = true
		fl.Flush()
		sc.more = false
		var sec *io.SectionReader
		if sec, err = f.Section(start, n); err == nil {
			sent, err = rf.ReadFrom(sec)
		}
	} else {
		if canFlush {
			fl.Flush()
		}
		sent, err = f.CopyRange(w, start, n)
	}
	s.metrics.served.Add(float64(sent))
	if err != nil {
		s.o.Logger.Debug("artifact download interrupted", "artifact_id", a.ArtifactID, "err", err)
	}
}

// httpDate is the Date header of the artifact answers, formatted once a
// second rather than by net/http for every answer.
var httpDate dateCache

type dateCache struct{ cur atomic.Pointer[dateValue] }

type dateValue struct {
	sec int64
	v   []string
}

// get is the Date header value for now (shared: callers only read it).
func (d *dateCache) get(now time.Time) []string {
	sec := now.Unix()
	if x := d.cur.Load(); x != nil && x.sec == sec {
		return x.v
	}
	x := &dateValue{sec: sec, v: []string{now.UTC().Format(http.TimeFormat)}}
	d.cur.Store(x)
	return x.v
}

// Shared header values; net/http only reads them.
var (
	headerOctetStream = []string{"application/octet-stream"}
	headerImmutable   = []string{"public, max-age=31536000, immutable"}
	headerBytes       = []string{"bytes"}
)

// plainRange reports whether r is a GET or HEAD without preconditions
// asking for the whole blob or one satisfiable byte range of it, written
// simply (bytes=A-B, bytes=A- or bytes=-N); it returns the bytes to send
// and whether they are a range (206). Everything else (If-* headers,
// several ranges, a range out of bounds or unusual syntax) is left to
// http.ServeContent, which answers it fully.
func plainRange(r *http.Request, size int64) (start, n int64, partial, ok bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return 0, 0, false, false
	}
	hd := r.Header
	for _, k := range preconditions {
		if _, has := hd[k]; has {
			return 0, 0, false, false
		}
	}
	rg, has := hd["Range"]
	if !has {
		return 0, size, false, true
	}
	if len(rg) != 1 || size <= 0 {
		return 0, 0, false, false
	}
	start, n, ok = byteRange(rg[0], size)
	return start, n, ok, ok
}

// byteRange is the one range of a Range header value rg ("bytes=a-b",
// "bytes=a-", "bytes=-n") of a size-byte blob: false for anything else,
// or a range not satisfiable (net/http's full implementation then).
func byteRange(rg string, size int64) (start, n int64, ok bool) {
	if size <= 0 {
		return 0, 0, false
	}
	spec, found := strings.CutPrefix(rg, "bytes=")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found || !digits(b) || (a != "" && !digits(a)) || (a == "" && b == "") {
		return 0, 0, false
	}
	var end int64
	var err error
	if a == "" {
		// The last b bytes.
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end == 0 {
			return 0, 0, false
		}
		end = min(end, size)
		return size - end, end, true
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil || start >= size {
		return 0, 0, false
	}
	if b == "" {
		return start, size - start, true
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
		return 0, 0, false
	}
	end = min(end, size-1)
	return start, end - start + 1, true
}

// preconditions are the request headers http.ServeContent evaluates.
var preconditions = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"}

// digits reports whether s is only ASCII digits (the empty string is).
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendContentRange appends the Content-Range value of n bytes from
// start of size to b.
func appendContentRange(b []byte, start, n, size int64) []byte {
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, start+n-1, 10)
	b = append(b, '/')
	return strconv.AppendInt(b, size, 10)
}

// countingWriter counts body bytes and keeps io.ReaderFrom so ServeContent
// still uses sendfile.
type countingWriter struct {
	http.ResponseWriter
	n prometheus.Counter
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(float64(n))
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(c.ResponseWriter, r)
	}
	c.n.Add(float64(n))
	return n, err
}

func (s *Server) updates(w http.ResponseWriter, r *http.Request) {
	v, ok := s.usable(w, r)
	if !ok {
		return
	}
	if v.updates == nil {
		wire.WriteError(w, r, s.o.Logger, catalog.Errorf(catalog.EUNAVAILABLE, "update checks are not enabled on this mirror"))
		return
	}
	v.updates.ServeHTTP(w, r)
}

// Status is the GET /v1/status answer (and `mirror status`).
type Status struct {
	Snapshot *StatusSnapshot   `json:"snapshot"`
	LastSync *state.SyncResult `json:"last_sync"`
	Cache    StatusCache       `json:"cache"`
	Events   *StatusEvents     `json:"events,omitempty"`
}

// StatusEvents summarizes the client events the mirror holds: totals per
// outcome, and the aggregates per release and outcome (the most recently
// updated first, at most MaxStatusAggregates).
type StatusEvents struct {
	StoreID    string            `json:"store_id"`
	LastSeq    uint64            `json:"last_seq"`
	Acked      uint64            `json:"acked"`
	Totals     map[string]int64  `json:"totals"`
	Aggregates []fleet.Aggregate `json:"aggregates"`
	Truncated  bool              `json:"truncated,omitempty"`
}

// MaxStatusAggregates caps the aggregates listed on /v1/status.
const MaxStatusAggregates = 200

// EventStatus summarizes aggs (from an aggregator or a store) and meta.
func EventStatus(meta fleet.Meta, aggs []fleet.Aggregate) *StatusEvents {
	out := &StatusEvents{StoreID: meta.StoreID, LastSeq: meta.LastSeq, Acked: meta.Acked, Totals: map[string]int64{}}
	for _, t := range fleet.Types {
		out.Totals[string(t)] = 0
	}
	for _, g := range aggs {
		out.Totals[string(g.Type)] += g.Count
	}
	sort.SliceStable(aggs, func(i, j int) bool { return aggs[i].LastSeq > aggs[j].LastSeq })
	if len(aggs) > MaxStatusAggregates {
		aggs, out.Truncated = aggs[:MaxStatusAggregates], true
	}
	out.Aggregates = aggs
	if out.Aggregates == nil {
		out.Aggregates = []fleet.Aggregate{}
	}
	return out
}

// eventCollector exports the client event counts per outcome, summed
// over the aggregates at scrape time.
type eventCollector struct {
	agg *fleet.Aggregator
	sum *EventSummary // nil: sum the aggregator's aggregates
}

var eventsDesc = prometheus.NewDesc("outpost_mirror_client_events_total",
	"Client events received, per outcome (check, download_ok, download_failed, install_ok, install_failed).", []string{"type"}, nil)

func (c eventCollector) Describe(ch chan<- *prometheus.Desc) { ch <- eventsDesc }

func (c eventCollector) Collect(ch chan<- prometheus.Metric) {
	var totals map[fleet.Type]int64
	if c.sum != nil {
		totals = c.sum.Totals()
	} else {
		totals = map[fleet.Type]int64{}
		for _, g := range c.agg.Aggregates() {
			totals[g.Type] += g.Count
		}
	}
	for _, t := range fleet.Types {
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(totals[t]), string(t))
	}
}

// StatusSnapshot describes the held snapshot.
type StatusSnapshot struct {
	SnapshotID string    `json:"snapshot_id"`
	Sequence   int64     `json:"sequence"`
	Hash       string    `json:"hash"`
	ExpiresAt  time.Time `json:"expires_at"`
	Expired    bool      `json:"expired"`
	VerifiedAt time.Time `json:"verified_at"`
	Artifacts  int       `json:"artifacts"`
	Channels   []string  `json:"channels"`
}

// StatusCache describes the blob cache.
type StatusCache struct {
	Blobs       int   `json:"blobs"`
	Bytes       int64 `json:"bytes"`
	Missing     int   `json:"missing"`
	Quarantined int   `json:"quarantined"`
	// At is when the summary was computed (after the last commit or GC);
	// zero when it was read live (`mirror status` without --server).
	At time.Time `json:"at,omitzero"`
}

// BuildStatus reads the status straight from state and cache.
func BuildStatus(ctx context.Context, st *state.State, c *cache.Cache, now time.Time) (Status, error) {
	h, err := st.Current()
	if err != nil {
		return Status{}, err
	}
	return buildStatus(ctx, h, st, c, now)
}

// buildStatus describes h, the held snapshot, with the state's last sync
// and the cache's usage.
func buildStatus(ctx context.Context, h *state.Held, st *state.State, c *cache.Cache, now time.Time) (Status, error) {
	var out Status
	var err error
	if h != nil {
		need := state.Needed(h.Manifest, h.Channels)
		out.Snapshot = &StatusSnapshot{
			SnapshotID: h.SnapshotID, Sequence: h.Sequence, Hash: h.Hash, ExpiresAt: h.ExpiresAt,
			Expired: !h.ExpiresAt.IsZero() && !now.Before(h.ExpiresAt), VerifiedAt: h.VerifiedAt,
			Artifacts: len(need), Channels: h.Channels,
		}
		for _, a := range need {
			if !c.Has(a.SHA256, a.SizeBytes) {
				out.Cache.Missing++
			}
		}
	}
	if r, ok, err := st.LastSync(); err != nil {
		return out, err
	} else if ok {
		out.LastSync = &r
	}
	if out.Cache.Blobs, out.Cache.Bytes, err = c.Usage(ctx); err != nil {
		return out, err
	}
	out.Cache.Quarantined = c.Quarantined()
	return out, nil
}

// status answers from small stored summaries only: the held snapshot's
// fields from the in-memory view, the last sync result and the cache
// summary (state.CacheUsage, refreshed on commit and GC) from mirror.db,
// the event totals from the aggregator's memory. Nothing walks the cache
// or decodes the held document per request.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.Status(r.Context())
	if err != nil {
		wire.WriteError(w, r, s.o.Logger, fmt.Errorf("read status: %w", err))
		return
	}
	wire.WriteJSON(w, http.StatusOK, st)
}

// Status is what GET /v1/status answers.
func (s *Server) Status(ctx context.Context) (Status, error) {
	var out Status
	if v := s.cur.Load(); v.held != nil {
		h := v.held
		out.Snapshot = &StatusSnapshot{
			SnapshotID: h.SnapshotID, Sequence: h.Sequence, Hash: h.Hash, ExpiresAt: h.ExpiresAt,
			Expired: s.expired(h), VerifiedAt: h.VerifiedAt, Artifacts: len(v.byID), Channels: h.Channels,
		}
	}
	if r, ok, err := s.o.State.LastSync(); err != nil {
		return out, err
	} else if ok {
		out.LastSync = &r
	}
	u, ok, err := s.o.State.CacheUsage()
	if err != nil {
		return out, err
	}
	if ok {
		out.Cache = StatusCache{Blobs: u.Blobs, Bytes: u.Bytes, Missing: u.Missing, Quarantined: u.Quarantined, At: u.At}
	}
	switch {
	case s.o.EventSummary != nil:
		if out.Events, err = s.o.EventSummary.Status(ctx); err != nil {
			return out, err
		}
	case s.o.Events != nil:
		meta, err := s.o.Events.Meta(ctx)
		if err != nil {
			return out, err
		}
		out.Events = EventStatus(meta, s.o.Events.Aggregates())
	}
	return out, nil
}
