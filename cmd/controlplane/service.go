package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/tlsconf"
	"github.com/outpost/outpost/internal/wire"
)

// A command works with one controlplane.Service: with --server or --token
// (or OUTPOST_TOKEN) it is the HTTP client of a running control plane;
// otherwise the App over the data dir, opened for the command (bbolt fails
// at once while the daemon holds the file: use --server then).

func addClientFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().String("server", "", "control plane URL (env OUTPOST_SERVER, default http://127.0.0.1:8440); with it or a token, commands go through the API")
	cmd.PersistentFlags().String("token", "", "admin token (env OUTPOST_TOKEN)")
	cmd.PersistentFlags().String("ca-file", "", "PEM CA the control plane's certificate must chain to, instead of the system roots (env OUTPOST_CA_FILE)")
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
		return remoteError(cmd, fn(cmd.Context(), c))
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

// serverURL is the control plane the command talks to and where that
// URL came from (for messages).
func serverURL(cmd *cobra.Command) (url, from string) {
	if s, _ := cmd.Flags().GetString("server"); s != "" {
		return s, "--server"
	}
	if s := os.Getenv("OUTPOST_SERVER"); s != "" {
		return s, "OUTPOST_SERVER"
	}
	return "http://127.0.0.1:8440", "the default; set --server or OUTPOST_SERVER"
}

// remoteError explains a failed API call in the command line's terms: a
// control plane that cannot be reached names the URL and where it came
// from, a refused token names --token.
func remoteError(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	server, from := serverURL(cmd)
	var we *wire.Error
	switch {
	case errors.As(err, &we) && we.Status == http.StatusUnauthorized:
		return fmt.Errorf("%w; the control plane at %s refused the token: pass an admin token with --token or OUTPOST_TOKEN (`controlplane token create --role admin` on the data dir makes one)", err, server)
	case errors.As(err, &we) && we.Status == http.StatusForbidden:
		return fmt.Errorf("%w; the token's role may not do this: use an admin token (--token or OUTPOST_TOKEN)", err)
	case we == nil && catalog.ErrorCode(err) == catalog.EUNAVAILABLE && (strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "tls:")):
		return fmt.Errorf("the control plane at %s (%s) was reached but its TLS certificate was not accepted: %w; pin its CA with --ca-file (or OUTPOST_CA_FILE), or check the URL's host name", server, from, err)
	case we == nil && catalog.ErrorCode(err) == catalog.EUNAVAILABLE:
		return fmt.Errorf("cannot reach the control plane at %s (%s): %w; start it with `controlplane serve`, or point --server (or OUTPOST_SERVER) at the running one", server, from, err)
	}
	return err
}

func apiClient(cmd *cobra.Command) (*httpapi.Client, error) {
	server, _ := serverURL(cmd)
	token, _ := cmd.Flags().GetString("token")
	if token == "" {
		token = os.Getenv("OUTPOST_TOKEN")
	}
	if token == "" {
		return nil, errors.New("no token: pass --token or set OUTPOST_TOKEN")
	}
	c := &httpapi.Client{BaseURL: server, Token: token}
	ca, _ := cmd.Flags().GetString("ca-file")
	if ca == "" {
		ca = os.Getenv("OUTPOST_CA_FILE")
	}
	if ca != "" {
		tc, err := tlsconf.NewClient(tlsconf.ClientConfig{CAFile: ca}, nil)
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		c.HTTP = &http.Client{Transport: tr}
	}
	return c, nil
}

// op is what a command does with its Service.
type op func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error

// leaf makes a command that runs fn with the command's Service.
func leaf(use, short string, args cobra.PositionalArgs, fn op) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
		return withService(cmd, func(ctx context.Context, svc controlplane.Service) error { return fn(ctx, svc, cmd, args) })
	}}
}

// group makes a parent command of leaves that take the client flags. The
// leaves named list or versions take --limit (see listed).
func group(use, short string, leaves ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	for _, l := range leaves {
		if l.Name() == "list" || l.Name() == "versions" {
			l.Flags().Int("limit", defaultLimit, "print at most this many, newest first (0: all)")
		}
	}
	cmd.AddCommand(leaves...)
	addClientFlags(cmd)
	return cmd
}

// defaultLimit is how many items a list command prints unless --limit.
const defaultLimit = 50

// printed prints an operation's result: as JSON with --output json, else
// the line text gives.
func printed[T any](cmd *cobra.Command, text func(T) string) func(T, error) error {
	return func(v T, err error) error {
		if err != nil {
			return err
		}
		return output(cmd, v, func(w io.Writer) { fmt.Fprintln(w, text(v)) })
	}
}

// listed prints a list: {"items": […]} as JSON, else a table. Lists come
// oldest first (ids grow with time); with --limit the command prints the
// newest first, at most that many.
func listed[T any](cmd *cobra.Command, header string, row func(T) []any) func([]T, error) error {
	return func(list []T, err error) error {
		if err != nil {
			return err
		}
		return items(cmd, newestFirst(cmd, list), header, row)
	}
}

// newestFirst reverses an oldest-first list and keeps --limit items.
func newestFirst[T any](cmd *cobra.Command, list []T) []T {
	if cmd.Flags().Lookup("limit") == nil {
		return list
	}
	limit, _ := cmd.Flags().GetInt("limit")
	out := make([]T, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, list[i])
	}
	return out
}

// str reads a string flag the command defines.
func str(cmd *cobra.Command, name string) string {
	v, _ := cmd.Flags().GetString(name)
	return v
}
