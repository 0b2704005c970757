package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	gosync "sync"

	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/sync"
)

// leases opens the mirror's licence ledger on first use: a mirror synced
// from the control plane only learns its id on its first sync, so the
// ledger cannot always be built at start.
type leases struct {
	cfg *Config
	st  *mirror.State

	mu     gosync.Mutex
	ledger *license.Ledger
}

func newLeases(cfg *Config, st *mirror.State) *leases { return &leases{cfg: cfg, st: st} }

// get returns the ledger, or why there is none yet.
func (l *leases) get() (*license.Ledger, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ledger != nil {
		return l.ledger, nil
	}
	id := l.cfg.MirrorID
	if id == "" {
		var err error
		if id, err = l.st.MirrorID(); err != nil {
			return nil, err
		}
	}
	if id == "" {
		return nil, sync.ErrNoMirrorID
	}
	key, err := loadKey(l.cfg.KeyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("mirror key %s is missing: run `mirror init`", l.cfg.KeyFile)
	}
	if err != nil {
		return nil, err
	}
	led, err := license.NewLedger(l.st.DB(), id, key, l.cfg.TenantID)
	if err != nil {
		return nil, err
	}
	l.ledger = led
	return led, nil
}

// exportAudit is sync.Config.AuditExport.
func (l *leases) exportAudit(ctx context.Context, w io.Writer) error {
	led, err := l.get()
	if err != nil {
		return err
	}
	return led.ExportAudit(ctx, w)
}

// leaseRoutes serves PUT/DELETE /v1/leases/{subject_id}. The server's
// router is built before the server exists, so bind supplies it after.
type leaseRoutes struct {
	l      *leases
	srv    *mirror.Server
	authed http.Handler
	once   gosync.Once
	h      http.Handler
}

func (lr *leaseRoutes) mount(mux *http.ServeMux) {
	mux.Handle("PUT /v1/leases/{subject_id}", lr)
	mux.Handle("DELETE /v1/leases/{subject_id}", lr)
}

// bind must run before the server takes requests.
func (lr *leaseRoutes) bind(srv *mirror.Server) {
	lr.srv = srv
	lr.authed = srv.Auth(http.HandlerFunc(lr.serve))
}

func (lr *leaseRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) { lr.authed.ServeHTTP(w, r) }

// serve answers 503 saying why while there is no ledger.
func (lr *leaseRoutes) serve(w http.ResponseWriter, r *http.Request) {
	led, err := lr.l.get()
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
			"code": "unavailable", "message": "leases unavailable: " + err.Error(),
		}})
		return
	}
	lr.once.Do(func() { lr.h = license.Handler(led, lr.srv.Manifest) })
	lr.h.ServeHTTP(w, r)
}
