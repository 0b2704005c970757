package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/client"
	"github.com/outpost/outpost/internal/progress"
)

// queryFlags binds the update-check flags to q. Platform and arch default
// to this machine's.
func queryFlags(cmd *cobra.Command, q *client.Query) {
	f := cmd.Flags()
	f.StringVar(&q.Product, "product", "", "product id (required)")
	f.StringVar(&q.Channel, "channel", "stable", "release channel")
	f.StringVar(&q.Platform, "platform", hostPlatform(), "platform: windows, linux, macos")
	f.StringVar(&q.Arch, "arch", hostArch(), "architecture: x64, arm64, ...")
	f.StringVar(&q.Version, "version", "", "the version installed now (required)")
	f.StringVar(&q.ClientID, "client-id", "", "stable id of this client, places it in rollouts")
	f.StringVar(&q.InstallerType, "installer-type", "", "only artifacts of this installer type (msi, zip, ...)")
}

func hostPlatform() string {
	if runtime.GOOS == "darwin" {
		return "macos"
	}
	return runtime.GOOS
}

func hostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x64"
	case "386":
		return "x86"
	}
	return runtime.GOARCH
}

func (a *app) checkCmd() *cobra.Command {
	var q client.Query
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Ask whether an update is available (exit 10 when one is, 0 when up to date)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.newClient(true, false)
			if err != nil {
				return err
			}
			d, err := c.Check(cmd.Context(), q)
			if err != nil {
				return err
			}
			a.autoReport(cmd.Context(), c, decisionEvent(client.EventCheck, q, d))
			if a.opts.output == "json" {
				if err := a.printJSON(d); err != nil {
					return err
				}
			} else {
				a.printDecision(d, q)
			}
			if d.UpdateAvailable {
				return exitError{exitUpdate}
			}
			return nil
		},
	}
	queryFlags(cmd, &q)
	return cmd
}

func (a *app) printDecision(d *client.Decision, q client.Query) {
	if !d.UpdateAvailable {
		fmt.Fprintln(a.stdout, notOffered(d, q))
		return
	}
	r, art := d.Release, d.Artifact
	fmt.Fprintf(a.stdout, "update available: %s %s (%s), action %s\n", r.ProductID, r.Version, r.Channel, d.Action)
	fmt.Fprintf(a.stdout, "  release   %s published %s\n", r.ReleaseID, r.PublishedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(a.stdout, "  artifact  %s %s, %d bytes, sha256 %s\n", art.ArtifactID, art.InstallerType, art.SizeBytes, art.SHA256)
	if art.RequiresAdmin {
		fmt.Fprintln(a.stdout, "  requires administrator rights to install")
	}
	fmt.Fprintf(a.stdout, "  snapshot  %s (sequence %d)\n", d.Snapshot.SnapshotID, d.Snapshot.Sequence)
}

func (a *app) downloadCmd() *cobra.Command {
	var q client.Query
	var out, installed string
	cmd := &cobra.Command{
		Use:   "download",
		Short: "Check, then download the offered artifact and verify it against the tenant's TUF metadata",
		Long: "download checks for an update and, when one is offered, downloads its artifact into\n" +
			"--out (a file, or a directory for the default name), resuming a partial download\n" +
			"(OUT.part). It reports success only once the tenant's TUF metadata, refreshed from the\n" +
			"server's /tuf/ from --tuf-root and --tenant, binds the answer to the query and the\n" +
			"installed version, the release is ACTIVE in it and the bytes match the signed target's\n" +
			"length and sha256. Prints the file's path on stdout. Exit 0 also when up to date.\n" +
			"With --installed FILE (the artifact installed now) it asks for a delta from that file and,\n" +
			"when a signed one is offered, downloads only the delta, rebuilds the new artifact from FILE\n" +
			"and verifies it against the signed sha256; any failure falls back to the full download.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.newClient(true, true)
			if err != nil {
				return err
			}
			if installed != "" {
				if q.InstalledSHA256, err = client.InstalledFile(installed); err != nil {
					return usageError{fmt.Errorf("--installed: %w", err)}
				}
			}
			d, err := c.Check(cmd.Context(), q)
			if err != nil {
				return err
			}
			a.autoReport(cmd.Context(), c, decisionEvent(client.EventCheck, q, d))
			if !d.UpdateAvailable {
				if a.opts.output == "json" {
					return a.printJSON(map[string]any{"decision": d})
				}
				fmt.Fprintln(a.stderr, notOffered(d, q)+"; nothing to download")
				return nil
			}
			dest, named, err := destination(out, q, d)
			if err != nil {
				return usageError{err}
			}
			var bar *progressBar
			if progress.IsTerminal(a.stderr) {
				bar = newProgressBar(a.stderr, filepath.Base(dest))
			}
			var onBytes func(int64, int64)
			if bar != nil {
				onBytes = bar.update
			}
			started := time.Now()
			res, err := c.DownloadFrom(cmd.Context(), d, dest, installed, onBytes)
			if bar != nil {
				bar.finish()
			}
			if res.Fallback != "" {
				fmt.Fprintf(a.stderr, "delta not used (%s); downloaded the full artifact\n", res.Fallback)
			}
			ev := decisionEvent(client.EventDownloadOK, q, d)
			ev.DurationMS = time.Since(started).Milliseconds()
			if err != nil {
				ev.Type, ev.ErrorCode = client.EventDownloadFailed, downloadErrorCode(err)
			}
			a.autoReport(cmd.Context(), c, ev)
			if err != nil {
				return err
			}
			if named {
				// Into a directory: the file is named after the product as
				// the verified snapshot calls it (its id when unknown).
				final := filepath.Join(filepath.Dir(dest), fileName(d.ProductName(), q, d))
				if err := os.Rename(dest, final); err != nil {
					return fmt.Errorf("download: %w", err)
				}
				dest = final
			}
			if a.opts.output == "json" {
				return a.printJSON(map[string]any{"decision": d, "path": dest, "verified": true,
					"delta_used": res.Used, "transferred_bytes": res.Transferred})
			}
			if res.Used {
				fmt.Fprintf(a.stderr, "rebuilt from a delta: %d bytes transferred for a %d-byte artifact\n", res.Transferred, d.Artifact.SizeBytes)
			}
			fmt.Fprintln(a.stdout, dest)
			return nil
		},
	}
	queryFlags(cmd, &q)
	cmd.Flags().StringVar(&out, "out", ".", "file to write, or an existing directory for PRODUCT-VERSION-PLATFORM-ARCH.TYPE")
	cmd.Flags().StringVar(&installed, "installed", "", "the artifact installed now: download a signed delta from it when one is offered")
	return cmd
}

