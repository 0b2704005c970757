package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/wire"
)

// The admin socket lets the one-shot commands (`mirror sync`, `status`,
// `verify`, `import`, `gc`) work while `mirror serve` runs: the daemon
// owns mirror.db (bbolt admits one process), so a command that finds
// the state locked asks the daemon instead, which runs the same code
// paths it runs on its own (its syncer, its cache). The socket is a Unix
// socket in the data dir, mode 0600 in the 0700 data dir, and on Linux a
// connection from another user (SO_PEERCRED; root excepted) is closed
// unanswered.

// AdminSocketName is the socket's file name in the data dir.
const AdminSocketName = "admin.sock"

// ErrNoSource answers a sync asked of a mirror fed by bundles only.
var ErrNoSource = catalog.Errorf(catalog.ECONFLICT, "sync: no source configured (source: none); use `mirror import BUNDLE`")

// maxSocketPath is the longest path a Unix socket may have (sun_path
// holds 108 bytes on Linux, 104 on the BSDs).
const maxSocketPath = 104

// LocalStatus is the status one-shot commands and the admin socket
// print: the held snapshot, the last sync, the cache and the client
// events as mirror.db holds them.
func LocalStatus(ctx context.Context, st *state.State, c *cache.Cache, now time.Time) (Status, error) {
	s, err := BuildStatus(ctx, st, c, now)
	if err != nil {
		return Status{}, err
	}
	fs, err := st.FleetStore()
	if err != nil {
		return Status{}, err
	}
	meta, err := fs.Meta(ctx)
	if err != nil {
		return Status{}, err
	}
	var aggs []fleet.Aggregate
	if err := fs.Aggregates(ctx, func(g fleet.Aggregate) error { aggs = append(aggs, g); return nil }); err != nil {
		return Status{}, err
	}
	s.Events = EventStatus(meta, aggs)
	return s, nil
}

// VerifyResult is what `mirror verify` reports: the re-hash and the
// held snapshot's artifacts missing from the cache.
type VerifyResult struct {
	cache.VerifyReport
	Missing int `json:"missing"`
}

// VerifyCache re-hashes the cache (quarantining corrupt blobs), updates
// the cache summary the status answers from, and counts what the held
// snapshot lacks.
func VerifyCache(ctx context.Context, st *state.State, c *cache.Cache, s *sync.Syncer) (VerifyResult, error) {
	rep, err := c.Verify(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	if _, err := s.RefreshUsage(ctx); err != nil {
		return VerifyResult{}, err
	}
	status, err := BuildStatus(ctx, st, c, time.Now())
	if err != nil {
		return VerifyResult{}, err
	}
	return VerifyResult{VerifyReport: rep, Missing: status.Cache.Missing}, nil
}

// adminHandler serves the admin API on the socket.
func (m *Mirror) adminHandler() http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			wire.WriteLocalError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s, err := LocalStatus(r.Context(), m.st, m.cache, time.Now())
		answer(w, s, err)
	})
	mux.HandleFunc("POST /sync", func(w http.ResponseWriter, r *http.Request) {
		if m.cfg.Source == nil {
			answer(w, nil, ErrNoSource)
			return
		}
		res, err := m.syncer.Once(r.Context())
		if err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
		answer(w, res, err)
	})
	mux.HandleFunc("POST /verify", func(w http.ResponseWriter, r *http.Request) {
		res, err := VerifyCache(r.Context(), m.st, m.cache, m.syncer)
		answer(w, res, err)
	})
	mux.HandleFunc("POST /import", func(w http.ResponseWriter, r *http.Request) {
		// The command streams the bundle: the daemon never opens a path
		// on a caller's behalf.
		rep, err := m.syncer.Import(r.Context(), r.Body, r.URL.Query().Get("dry_run") == "true")
		answer(w, rep, err)
	})
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, r *http.Request) {
		rep, err := m.syncer.GC(r.Context())
		answer(w, rep, err)
	})
	mux.HandleFunc("POST /leases/release", func(w http.ResponseWriter, r *http.Request) {
		var req ForceRelease
		if err := catalog.DecodeStrict(io.LimitReader(r.Body, 16<<10), &req); err != nil {
			answer(w, nil, err)
			return
		}
		answer(w, req, req.Do(r.Context(), m.leases, m.cfg.Now()))
	})
	mux.HandleFunc("GET /audit/head", func(w http.ResponseWriter, r *http.Request) {
		h, err := m.st.AuditHead()
		answer(w, AuditHead{Hash: h}, err)
	})
	return mux
}

// ForceRelease is a site operator's release of a subject's lease (`mirror
// lease release`): it frees the seat without the holder secret, for a
// machine that is gone with it. Only the admin socket and the one-shot
// command (the data dir's owner) reach it; the HTTP lease API always
// needs the secret.
type ForceRelease struct {
	EntitlementID string `json:"entitlement_id"`
	SubjectType   string `json:"subject_type,omitempty"` // "": the subject's one active lease, whatever its type
	SubjectID     string `json:"subject_id"`
}

