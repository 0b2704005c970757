// Command mirror is Outpost's customer-side mirror daemon: it syncs a
// tenant's signed snapshots (from the control plane, an S3 bucket, an
// upstream mirror or an offline bundle) and serves them to clients. It only
// wires packages together; see internal/sync, internal/mirror and
// internal/cache.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/daemon"
)

func main() {
	root := newRoot(os.Stdout, os.Stderr)
	if err := root.Execute(); err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		fmt.Fprintln(os.Stderr, "mirror: "+msg)
		os.Exit(daemon.ExitFailure)
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "mirror",
		Short:         "Outpost mirror: verified offline copy of a tenant's releases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (YAML); env OUTPOST_CONFIG")
	pf.String("data-dir", "./data/mirror", "data directory")
	pf.String("listen", "127.0.0.1:8441", "HTTP listen address")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("output", "text", "output format: text or json")
	root.AddCommand(initCmd(), serveCmd(), syncCmd(), importCmd(), statusCmd(), verifyCmd(), gcCmd(), auditCmd(), adminTokenCmd())
	return root
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// output prints v as JSON with --output json, or text otherwise.
func output(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	format, _ := cmd.Flags().GetString("output")
	switch format {
	case "json":
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "":
		text(cmd.OutOrStdout())
		return nil
	default:
		return errors.New("--output must be text or json")
	}
}
