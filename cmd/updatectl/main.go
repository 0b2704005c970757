// Command updatectl is Outpost's reference update client: it checks a
// mirror or the control plane for updates, downloads and verifies the
// artifact against the vendor's pinned keys, and takes, gives back and
// verifies licence leases. It is a thin shell around package client; see
// docs/updatectl.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/outpost/outpost/client"
	"github.com/outpost/outpost/internal/buildinfo"
	"github.com/outpost/outpost/internal/clock"
)

// Exit codes; docs/updatectl.md and `updatectl --help` list them.
const (
	exitOK           = 0
	exitUsage        = 1
	exitServer       = 2
	exitVerification = 3
	exitNotFound     = 4
	exitNetwork      = 5
	exitUpdate       = 10
	exitInterrupted  = 130
)

const exitCodesHelp = `Exit status:
  0    up to date (check), downloaded and verified (download), done (lease)
  10   check: an update is available
  1    usage or local error: bad flags, missing configuration, cannot write --out
  2    the server refused or failed (invalid, unauthorized, forbidden, conflict,
       internal) or answered outside the API
  3    verification failure: bad signature, untrusted key, wrong tenant, revoked
       release, sha256 or size mismatch, rejected lease token (a lying mirror)
  4    not found (product, snapshot, entitlement, lease)
  5    network error: cannot connect, connection dropped, timeout
  130  interrupted
On failure a one-line reason is printed on stderr.

Every flag can also be set in the environment as OUTPOST_<FLAG>, upper case
with - as _ (OUTPOST_SERVER, OUTPOST_TRUSTED_KEY=k1,k2, OUTPOST_CLIENT_ID).
Flags win over the environment.`

// usageError marks bad invocations (exit 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit code that is not a failure (10).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes updatectl with args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	code := exitCode(err)
	if ctx.Err() != nil {
		code = exitInterrupted
	}
	fmt.Fprintf(stderr, "updatectl: %s\n", oneLine(err.Error()))
	return code
}

// exitCode classifies an error into the documented exit codes.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, client.ErrConfig):
		return exitUsage
	case errors.Is(err, client.ErrVerification):
		return exitVerification
	case client.ErrorCode(err) == client.CodeNotFound:
		return exitNotFound
	case errors.Is(err, client.ErrNetwork):
		return exitNetwork
	case client.ErrorCode(err) != "", errors.Is(err, client.ErrProtocol):
		return exitServer
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		return exitNetwork
	}
	return exitUsage
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// options are the flags every command shares.
type options struct {
	server     string
	token      string
	keys       []string
	tenant     string
	output     string
	serverKind string
	retries    int
	reqTries   int
	reqWithin  time.Duration
	caFile     string
	stateDir   string
	noReport   bool
	stateFile  string
	tufRoot    string
}

type app struct {
	opts   options
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:     "updatectl",
		Version: buildinfo.Version(),
		Short:   "Check for, download and verify Outpost updates; manage licence leases",
		Long: "updatectl asks an Outpost mirror or control plane for updates, downloads the\n" +
			"artifact and accepts it only when the answer, its size and sha256 match the tenant's\n" +
			"TUF metadata verified from the root you pin (--tuf-root), so a lying mirror is caught.\n\n" + exitCodesHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return usageError{err}
			}
			switch a.opts.output {
			case "text", "json":
			default:
				return usageError{fmt.Errorf("--output must be text or json, not %q", a.opts.output)}
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.opts.server, "server", "", "mirror or control plane URL, e.g. http://127.0.0.1:8441")
	pf.StringVar(&a.opts.token, "token", "", "bearer token (tenant token for the control plane, client token for a mirror)")
	pf.StringArrayVar(&a.opts.keys, "trusted-key", nil, "lease verify of a vendor-signed (online) lease: vendor public key: hex or base64 of 32 bytes, KEYID=KEY, or a file (one per line, or GET /v1/keys JSON); repeatable")
	pf.StringVar(&a.opts.tenant, "tenant", "", "tenant id whose metadata and leases are accepted")
	pf.StringVarP(&a.opts.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&a.opts.serverKind, "server-kind", "auto", "lease API of --server: auto, mirror or controlplane")
	pf.IntVar(&a.opts.retries, "retries", 3, "download: resume this many times after a dropped connection")
	pf.IntVar(&a.opts.reqTries, "request-tries", client.DefaultRequestTries, "update check and snapshot fetch: attempts in all after a network error or a 502/503/504 (1: no retry)")
	pf.DurationVar(&a.opts.reqWithin, "request-within", client.DefaultRequestWithin, "no new attempt of a check or snapshot fetch after this long since the first")
	pf.StringVar(&a.opts.stateDir, "state-dir", "", "where updatectl keeps its pseudonymous event client id (default $XDG_STATE_HOME/outpost or ~/.local/state/outpost)")
	pf.BoolVar(&a.opts.noReport, "no-report", false, "check and download: do not report the outcome to the mirror")
	pf.StringVar(&a.opts.tufRoot, "tuf-root", "", "the tenant's TUF root.json (controlplane root show TENANT): download and lease verify check through the server's /tuf/; trusted metadata is kept in STATE-DIR/tuf/TENANT across runs")
	pf.StringVar(&a.opts.caFile, "ca-file", "", "PEM CA certificate(s) the server's HTTPS certificate must chain to (pins a private CA; system roots unused)")
	pf.StringVar(&a.opts.stateFile, "state-file", defaultStateFile(), "where lease holder secrets are kept (mode 0600)")
	root.AddCommand(a.checkCmd(), a.downloadCmd(), a.leaseCmd(), a.reportCmd())
	return root
}

