package main

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/store"
)

// A command works with one controlplane.Service: with --server or --token
// (or OUTPOST_TOKEN) it is the HTTP client of a running control plane;
// otherwise the App over the data dir, opened for the command (bbolt fails
// at once while the daemon holds the file: use --server then).

func addClientFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().String("server", "", "control plane URL (env OUTPOST_SERVER, default http://127.0.0.1:8440); with it or a token, commands go through the API")
	cmd.PersistentFlags().String("token", "", "admin token (env OUTPOST_TOKEN)")
}

func remote(cmd *cobra.Command) bool {
	s, _ := cmd.Flags().GetString("server")
	t, _ := cmd.Flags().GetString("token")
	return s != "" || t != "" || os.Getenv("OUTPOST_TOKEN") != ""
}

// withService runs fn with the command's Service and a context acting as
// the operator (local) or the token (remote).
func withService(cmd *cobra.Command, fn func(ctx context.Context, svc controlplane.Service) error) error {
	if remote(cmd) {
		c, err := apiClient(cmd)
		if err != nil {
			return err
		}
		return fn(cmd.Context(), c)
	}
	return withApp(cmd, func(ctx context.Context, a *controlplane.App) error { return fn(ctx, a) })
}

// withApp opens the data dir for a one-shot command.
func withApp(cmd *cobra.Command, fn func(ctx context.Context, a *controlplane.App) error) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	app, st, err := controlplaned.OpenApp(cmd.Context(), cfg.daemon(newLogger(cfg, cmd.ErrOrStderr())), false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := controlplane.AsOperator(cmd.Context(), catalog.Actor{Type: catalog.ActorUser, ID: "cli"})
	return fn(ctx, app)
}

func apiClient(cmd *cobra.Command) (*httpapi.Client, error) {
	server, _ := cmd.Flags().GetString("server")
	token, _ := cmd.Flags().GetString("token")
	if server == "" {
		server = os.Getenv("OUTPOST_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8440"
	}
	if token == "" {
		token = os.Getenv("OUTPOST_TOKEN")
	}
	if token == "" {
		return nil, errors.New("no token: pass --token or set OUTPOST_TOKEN")
	}
	return &httpapi.Client{BaseURL: server, Token: token}, nil
}

// all pages through a list operation.
func all[T any](ctx context.Context, list func(ctx context.Context, pg store.Page) ([]T, string, error)) ([]T, error) {
	var out []T
	pg := store.Page{Limit: store.MaxLimit}
	for {
		items, next, err := list(ctx, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		pg.Cursor = next
	}
}
