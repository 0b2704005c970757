package mirror

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	gosync "sync"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/ratelimit"
	"github.com/outpost/outpost/internal/sitepage"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tlsconf"
	"github.com/outpost/outpost/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is what a Mirror daemon needs; cmd/mirror builds it from
// mirror.yaml.
type Config struct {
	DBPath  string // mirror.db
	Retain  int    // snapshots kept (0: state.DefaultRetain)
	DataDir string // the blob cache's root
	Listen  string // host:port; ":0" picks a port (Addr tells which)
	// TLS serves HTTPS when TLS.CertFile is set; the certificate is
	// reloaded on SIGHUP and when its files change (the "tls" part).
	TLS tlsconf.Config

	// Source is where syncs come from; nil for a mirror fed by bundles
	// only.
	Source sync.Source
	// Sync tunes the syncer; OnResult, OnCommit and AuditExport are set by
	// the Mirror.
	Sync         sync.Config
	SyncInterval time.Duration
	// InboxDir is watched every InboxInterval for bundles to import ("":
	// no inbox).
	InboxDir      string
	InboxInterval time.Duration
	// GCInterval runs the cache GC and the sweep of expired leases out
	// of the seat index (0: never).
	GCInterval time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests on Close.
	ShutdownTimeout time.Duration
	// AdminSocket is the Unix socket the one-shot commands reach the
	// running daemon through ("": none; see admin.go).
	AdminSocket string

	ServeExpired bool
	ClientTokens []string
	// RateLimits limit each client on the lease and event routes.
	RateLimits RateLimits
	// Events bounds the client events kept in mirror.db (zero fields:
	// the fleet defaults); EventBatch caps one POST /v1/events.
	Events     fleet.Options
	EventBatch fleet.BatchLimits
	// BodyTimeout bounds reading the body of an event or lease request
	// (0: DefaultBodyTimeout); it is also the read deadline of every other
	// request but the site page's bundle upload.
	BodyTimeout time.Duration
	// WriteTimeout bounds writing the answer of every request but the
	// streams (0: DefaultWriteTimeout). StreamIdleTimeout bounds each
	// read of a bundle upload on the site page and each write (or 4 MiB
	// of a sendfile) of an artifact, delta, snapshot envelope or TUF file
	// (0: DefaultStreamIdle): a client that stops reading or sending is
	// cut, a slow one that keeps going is not.
	WriteTimeout, StreamIdleTimeout time.Duration
	// AdminTokenHashes are the hex sha256s of the mirror admin tokens
	// (HashAdminToken) that may upload a bundle on the status page; none:
	// uploads are refused.
	AdminTokenHashes []string
	Updates          UpdateBuilder

	// MirrorID is the configured id ("": the one the control plane
	// reported). TenantID and Key (the mirror's signing key, loaded when
	// the first lease is asked for) feed the lease ledger.
	MirrorID string
	TenantID string
	Key      func() (ed25519.PrivateKey, error)

	Logger *slog.Logger
	// Now is the daemon's clock (default time.Now): metadata expiry,
	// lease times, sync and report times. cmd/mirror passes clock.Now.
	Now func() time.Time
}

// RateLimit is one route's per-client limit: Rate requests per second
// sustained, Burst at once. Rate 0 disables it.
type RateLimit struct {
	Rate  float64 `mapstructure:"rate"`
	Burst int     `mapstructure:"burst"`
}

// RateLimits are the mirror's per-client limits (mirror.yaml rate_limit).
type RateLimits struct {
	Leases RateLimit `mapstructure:"leases"`
	Events RateLimit `mapstructure:"events"`
	// MaxClients caps the clients tracked per route (0: 10000).
	MaxClients int `mapstructure:"max_clients"`
}

// Validate checks the limits.
func (r RateLimits) Validate() error {
	for name, l := range map[string]RateLimit{"leases": r.Leases, "events": r.Events} {
		if l.Rate == 0 {
			continue
		}
		if err := (ratelimit.Config{Rate: l.Rate, Burst: l.Burst, MaxClients: r.MaxClients}).Validate(); err != nil {
			return fmt.Errorf("rate_limit.%s: %w", name, err)
		}
	}
	return nil
}

func (r RateLimits) limiter(l RateLimit) (*ratelimit.Limiter, error) {
	if l.Rate == 0 {
		return nil, nil
	}
	return ratelimit.New(ratelimit.Config{Rate: l.Rate, Burst: l.Burst, MaxClients: r.MaxClients})
}

