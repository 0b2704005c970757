package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/license"
)

// maxAuditFile caps an export read by `audit verify --file`.
const maxAuditFile = 1 << 30

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Export, verify and upload the mirror's hash-chained audit log",
	}
	cmd.AddCommand(auditExportCmd(), auditVerifyCmd(), auditUploadCmd())
	return cmd
}

func auditExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write the audit chain and its signed trailer as JSON lines (- for stdout)",
		Long: "export writes the whole chain in outpost-audit-v1 (docs/licensing.md), for `mirror audit\n" +
			"verify --file` and `controlplane mirror-audit import`. An air-gapped site carries one file\n" +
			"instead: `mirror report export` writes the chain after the head the vendor acknowledged\n" +
			"together with the client events, and `controlplane report import` takes both.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return errors.New("audit export: --out is required")
			}
			return withApp(cmd, false, func(ctx context.Context, a *app) error {
				led, err := a.leases.Ledger()
				if err != nil {
					return fmt.Errorf("audit export: %w", err)
				}
				if out == "-" {
					return led.ExportAudit(ctx, cmd.OutOrStdout())
				}
				var lines lineCounter
				err = fsutil.WriteFrom(out, 0o600, func(w io.Writer) error {
					return led.ExportAudit(ctx, io.MultiWriter(w, &lines))
				})
				if err != nil {
					return fmt.Errorf("audit export: %w", err)
				}
				res := map[string]any{"file": out, "events": int64(lines) - 1, "mirror_id": led.MirrorID()}
				return output(cmd, res, func(w io.Writer) {
					fmt.Fprintf(w, "exported %d events of mirror %s to %s\n", res["events"], led.MirrorID(), out)
				})
			})
		},
	}
	cmd.Flags().String("out", "", "file to write (atomically), or - for stdout")
	return cmd
}

// lineCounter counts newlines written through it.
type lineCounter int64

func (c *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			*c++
		}
	}
	return len(p), nil
}

func auditVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify [--file EXPORT]",
		Short: "Walk the audit chain (or an exported file) and name the first broken link",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			file, _ := cmd.Flags().GetString("file")
			if file != "" {
				return verifyExportFile(cmd, file)
			}
			return withApp(cmd, false, func(ctx context.Context, a *app) error {
				led, err := a.leases.Ledger()
				if err != nil {
					return fmt.Errorf("audit verify: %w", err)
				}
				n, err := a.st.VerifyAudit(ctx)
				if err != nil {
					return fmt.Errorf("audit verify: %w", err)
				}
				ast, err := a.st.AuditState(ctx)
				if err != nil {
					return fmt.Errorf("audit verify: %w", err)
				}
				// events is the chain's length; held what mirror.db still
				// stores (pruned: acknowledged and past audit_retention).
				res := map[string]any{"ok": true, "events": n, "held": n - ast.Anchor.Seq, "pruned": ast.Anchor.Seq,
					"acknowledged": ast.Acked, "mirror_id": led.MirrorID()}
				return output(cmd, res, func(w io.Writer) {
					fmt.Fprintf(w, "audit chain ok: %d events (%d held, %d pruned; acknowledged through %d)\n", n, n-ast.Anchor.Seq, ast.Anchor.Seq, ast.Acked)
				})
			})
		},
	}
	cmd.Flags().String("file", "", "verify this export (chain, count, head and the mirror's signature) instead of the data dir")
	return cmd
}

// verifyExportFile checks an export against this mirror's own key, as the
// control plane would.
func verifyExportFile(cmd *cobra.Command, file string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	key, err := loadKey(cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("audit verify: mirror key: %w", err)
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	x, err := license.ReadAuditExport(f, key.Public().(ed25519.PublicKey), maxAuditFile)
	if err != nil {
		return fmt.Errorf("audit verify %s: %w", file, err)
	}
	res := map[string]any{"ok": true, "events": x.Count, "mirror_id": x.MirrorID, "head_hash": x.HeadHash}
	return output(cmd, res, func(w io.Writer) {
		fmt.Fprintf(w, "audit export ok: %d events of mirror %s, head %s\n", x.Count, x.MirrorID, x.HeadHash)
	})
}

func auditUploadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "upload",
		Short: "Upload the audit chain to the control plane once (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, true, func(ctx context.Context, a *app) error {
				if a.cfg.Source == "none" {
					return errors.New("audit upload: this mirror has no network source (source: none): carry the chain instead, " +
						"`mirror report export --out FILE` here (the chain and the client events in one signed file), then `controlplane report import FILE` at the vendor " +
						"(or the chain alone: `mirror audit export --out FILE`, then `controlplane mirror-audit import FILE`)")
				}
				res, err := a.syncer.UploadAudit(ctx)
				if err != nil {
					return fmt.Errorf("%w%s", err, unreachableHint(err, a.cfg))
				}
				return output(cmd, res, func(w io.Writer) {
					fmt.Fprintf(w, "uploaded %d events, %d new to the control plane\n", res.Received, res.Ingested)
				})
			})
		},
	}
}