// destination picks the output path: out itself, or, when out is a
// directory, a working name there (named true) that the caller renames
// to fileName once the download is verified. The working name is the
// same on every attempt, so a partial download resumes.
func destination(out string, q client.Query, d *client.Decision) (dest string, named bool, err error) {
	if out == "" {
		out = "."
	}
	fi, err := os.Stat(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("--out: %w", err)
	}
	if err != nil {
		// A file to create: its directory must exist.
		dir := filepath.Dir(out)
		if strings.HasSuffix(out, "/") || strings.HasSuffix(out, string(filepath.Separator)) {
			dir = out
		}
		if di, derr := os.Stat(dir); derr != nil || !di.IsDir() {
			return "", false, fmt.Errorf("--out %s: directory %s does not exist; create it first (mkdir -p %s) or choose another --out", out, dir, dir)
		}
		return out, false, nil
	}
	if !fi.IsDir() {
		return out, false, nil
	}
	return filepath.Join(out, "."+fileName("", q, d)+".download"), true, nil
}

// fileName is PRODUCT-VERSION-PLATFORM-ARCH.TYPE, PRODUCT the product's
// name when known, else its id; safe as one path element.
func fileName(product string, q client.Query, d *client.Decision) string {
	if product == "" {
		product = q.Product
	}
	name := fmt.Sprintf("%s-%s-%s-%s", product, d.Release.Version, q.Platform, q.Arch)
	if t := d.Artifact.InstallerType; t != "" {
		name += "." + t
	}
	return safeName(name)
}

// safeName keeps server-influenced file names inside the directory.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '+':
			return r
		}
		return '_'
	}, s)
	return strings.TrimLeft(s, ".")
}