// Mirror is the mirror daemon: it owns the state, the cache, the HTTP
// server, the syncer, the inbox watcher and the cache GC. Run runs them
// as the parts of one daemon.Group; Close stops them, joins every one,
// and only then closes the state.
type Mirror struct {
	cfg    Config
	log    *slog.Logger
	st     *state.State
	cache  *cache.Cache
	srv    *Server
	syncer *sync.Syncer
	ln     net.Listener
	admin  net.Listener    // the admin socket, nil when none
	tls    *tlsconf.Server // nil: plain HTTP
	events *fleet.Aggregator
	leases *Leases
	hs     *http.Server
	front  *Front // in front of hs on plain HTTP; nil under TLS
	// inflight joins the request handlers: http.Server.Close does not
	// wait for them.
	inflight gosync.WaitGroup

	mu      gosync.Mutex
	cancel  context.CancelFunc // Run's, nil when not running
	done    chan struct{}      // closed when Run returns
	closed  bool
	closeMu gosync.Mutex
}

// Open opens the state (failing at once with state.ErrLocked when another
// process holds it), the cache, builds the server and the syncer and
// listens. Nothing runs until Run.
func Open(ctx context.Context, cfg Config) (*Mirror, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = DefaultStreamIdle
	}
	st, err := state.Open(cfg.DBPath, cfg.Retain)
	if err != nil {
		return nil, err
	}
	m := &Mirror{cfg: cfg, log: cfg.Logger, st: st}
	if err := m.build(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return m, nil
}

func (m *Mirror) build(ctx context.Context) error {
	cfg := m.cfg
	c, err := cache.Open(cfg.DataDir)
	if err != nil {
		return err
	}
	m.cache = c
	leases := NewLeases(m.st, cfg.MirrorID, cfg.TenantID, cfg.Key)
	m.leases = leases
	if err := cfg.RateLimits.Validate(); err != nil {
		return err
	}
	leaseLimit, err := cfg.RateLimits.limiter(cfg.RateLimits.Leases)
	if err != nil {
		return err
	}
	eventLimit, err := cfg.RateLimits.limiter(cfg.RateLimits.Events)
	if err != nil {
		return err
	}
	fs, err := m.st.FleetStore()
	if err != nil {
		return err
	}
	summary, err := NewEventSummary(ctx, fs)
	if err != nil {
		return fmt.Errorf("load event summary: %w", err)
	}
	if m.events, err = fleet.NewAggregator(ctx, summary, cfg.Events); err != nil {
		return err
	}
	m.srv, err = NewServer(Options{
		Events: m.events, EventSummary: summary, EventBatch: cfg.EventBatch, BodyTimeout: cfg.BodyTimeout,
		State: m.st, Cache: c, ServeExpired: cfg.ServeExpired, ClientTokens: cfg.ClientTokens,
		Updates: cfg.Updates, Leases: leases, LeaseLimit: leaseLimit, EventLimit: eventLimit, Logger: m.log, Now: cfg.Now,
	})
	if err != nil {
		return err
	}
	sc := cfg.Sync
	sc.Logger, sc.MirrorID, sc.AuditExport, sc.AuditExportAfter = m.log, cfg.MirrorID, leases.ExportAudit, leases.ExportAuditAfter
	sc.FleetReport, sc.FleetAck = leases.FleetReport(m.events, cfg.Now), m.events.Ack
	if sc.Now == nil {
		sc.Now = cfg.Now
	}
	var site *SitePage
	sc.OnResult = func(r state.SyncResult) {
		m.srv.ObserveSync(r)
		if site != nil {
			site.observe(r)
		}
	}
	sc.OnCommit = func() {
		if err := m.srv.Reload(); err != nil {
			m.log.Error("reload after commit", "err", err)
		}
	}
	m.syncer = sync.New(cfg.Source, m.st, c, sc)
	// The cache summary /v1/status answers from: computed once here (a
	// command may have changed the cache meanwhile), then on every
	// commit and GC.
	if _, err := m.syncer.RefreshUsage(ctx); err != nil {
		return err
	}
	if cfg.TLS.Enabled() {
		if m.tls, err = tlsconf.NewServer(cfg.TLS, m.log); err != nil {
			return err
		}
	}
	if site, err = newSitePage(m.srv, m.syncer, m.st, leases, cfg.DataDir, cfg.TenantID, cfg.AdminTokenHashes, cfg.Now); err != nil {
		return err
	}
	page, err := sitepage.New(sitepage.Options{Backend: site, Logger: m.log})
	if err != nil {
		return err
	}
	// The status page for people at / (and its forms and assets under
	// /site/); everything else, /v1/status included, is the API.
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", page)
	mux.Handle("/site/", page)
	mux.Handle("/", m.srv.Handler())
	api := m.srv.Handler()
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// API paths go straight to the API (what the mux would pick) when
		// clean; others take the mux and its redirects.
		if p := r.URL.Path; strings.HasPrefix(p, "/v1/") && path.Clean(p) == p && r.Method != http.MethodConnect {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	if m.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	m.ln = Listener(m.ln)
	if m.tls != nil {
		m.ln = tls.NewListener(m.ln, m.tls.Config)
	} else {
		m.front = m.srv.NewFront(m.ln, FrontOptions{
			ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, WriteTimeout: m.cfg.WriteTimeout,
			StreamIdleTimeout: m.cfg.StreamIdleTimeout, Logger: m.log,
		})
		m.ln = m.front
		m.srv.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "outpost_mirror_front_answers_total", Help: "Update checks and artifact downloads answered by the mirror's own HTTP/1.1 loop (the rest by net/http).",
		}, func() float64 { return float64(m.front.Answered()) }))
	}
	if cfg.AdminSocket != "" {
		// Without it the daemon still serves; the one-shot commands then
		// say the state is locked.
		if ln, err := listenAdmin(cfg.AdminSocket); err != nil {
			m.log.Error("no admin socket: `mirror sync|status|verify|import|gc` cannot reach this daemon", "err", err)
		} else {
			ln.(*ownerListener).log = m.log
			m.admin = ln
		}
	}
	m.hs = &http.Server{
		Handler:           m.track(m.deadlines(root)),
		ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
		ConnContext: ConnContext,
		// TLS handshake failures and the like: debug, a scanner must not
		// flood the log.
		ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// The HTTP server's timeouts (Front's too).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

// track counts a request in m.inflight while its handler runs.
func (m *Mirror) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inflight.Add(1)
		defer m.inflight.Done()
		h.ServeHTTP(w, r)
	})
}