// applyEnv sets every flag not given on the command line from
// OUTPOST_<FLAG>; list flags take comma-separated values.
func applyEnv(fs *pflag.FlagSet) error {
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || firstErr != nil || f.Name == "help" {
			return
		}
		name := "OUTPOST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		vals := []string{v}
		if f.Value.Type() == "stringArray" {
			vals = strings.Split(v, ",")
		}
		for _, s := range vals {
			if err := fs.Set(f.Name, strings.TrimSpace(s)); err != nil {
				firstErr = fmt.Errorf("%s: %w", name, err)
				return
			}
		}
	})
	return firstErr
}

// newClient builds a client from the shared flags. needServer and
// needTrust say what the command cannot do without.
func (a *app) newClient(needServer, needTrust bool) (*client.Client, error) {
	if needServer && a.opts.server == "" {
		return nil, usageError{errors.New("--server is required (or OUTPOST_SERVER)")}
	}
	opts := []client.Option{
		client.WithToken(a.opts.token),
		client.WithUserAgent("updatectl/1"),
		client.WithTenant(a.opts.tenant),
		client.WithRetries(a.opts.retries, client.DefaultBackoff),
		client.WithRequestRetries(a.opts.reqTries, a.opts.reqWithin),
		client.WithCAFile(a.opts.caFile),
		client.WithClock(clock.Now),
	}
	if msg := clock.Warning(); msg != "" {
		fmt.Fprintln(a.stderr, "updatectl: warning:", msg)
	}
	switch a.opts.serverKind {
	case "auto":
	case "mirror":
		opts = append(opts, client.WithServerKind(client.KindMirror))
	case "controlplane":
		opts = append(opts, client.WithServerKind(client.KindControlPlane))
	default:
		return nil, usageError{fmt.Errorf("--server-kind must be auto, mirror or controlplane, not %q", a.opts.serverKind)}
	}
	if a.opts.tufRoot != "" {
		if a.opts.tenant == "" {
			return nil, usageError{errors.New("--tenant is required with --tuf-root (or OUTPOST_TENANT)")}
		}
		if strings.ContainsAny(a.opts.tenant, "/\\") || a.opts.tenant == "." || a.opts.tenant == ".." {
			return nil, usageError{fmt.Errorf("--tenant %q is not a tenant id", a.opts.tenant)}
		}
		root, err := readCapped(a.opts.tufRoot, 512<<10)
		if err != nil {
			return nil, usageError{fmt.Errorf("--tuf-root: %w", err)}
		}
		dir, err := a.stateDir()
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithTUF(a.opts.tenant, root, filepath.Join(dir, "tuf", a.opts.tenant)))
		needTrust = false
	}
	if len(a.opts.keys) > 0 {
		keys, err := client.ParseKeys(a.opts.keys)
		if err != nil {
			return nil, usageError{err}
		}
		opts = append(opts, client.WithTrustedKeys(keys))
	}
	if needTrust {
		return nil, usageError{errors.New("--tuf-root is required to verify: the tenant's root.json (controlplane root show TENANT; or OUTPOST_TUF_ROOT), with --tenant")}
	}
	c, err := client.New(a.opts.server, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