func (a *app) leaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "Acquire, release or verify a licence lease",
	}
	var req client.LeaseRequest
	acquire := &cobra.Command{
		Use:   "acquire",
		Short: "Take (or renew) a seat; prints the lease token on stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.newClient(true, false)
			if err != nil {
				return err
			}
			st, err := readLeaseState(a.opts.stateFile)
			if err != nil {
				return err
			}
			k := leaseKey(a.opts.server, req.EntitlementID, req.SubjectType, req.SubjectID)
			req.HolderSecret = st.Leases[k].HolderSecret
			l, err := c.AcquireLease(cmd.Context(), req)
			if err != nil {
				return err
			}
			if l.HolderSecret != "" {
				st.Leases[k] = heldLease{LeaseID: l.LeaseID, HolderSecret: l.HolderSecret}
				if err := st.write(a.opts.stateFile); err != nil {
					return err
				}
			}
			if a.opts.output == "json" {
				return a.printJSON(l)
			}
			fmt.Fprintln(a.stdout, l.Token)
			fmt.Fprintf(a.stderr, "lease %s expires %s\n", l.LeaseID, l.ExpiresAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	acquire.Flags().StringVar(&req.EntitlementID, "entitlement", "", "entitlement id (required)")
	acquire.Flags().StringVar(&req.SubjectType, "subject-type", "machine", "user, machine or device")
	acquire.Flags().StringVar(&req.SubjectID, "subject-id", "", "who takes the seat (required)")

	var ref client.LeaseRef
	release := &cobra.Command{
		Use:   "release",
		Short: "Give a seat back (--lease-id on the control plane; --entitlement and --subject-id on a mirror)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.newClient(true, false)
			if err != nil {
				return err
			}
			st, err := readLeaseState(a.opts.stateFile)
			if err != nil {
				return err
			}
			k := ""
			for key, h := range st.Leases {
				if (ref.LeaseID != "" && h.LeaseID == ref.LeaseID) || key == leaseKey(a.opts.server, ref.EntitlementID, ref.SubjectType, ref.SubjectID) {
					k, ref.HolderSecret = key, h.HolderSecret
					break
				}
			}
			if k == "" && ref.SubjectType == "" {
				// A mirror release may leave the type out: take the one
				// held lease of the subject.
				for _, typ := range []string{"user", "machine", "device"} {
					if h, ok := st.Leases[leaseKey(a.opts.server, ref.EntitlementID, typ, ref.SubjectID)]; ok {
						k, ref.HolderSecret = leaseKey(a.opts.server, ref.EntitlementID, typ, ref.SubjectID), h.HolderSecret
						break
					}
				}
			}
			if err := c.ReleaseLease(cmd.Context(), ref); err != nil {
				return err
			}
			if k != "" {
				delete(st.Leases, k)
				if err := st.write(a.opts.stateFile); err != nil {
					return err
				}
			}
			if a.opts.output == "json" {
				return a.printJSON(map[string]any{"released": true})
			}
			fmt.Fprintln(a.stderr, "released")
			return nil
		},
	}
	release.Flags().StringVar(&ref.LeaseID, "lease-id", "", "lease id (control plane)")
	release.Flags().StringVar(&ref.EntitlementID, "entitlement", "", "entitlement id (mirror)")
	release.Flags().StringVar(&ref.SubjectID, "subject-id", "", "subject id (mirror)")
	release.Flags().StringVar(&ref.SubjectType, "subject-type", "", "subject type (mirror; needed only when the subject holds leases as several types)")

	verify := &cobra.Command{
		Use:   "verify TOKEN|-",
		Short: "Verify a lease token against the tenant's trust (exit 3 when rejected)",
		Long: "verify checks a lease token's signature, tenant and expiry. With --tuf-root, --tenant and\n" +
			"--server the chain starts at the tenant's root: root -> TUF metadata (refreshed from the\n" +
			"mirror's /tuf/, or the tenant's repository on the control plane) -> the mirror key, or for a\n" +
			"vendor-signed (online) token the vendor key the metadata names for leases -> token. A vendor\n" +
			"token is checked offline against --trusted-key instead when one is given. TOKEN - reads stdin.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := args[0]
			if token == "-" {
				b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<20))
				if err != nil {
					return fmt.Errorf("read token: %w", err)
				}
				token = strings.TrimSpace(string(b))
			}
			if a.opts.tufRoot == "" && len(a.opts.keys) == 0 {
				return usageError{errors.New("--tuf-root (with --server) or --trusted-key (a vendor-signed lease, offline) is required to verify, with --tenant")}
			}
			c, err := a.newClient(false, false)
			if err != nil {
				return err
			}
			cl, err := c.VerifyLease(cmd.Context(), token)
			if err != nil {
				return err
			}
			if a.opts.output == "json" {
				return a.printJSON(cl)
			}
			fmt.Fprintf(a.stdout, "valid lease %s for %s %s\n", cl.LeaseID, cl.SubjectType, cl.SubjectID)
			fmt.Fprintf(a.stdout, "  entitlement %s, product %s, tenant %s\n", cl.EntitlementID, cl.ProductID, cl.TenantID)
			fmt.Fprintf(a.stdout, "  issued by %s (key %s)\n", cl.Issuer, cl.KeyID)
			fmt.Fprintf(a.stdout, "  expires %s, usable until %s\n", cl.ExpiresAt.Format(time.RFC3339), cl.UsableUntil.Format(time.RFC3339))
			if len(cl.Features) > 0 {
				fmt.Fprintf(a.stdout, "  features %s\n", strings.Join(cl.Features, ", "))
			}
			return nil
		},
	}

	cmd.AddCommand(acquire, release, verify)
	return cmd
}

func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// notOffered says why no update was offered.
func notOffered(d *client.Decision, q client.Query) string {
	switch {
	case d.Reason == client.ReasonNotInRollout && q.ClientID == "":
		return "no update yet: a newer release is rolling out to a share of clients, and a client without --client-id is in none"
	case d.Reason == client.ReasonNotInRollout:
		return "no update yet: a newer release is rolling out to a share of clients that does not include this one (--client-id " + q.ClientID + ")"
	case d.Reason != "":
		return "up to date: " + d.Reason
	}
	return "up to date"
}