// DefaultWriteTimeout and DefaultStreamIdle are Config.WriteTimeout and
// Config.StreamIdleTimeout when unset.
const (
	DefaultWriteTimeout = time.Minute
	DefaultStreamIdle   = time.Minute
)

// deadlines gives every request read and write deadlines: one for the
// whole body (BodyTimeout) and one for the whole answer (WriteTimeout),
// except for the streams: a bundle upload on the site page gets a read
// deadline per read; artifacts, deltas, snapshot envelopes and TUF files
// (which an upstream mirror serves to others, and which may be large)
// get a write deadline per write (StreamIdleTimeout). Every request sets both, so
// none inherits a deadline of the one before it on the connection.
func (m *Mirror) deadlines(h http.Handler) http.Handler {
	body, write, idle := m.cfg.BodyTimeout, m.cfg.WriteTimeout, m.cfg.StreamIdleTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case r.Method == http.MethodPost && strings.HasPrefix(p, "/site/import"):
			idleUpload(w, r, idle)
		case strings.HasPrefix(p, "/v1/artifacts/") || strings.HasPrefix(p, "/v1/deltas/") || strings.HasPrefix(p, "/tuf/") || strings.HasPrefix(p, "/v1/snapshot"):
			w = idleDownload(w, r, body, idle)
		default:
			// The API's answers (the update check's among them): no
			// allocation here.
			rc := http.NewResponseController(w)
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(body))
			_ = rc.SetWriteDeadline(now.Add(write))
		}
		h.ServeHTTP(w, r)
	})
}

// idleUpload gives a streamed upload a read deadline per read and no
// write deadline (the answer follows the import's work).
func idleUpload(w http.ResponseWriter, r *http.Request, idle time.Duration) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(idle))
	_ = rc.SetWriteDeadline(time.Time{})
	r.Body = &wire.IdleBody{ReadCloser: r.Body, Extend: func() { _ = rc.SetReadDeadline(time.Now().Add(idle)) }}
}

// idleDownload gives a download a read deadline for its (empty) body and
// returns the writer that pushes the write deadline on per write.
func idleDownload(w http.ResponseWriter, r *http.Request, body, idle time.Duration) http.ResponseWriter {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(body))
	sw := &idleWriter{ResponseWriter: w, extend: func() { _ = rc.SetWriteDeadline(time.Now().Add(idle)) }}
	sw.extend()
	return sw
}

// idleWriter pushes the write deadline on before each write, and before
// each chunk of a ReadFrom (sendfile kept: wire.ReadFromInChunks).
type idleWriter struct {
	http.ResponseWriter
	extend func()
}

func (w *idleWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

func (w *idleWriter) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return wire.ReadFromInChunks(rf, r, w.extend)
	}
	return io.Copy(struct{ io.Writer }{w}, r)
}

