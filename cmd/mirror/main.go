// Command mirror is Outpost's customer-side mirror daemon: it syncs a
// tenant's signed snapshots (from the control plane, an S3 bucket, an
// upstream mirror or an offline bundle) and serves them to clients. It only
// wires packages together; see internal/sync, internal/mirror and
// internal/cache.
package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/cliconf"
	"github.com/outpost/outpost/internal/clock"
)

func main() {
	os.Exit(cliconf.Execute(newRoot(os.Stdout, os.Stderr), os.Stderr))
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := cliconf.Root("mirror", "Outpost mirror: verified offline copy of a tenant's releases", "./data/mirror", stdout, stderr)
	root.PersistentFlags().String("listen", "127.0.0.1:8441", "HTTP listen address")
	root.AddCommand(initCmd(), serveCmd(), syncCmd(), importCmd(), statusCmd(), verifyCmd(), gcCmd(), auditCmd(), leaseCmd(), reportCmd(), adminTokenCmd())
	return root
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	l := cliconf.Logger(cfg.LogLevel, cfg.LogFormat, w)
	if msg := clock.Warning(); msg != "" {
		l.Warn(msg)
	}
	return l
}

// output prints v as JSON with --output json, or text otherwise.
func output(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	err := cliconf.Output(cmd, v, text)
	return err
}
