// Command controlplane is Outpost's vendor control plane: the catalog, the
// signed per-tenant snapshots, the mirror API and the admin CLI. It only
// wires packages together: the operations live in internal/controlplane,
// the HTTP API in internal/httpapi, the daemon in internal/controlplaned.
//
// Exit codes (internal/daemon): 0 success; 1 the command failed (one line
// on stderr says why); 2 the command line was wrong; 130 a second
// SIGINT/SIGTERM cut `serve`'s graceful shutdown short.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/cliconf"
)

func main() {
	os.Exit(cliconf.Execute(newRoot(os.Stdout, os.Stderr), os.Stderr))
}

// usageError marks err as a wrong command line (exit 2).
func usageError(err error) error { return cliconf.UsageError{Err: err} }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := cliconf.Root("controlplane", "Outpost vendor control plane", "./data/controlplane", stdout, stderr)
	root.AddCommand(initCmd(), serveCmd(), tokenCmd(), keysCmd(), auditCmd(), apiCmd())
	root.AddCommand(tenantCmd(), productCmd(), artifactCmd(), releaseCmd())
	root.AddCommand(rolloutCmd(), policyCmd(), blockedCmd(), entitlementCmd(), seatCmd(), mirrorCmd())
	root.AddCommand(snapshotCmd(), bundleCmd(), backupCmd(), reportCmd(), mirrorAuditCmd(), webhookCmd())
	root.AddCommand(rootCmd())
	return root
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	return cliconf.Logger(cfg.LogLevel, cfg.LogFormat, w)
}

// output prints v as JSON with --output json, or text otherwise.
func output(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	err := cliconf.Output(cmd, v, text)
	if errors.Is(err, cliconf.ErrOutputFormat) {
		return usageError(err)
	}
	return err
}

// table prints rows under a tab-separated header.
func table(w io.Writer, header string, rows [][]any) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// items prints a list as {"items": […]} in JSON, or as a table.
func items[T any](cmd *cobra.Command, list []T, header string, row func(T) []any) error {
	return output(cmd, map[string]any{"items": list}, func(w io.Writer) {
		var rows [][]any
		for _, x := range list {
			rows = append(rows, row(x))
		}
		table(w, header, rows)
	})
}