func (w *idleWriter) Flush() {
	w.extend()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Addr is the address the mirror listens on.
func (m *Mirror) Addr() net.Addr { return m.ln.Addr() }

// TLS is the mirror's TLS side (nil when it serves plain HTTP).
func (m *Mirror) TLS() *tlsconf.Server { return m.tls }

// Events is the mirror's client-event aggregator.
func (m *Mirror) Events() *fleet.Aggregator { return m.events }

// Syncer is the mirror's syncer (for one-shot commands and tests).
func (m *Mirror) Syncer() *sync.Syncer { return m.syncer }

// Run serves and syncs until ctx is done, Close is called or a part
// fails, and returns once every part has stopped. A stop asked for (ctx
// cancelled, Close) is not an error.
func (m *Mirror) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	if m.cancel != nil || m.closed {
		m.mu.Unlock()
		cancel()
		return errors.New("mirror: already running or closed")
	}
	m.cancel, m.done = cancel, make(chan struct{})
	m.mu.Unlock()
	defer close(m.done)
	defer cancel()

	g := daemon.NewGroup(ctx)
	g.Go("http", m.serve)
	if m.tls != nil {
		g.Go("tls", m.tls.Run)
	}
	if m.cfg.Source != nil {
		g.Go("sync", func(ctx context.Context) error {
			m.syncer.Run(ctx, m.cfg.SyncInterval)
			return ctx.Err()
		})
	}
	if m.cfg.InboxDir != "" {
		inbox := &sync.Inbox{Dir: m.cfg.InboxDir, Syncer: m.syncer, Interval: m.cfg.InboxInterval, Logger: m.log}
		g.Go("inbox", func(ctx context.Context) error {
			inbox.Run(ctx)
			return ctx.Err()
		})
	}
	if m.cfg.GCInterval > 0 {
		g.Go("gc", m.gc)
	}
	if m.admin != nil {
		g.Go("admin", func(ctx context.Context) error { return m.serveAdmin(ctx, m.admin) })
	}
	m.log.Info("mirror serving", "listen", m.Addr().String(), "tls", m.tls != nil, "source", sourceName(m.cfg.Source))
	err := g.Wait()
	if err != nil && ctx.Err() == nil {
		return err
	}
	if err != nil {
		m.log.Warn("mirror stopped", "err", err)
	}
	return nil
}

// serve runs the HTTP server until ctx is done, then shuts it down
// within ShutdownTimeout (in-flight requests finish, or are cut) and
// waits for every handler.
func (m *Mirror) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- m.hs.Serve(m.ln) }()
	select {
	case err := <-errc:
		m.inflight.Wait()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.ShutdownTimeout)
	defer cancel()
	var ferr error
	if m.front != nil {
		ferr = m.front.Shutdown(sctx)
	}
	err := m.hs.Shutdown(sctx)
	if err == nil {
		err = ferr
	}
	if err != nil {
		// Requests still running past the deadline: cut their
		// connections, so their handlers fail their writes and return.
		m.hs.Close()
		m.log.Warn("shutdown deadline passed; connections closed", "err", err)
	}
	<-errc // Serve returned http.ErrServerClosed
	m.inflight.Wait()
	return ctx.Err()
}

// leaseSweepLimit bounds the expired leases one GC round purges from
// the seat index (acquires purge at the limit by themselves).
const leaseSweepLimit = 10_000

// gc runs the cache GC and the lease sweep every GCInterval.
func (m *Mirror) gc(ctx context.Context) error {
	t := time.NewTicker(m.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if rep, err := m.syncer.GC(ctx); err != nil {
				m.log.Error("gc", "err", err)
			} else if rep.Removed > 0 {
				m.log.Info("gc", "removed", rep.Removed, "bytes", rep.Bytes)
			}
			m.sweepLeases(ctx)
		}
	}
}

// sweepLeases purges expired leases from the ledger's seat index, if
// the ledger can be opened (a mirror id is known).
func (m *Mirror) sweepLeases(ctx context.Context) {
	led, err := m.leases.Ledger()
	if err != nil {
		return // no ledger yet: nothing to sweep
	}
	if n, err := led.Sweep(ctx, time.Now(), leaseSweepLimit); err != nil && ctx.Err() == nil {
		m.log.Error("sweep expired leases", "err", err)
	} else if n > 0 {
		m.log.Info("swept expired leases", "count", n)
	}
}

// Close stops Run if it runs and waits (at most until ctx is done) for
// every part to return, then closes the state. It is safe to call more
// than once. When ctx ends first, the state stays open (a part still
// uses it) and Close returns ctx's error.
func (m *Mirror) Close(ctx context.Context) error {
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	cancel, done := m.cancel, m.done
	if cancel == nil {
		m.closed = true // never ran: nothing to join
	}
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("close mirror: parts still running: %w", ctx.Err())
		}
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
	} else {
		m.ln.Close()
		if m.admin != nil {
			m.admin.Close()
		}
	}
	m.srv.Close()
	return m.st.Close()
}

func sourceName(s sync.Source) string {
	if s == nil {
		return "none"
	}
	return s.Name()
}