// Do releases the lease in the ledger of leases, recording
// lease.released in the mirror's audit chain.
func (f ForceRelease) Do(ctx context.Context, leases *Leases, now time.Time) error {
	if f.EntitlementID == "" {
		return catalog.Invalid("entitlement_id", "is required")
	}
	led, err := leases.Ledger()
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return led.Release(ctx, f.EntitlementID, f.SubjectType, f.SubjectID, "", true, now)
}

// AuditHead is the hash of the newest event of the mirror's audit chain
// ("" while it is empty).
type AuditHead struct {
	Hash string `json:"hash"`
}

// listenAdmin creates the admin socket (a stale one, left by a daemon
// that died, is replaced: this process holds the state lock, so no
// other daemon serves it).
func listenAdmin(path string) (net.Listener, error) {
	if len(path) >= maxSocketPath {
		return nil, fmt.Errorf("admin socket %s: path longer than %d bytes (set admin_socket to a shorter path)", path, maxSocketPath-1)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("admin socket %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin socket: remove stale %s: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &ownerListener{Listener: ln, uid: os.Getuid(), root: true}, nil
}

// ownerListener closes connections from other users than the daemon's
// (root excepted) where the platform tells the peer (peerUID).
type ownerListener struct {
	net.Listener
	uid  int
	root bool // root is let in too
	log  *slog.Logger
}

func (l *ownerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, known := peerUID(c)
		if !known || uid == l.uid || uid == 0 && l.root {
			return c, nil
		}
		if l.log != nil {
			l.log.Warn("admin socket: connection from another user refused", "uid", uid)
		}
		c.Close()
	}
}

// serveAdmin serves the admin API on ln until ctx is done.
func (m *Mirror) serveAdmin(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           m.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin socket: %w", err)
	case <-ctx.Done():
	}
	// Requests see ctx cancelled (BaseContext) and return; wait for them.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	<-errc
	return ctx.Err()
}

// AdminClient talks to a running mirror's admin socket.
type AdminClient struct {
	hc *http.Client
}

// DialAdmin returns a client of the daemon serving the admin socket at
// path, and false when none answers there (no daemon, or a stale file).
func DialAdmin(ctx context.Context, path string) (*AdminClient, bool) {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := dial(pctx, "", "")
	if err != nil {
		return nil, false
	}
	c.Close()
	return &AdminClient{hc: &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}}, true
}

// Status is the daemon's LocalStatus.
func (c *AdminClient) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/status", nil, &s)
}

// Sync runs a sync now (the daemon's syncer: one at a time with its
// loop).
func (c *AdminClient) Sync(ctx context.Context) (state.SyncResult, error) {
	var r state.SyncResult
	return r, c.do(ctx, http.MethodPost, "/sync", nil, &r)
}

// Verify re-hashes the daemon's cache.
func (c *AdminClient) Verify(ctx context.Context) (VerifyResult, error) {
	var r VerifyResult
	return r, c.do(ctx, http.MethodPost, "/verify", nil, &r)
}

// Import streams a bundle to the daemon, which imports it.
func (c *AdminClient) Import(ctx context.Context, bundle io.Reader, dryRun bool) (sync.ImportReport, error) {
	var r sync.ImportReport
	p := "/import"
	if dryRun {
		p += "?dry_run=true"
	}
	return r, c.do(ctx, http.MethodPost, p, bundle, &r)
}

// GC runs the daemon's cache GC.
func (c *AdminClient) GC(ctx context.Context) (cache.GCReport, error) {
	var r cache.GCReport
	return r, c.do(ctx, http.MethodPost, "/gc", nil, &r)
}

// ForceRelease releases a subject's lease without its holder secret.
func (c *AdminClient) ForceRelease(ctx context.Context, f ForceRelease) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	var out ForceRelease
	return c.do(ctx, http.MethodPost, "/leases/release", bytes.NewReader(b), &out)
}

// AuditHead is the head of the daemon's audit chain.
func (c *AdminClient) AuditHead(ctx context.Context) (AuditHead, error) {
	var h AuditHead
	return h, c.do(ctx, http.MethodGet, "/audit/head", nil, &h)
}

func (c *AdminClient) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	u := url.URL{Scheme: "http", Host: "mirror", Path: path}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u.Path, u.RawQuery = path[:i], path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("running mirror (admin socket): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The daemon's error as the same operation run here would give
		// it: its code and its whole message.
		return wire.ReadError(resp).Unwrap()
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, 16<<20))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("running mirror (admin socket): decode answer: %w", err)
	}
	return nil
}
