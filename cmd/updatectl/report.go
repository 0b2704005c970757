package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/client"
	"github.com/outpost/outpost/internal/fsutil"
)

// clientIDFile holds updatectl's pseudonymous event client id in the
// state dir.
const clientIDFile = "client-id"

// reportTimeout bounds the automatic, best-effort event report after a
// check or a download.
const reportTimeout = 5 * time.Second

// stateDir is --state-dir, else $XDG_STATE_HOME/outpost, else
// ~/.local/state/outpost.
func (a *app) stateDir() (string, error) {
	if a.opts.stateDir != "" {
		return a.opts.stateDir, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "outpost"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state dir: %w (set --state-dir)", err)
	}
	return filepath.Join(home, ".local", "state", "outpost"), nil
}

// eventClientID reads the pseudonymous client id from the state dir,
// making it (0600, in a 0700 dir) on first use.
func (a *app) eventClientID() (string, error) {
	dir, err := a.stateDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, clientIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read client id: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	id := client.NewClientID()
	if err := fsutil.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write client id: %w", err)
	}
	return id, nil
}

// autoReport sends e after a check or a download, best effort: a failure
// is one line on stderr and never changes the exit status. --no-report
// turns it off.
func (a *app) autoReport(ctx context.Context, c *client.Client, e client.Event) {
	if a.opts.noReport {
		return
	}
	id, err := a.eventClientID()
	if err != nil {
		fmt.Fprintf(a.stderr, "updatectl: event report skipped: %s\n", oneLine(err.Error()))
		return
	}
	e.ClientID = id
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	if err := c.ReportEvents(ctx, []client.Event{e}); err != nil && client.ErrorCode(err) != client.CodeNotFound {
		fmt.Fprintf(a.stderr, "updatectl: event report not delivered: %s\n", oneLine(err.Error()))
	}
}

// decisionEvent fills what a decision tells about the release offered.
func decisionEvent(t client.EventType, q client.Query, d *client.Decision) client.Event {
	e := client.Event{Type: t, ProductID: q.Product, FromVersion: q.Version}
	if d != nil && d.Release != nil {
		e.ReleaseID, e.ToVersion = d.Release.ReleaseID, d.Release.Version
		if e.ProductID == "" {
			e.ProductID = d.Release.ProductID
		}
	}
	if d != nil && d.Artifact != nil {
		e.ArtifactID = d.Artifact.ArtifactID
	}
	return e
}

// downloadErrorCode names a failed download's cause for the vendor.
func downloadErrorCode(err error) string {
	switch {
	case errors.Is(err, client.ErrVerification):
		return "E_VERIFICATION"
	case errors.Is(err, client.ErrNetwork):
		return "E_NETWORK"
	case errors.Is(err, context.Canceled):
		return "E_INTERRUPTED"
	case client.ErrorCode(err) != "":
		return "E_SERVER_" + strings.ToUpper(client.ErrorCode(err))
	}
	return "E_LOCAL"
}

func (a *app) reportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Report an install outcome to the mirror (for installer scripts)",
		Long: "report install-ok|install-failed sends one event to the mirror's POST /v1/events,\n" +
			"with the pseudonymous client id kept in --state-dir. Use the release and artifact ids\n" +
			"from `updatectl download -o json`.",
	}
	cmd.AddCommand(a.reportOneCmd("install-ok", client.EventInstallOK), a.reportOneCmd("install-failed", client.EventInstallFailed))
	return cmd
}

func (a *app) reportOneCmd(name string, t client.EventType) *cobra.Command {
	var e client.Event
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   name + " --release ID --from V --to V [--artifact ID] [--error-code C] [--duration D]",
		Short: "Report " + strings.ReplaceAll(name, "-", " "),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if e.ReleaseID == "" || e.ToVersion == "" {
				return usageError{errors.New("--release and --to are required")}
			}
			if e.ErrorCode != "" && t != client.EventInstallFailed {
				return usageError{errors.New("--error-code is only for install-failed")}
			}
			if duration < 0 {
				return usageError{errors.New("--duration must not be negative")}
			}
			c, err := a.newClient(true, false)
			if err != nil {
				return err
			}
			id, err := a.eventClientID()
			if err != nil {
				return err
			}
			e.Type, e.ClientID, e.DurationMS = t, id, duration.Milliseconds()
			if err := c.ReportEvents(cmd.Context(), []client.Event{e}); err != nil {
				var rej *client.RejectedError
				if errors.As(err, &rej) {
					return usageError{err}
				}
				return err
			}
			if a.opts.output == "json" {
				return a.printJSON(map[string]any{"reported": e})
			}
			fmt.Fprintf(a.stdout, "reported %s of %s %s\n", t, e.ReleaseID, e.ToVersion)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&e.ProductID, "product", "", "product id")
	f.StringVar(&e.ReleaseID, "release", "", "release id installed (required)")
	f.StringVar(&e.ArtifactID, "artifact", "", "artifact id installed")
	f.StringVar(&e.FromVersion, "from", "", "the version before the install")
	f.StringVar(&e.ToVersion, "to", "", "the version installed (required)")
	f.StringVar(&e.ErrorCode, "error-code", "", "install-failed: the installer's error code (A-Z a-z 0-9 - _ . :)")
	f.DurationVar(&duration, "duration", 0, "how long the install took, e.g. 42s")
	return cmd
}
