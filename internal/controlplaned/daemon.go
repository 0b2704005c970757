package controlplaned

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/consoleapp"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/ratelimit"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/tlsconf"
)

// ControlPlane is a serving control plane. Its parts (the HTTP server and
// the housekeeping) run in one daemon.Group; Close stops them, joins every
// part and every in-flight request, and only then closes the store.
type ControlPlane struct {
	cfg    Config
	app    *controlplane.App
	store  store.Store
	server *httpapi.Server
	// handler serves the API and, at /console/, the web console.
	handler http.Handler
	ln      net.Listener
	tls     *tlsconf.Server // nil: plain HTTP

	mu     sync.Mutex
	group  *daemon.Group
	done   chan struct{} // closed when Run returns
	closed bool
}

// Open opens the parts cfg names and listens on cfg.Listen; Run serves.
func Open(ctx context.Context, cfg Config) (*ControlPlane, error) {
	app, st, err := OpenApp(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	return New(app, st, cfg)
}

// New is Open over an App and its store, already open: the ControlPlane
// owns them from here (Close closes the store).
func New(app *controlplane.App, st store.Store, cfg Config) (*ControlPlane, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8440"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = time.Minute
	}
	if cfg.StreamIdle <= 0 {
		cfg.StreamIdle = time.Minute
	}
	var leases *ratelimit.Limiter
	if cfg.LeaseRate >= 0 {
		rate, burst := cfg.LeaseRate, cfg.LeaseBurst
		if rate == 0 {
			rate = 5
		}
		if burst == 0 {
			burst = 20
		}
		var err error
		if leases, err = ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst}); err != nil {
			st.Close()
			return nil, err
		}
	}
	ts, err := cfg.serverTLS()
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	if ts != nil {
		ln = tls.NewListener(ln, ts.Config)
	}
	c := &ControlPlane{
		cfg: cfg, app: app, store: st, ln: ln, tls: ts, done: make(chan struct{}),
		server: &httpapi.Server{
			App: app, Log: cfg.logger(), MaxBodyBytes: cfg.MaxBodyBytes, MirrorClientCert: cfg.MirrorClientCAFile != "",
			ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout, StreamIdle: cfg.StreamIdle, LeaseLimit: leases,
			Collectors: storeMetrics(st),
		},
	}
	// The console goes through the same App as the API (consoleapp);
	// its session cookie is Secure when the request came over TLS.
	con, err := console.New(console.Options{Backend: consoleapp.New(app, consoleapp.Options{}), Logger: cfg.logger(),
		MaxUploadBytes: app.Config().MaxArtifactBytes})
	if err != nil {
		ln.Close()
		st.Close()
		return nil, fmt.Errorf("console: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", con)
	mux.Handle("/", c.server)
	c.handler = mux
	return c, nil
}

// Handler is what the daemon serves: the API, and the web console at
// /console/.
func (c *ControlPlane) Handler() http.Handler { return c.handler }

// serverTLS is the server TLS side cfg asks for, nil for plain HTTP.
// mirror_client_ca_file turns on optional client certificates: /v1/mirror/*
// then requires one that chains to it (httpapi.Server.MirrorClientCert).
func (cfg Config) serverTLS() (*tlsconf.Server, error) {
	tc := cfg.TLS
	if cfg.MirrorClientCAFile != "" {
		if !tc.Enabled() {
			return nil, errors.New("mirror_client_ca_file needs tls_cert_file and tls_key_file")
		}
		tc.ClientCAFile, tc.ClientAuth = cfg.MirrorClientCAFile, tlsconf.ClientAuthOptional
	}
	if !tc.Enabled() {
		return nil, nil
	}
	return tlsconf.NewServer(tc, cfg.logger())
}

// Scheme is "https" when the daemon serves TLS, else "http".
func (c *ControlPlane) Scheme() string {
	if c.tls != nil {
		return "https"
	}
	return "http"
}

// Addr is the address the API listens on.
func (c *ControlPlane) Addr() string { return c.ln.Addr().String() }

// App is the application layer the daemon serves.
func (c *ControlPlane) App() *controlplane.App { return c.app }

// Run serves until ctx is cancelled or a part fails, then shuts down: the
// server stops accepting, in-flight requests get ShutdownTimeout to finish
// (then their connections are closed), housekeeping stops, and Run
// returns once every part and request has returned. A clean stop returns
// nil.
func (c *ControlPlane) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.group != nil || c.closed {
		c.mu.Unlock()
		return errors.New("controlplane: Run called twice or after Close")
	}
	g := daemon.NewGroup(ctx)
	c.group = g
	c.mu.Unlock()
	defer close(c.done)

	var inflight sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			c.handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: c.cfg.ReadHeaderTimeout,
		// Every request gets these; the API's routes set their own
		// (httpapi.Server: per read and write on streaming routes).
		ReadTimeout:  c.cfg.ReadTimeout,
		WriteTimeout: c.cfg.WriteTimeout,
		IdleTimeout:  2 * time.Minute,
	}
	log := c.cfg.logger()
	g.Go("http", func(ctx context.Context) error {
		c.server.SetReady(true)
		log.Info("control plane listening", "addr", c.Addr())
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(c.ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		log.Info("shutting down: finishing in-flight requests")
		c.server.SetReady(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("in-flight requests cut at the shutdown deadline", "err", err)
			srv.Close()
		}
		<-errc
		inflight.Wait()
		return ctx.Err()
	})
	g.Go("housekeeping", c.housekeeping)
	if c.cfg.SharesKeys() {
		g.Go("keysync", c.keySync)
	}
	if c.tls != nil {
		// Certificates rotate without a restart: SIGHUP or a change of
		// the files reloads them.
		g.Go("tls", c.tls.Run)
	}
	// Delta builds: one at a time, in the background (docs/deltas.md).
	g.Go("deltas", func(ctx context.Context) error { return c.app.RunDeltaWorker(ctx, time.Minute) })
	if d, err := c.dispatcher(); err != nil {
		log.Error("webhook dispatcher not started", "err", err)
	} else if d != nil {
		g.Go("webhooks", d.Run)
	}
	return g.Wait()
}

