package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/keyring"
)

func initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the data dir, a signing key, a data-encryption key, and print the first admin token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			done, err := initialized(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if done {
				if cfg.Store == "postgres" {
					return errors.New("the postgres store is already initialized")
				}
				return fmt.Errorf("%s is already initialized", cfg.DataDir)
			}
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("create data dir: %w", err)
			}
			if _, err := os.Stat(cfg.DataKeyFile); errors.Is(err, os.ErrNotExist) {
				key := make([]byte, 32)
				if _, err := rand.Read(key); err != nil {
					return err
				}
				if err := fsutil.WriteFile(cfg.DataKeyFile, key, 0o600); err != nil {
					return fmt.Errorf("write data-encryption key: %w", err)
				}
			}
			if keys, _ := keyring.Load(cfg.KeysDir); len(keys) == 0 {
				if _, err := keyring.Generate(cfg.KeysDir); err != nil {
					return fmt.Errorf("generate signing key: %w", err)
				}
			}
			db, err := openStore(cmd.Context(), cfg, false)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := catalog.WithActor(cmd.Context(), catalog.Actor{Type: catalog.ActorSystem, ID: "init"})
			secret, _, err := httpapi.IssueToken(ctx, db, catalog.RoleAdmin, "", "initial admin", time.Now().UTC())
			if err != nil {
				return err
			}
			return output(cmd, map[string]string{"data_dir": cfg.DataDir, "admin_token": secret}, func(w io.Writer) {
				fmt.Fprintln(w, secret)
			})
		},
	}
}

func serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(cfg, cmd.ErrOrStderr())
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			a, err := openApp(ctx, cfg, log, true)
			if err != nil {
				return err
			}
			defer a.Close()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			srv := &http.Server{Handler: a.server, ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: 2 * time.Minute}
			a.server.SetReady(true)
			log.Info("control plane listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "blob", cfg.Blob.Backend)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			go housekeeping(ctx, a, log)
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			log.Info("shutting down: finishing in-flight requests (send the signal again to exit at once)")
			a.server.SetReady(false)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				log.Warn("shutdown", "err", err)
			}
			if err := a.Close(); err != nil {
				return fmt.Errorf("close store: %w", err)
			}
			log.Info("stopped")
			return nil
		},
	}
	cmd.Flags().String("listen", "127.0.0.1:8440", "listen address")
	return cmd
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits the process at once.
func signalContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "controlplane: second signal, exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// housekeeping runs at start and then hourly (or every
// snapshot_refresh_interval): it rebuilds snapshots that are about to
// expire, so mirrors keep receiving fresh signatures; deletes artifact
// bytes a crash left without a record (older than a day); and forgets
// idempotency records older than idempotency_ttl.
func housekeeping(ctx context.Context, a *app, log *slog.Logger) {
	every := a.cfg.RefreshInterval
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if a.cfg.RefreshInterval > 0 {
			if _, err := a.server.RefreshSnapshots(ctx, a.cfg.RefreshBefore); err != nil && ctx.Err() == nil {
				log.Error("snapshot refresh", "err", err)
			}
		}
		if n, err := a.server.SweepOrphanBlobs(ctx, 24*time.Hour); err != nil && ctx.Err() == nil {
			log.Error("sweep orphan blobs", "err", err)
		} else if n > 0 {
			log.Info("deleted artifact bytes no record names", "count", n)
		}
		if n, err := a.store.ExpireIdempotency(ctx, time.Now().Add(-a.cfg.IdempotencyTTL)); err != nil && ctx.Err() == nil {
			log.Error("expire idempotency records", "err", err)
		} else if n > 0 {
			log.Info("expired idempotency records", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