// housekeeping runs at start and then every RefreshInterval (hourly when
// 0): it rebuilds snapshots that are about to expire (when RefreshInterval
// is set), deletes artifact bytes a crash left without a record (older
// than a day), takes expired leases out of the active sets
// (App.SweepExpiredLeases), forgets idempotency records older than
// IdempotencyTTL, prunes old snapshots and TUF metadata (App.Prune, the
// retention policy), advances or halts the rollouts that have a schedule
// or a health gate (App.EvaluateRollouts), and records mirror.stale for
// mirrors silent past Config.MirrorStaleAfter (App.CheckStaleMirrors).
func (c *ControlPlane) housekeeping(ctx context.Context) error {
	every := c.cfg.RefreshInterval
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	log := c.cfg.logger()
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorSystem, ID: "housekeeping"})
	for {
		if c.cfg.RefreshInterval > 0 {
			if _, err := c.app.RefreshSnapshots(ctx, c.cfg.RefreshBefore); err != nil && ctx.Err() == nil {
				log.Error("snapshot refresh", "err", err)
			}
		}
		if _, err := c.app.RefreshTUF(ctx); err != nil && ctx.Err() == nil {
			log.Error("tuf timestamp refresh", "err", err)
		}
		if ds, err := c.app.EvaluateRollouts(ctx); err != nil && ctx.Err() == nil {
			log.Error("evaluate rollouts", "err", err)
		} else if len(ds) > 0 {
			log.Info("rollouts moved by their schedules and health gates", "count", len(ds))
		}
		if ms, err := c.app.CheckStaleMirrors(ctx); err != nil && ctx.Err() == nil {
			log.Error("check stale mirrors", "err", err)
		} else if len(ms) > 0 {
			log.Info("mirrors silent past mirror_stale_after", "count", len(ms))
		}
		if _, err := c.app.RecordHistory(ctx); err != nil && ctx.Err() == nil {
			log.Error("record console history", "err", err)
		}
		if n, err := c.app.PruneFleetEvents(ctx); err != nil && ctx.Err() == nil {
			log.Error("prune fleet events", "err", err)
		} else if n > 0 {
			log.Info("pruned fleet events past their retention", "count", n)
		}
		if p, err := c.app.Prune(ctx); err != nil && ctx.Err() == nil {
			log.Error("retention", "err", err)
		} else if p.Snapshots+p.TenantFiles+p.SharedFiles > 0 {
			log.Info("pruned old snapshots and TUF metadata (retention)", "snapshots", p.Snapshots, "tenant_files", p.TenantFiles, "shared_files", p.SharedFiles)
		}
		if n, err := c.app.SweepOrphanBlobs(ctx, 24*time.Hour); err != nil && ctx.Err() == nil {
			log.Error("sweep orphan blobs", "err", err)
		} else if n > 0 {
			log.Info("deleted artifact bytes no record names", "count", n)
		}
		if n, err := c.app.SweepExpiredLeases(ctx); err != nil && ctx.Err() == nil {
			log.Error("sweep expired leases", "err", err)
		} else if n > 0 {
			log.Info("swept expired leases", "count", n)
		}
		if n, err := c.app.ExpireIdempotency(ctx, c.cfg.IdempotencyTTL); err != nil && ctx.Err() == nil {
			log.Error("expire idempotency records", "err", err)
		} else if n > 0 {
			log.Info("expired idempotency records", "count", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close stops Run if it is running and waits for it (or for ctx), then
// closes the listener and the store. It is safe to call more than once.
func (c *ControlPlane) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	g := c.group
	c.mu.Unlock()
	if g != nil {
		g.Stop()
		select {
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("close: parts still running: %w", ctx.Err())
		}
	}
	c.ln.Close()
	c.app.Drain() // follow-up builds whose callers left
	if err := c.store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// writeStats is a store that counts its write transactions (PostgreSQL).
type writeStats interface {
	WriteStats() (txs int64, held time.Duration, retries int64)
}

// storeMetrics exports st's write counters, when it keeps them: with
// several instances on one database, retries are the shared writes that
// lost a conflict with another's and ran again (docs/architecture.md).
func storeMetrics(st store.Store) []prometheus.Collector {
	ws, ok := st.(writeStats)
	if !ok {
		return nil
	}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "outpost_controlplane_store_write_transactions_total",
			Help: "Read-write transactions the store ran (a grouped batch is one).",
		}, func() float64 { n, _, _ := ws.WriteStats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "outpost_controlplane_store_write_seconds_total",
			Help: "Time spent in read-write transactions, waits for the write gate included.",
		}, func() float64 { _, d, _ := ws.WriteStats(); return d.Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "outpost_controlplane_store_shared_retries_total",
			Help: "Shared write transactions run again after a conflict with another transaction.",
		}, func() float64 { _, _, r := ws.WriteStats(); return float64(r) }),
	}
}
