package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/progress"
	"github.com/outpost/outpost/internal/store"
)

func snapshotCmd() *cobra.Command {
	build := leaf("build", "Build, sign and store the tenant's next snapshot", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return printed(cmd, func(s *catalog.Snapshot) string {
			return fmt.Sprintf("%s\tsequence %d\texpires %s", s.SnapshotID, s.Sequence, s.ExpiresAt.Format(time.RFC3339))
		})(svc.BuildSnapshot(ctx, str(cmd, "tenant")))
	})
	build.Flags().String("tenant", "", "tenant id")
	list := leaf("list", "List a tenant's snapshots", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		snaps := func(ctx context.Context, pg store.Page) ([]*catalog.Snapshot, string, error) {
			return svc.Snapshots(ctx, str(cmd, "tenant"), pg)
		}
		return listed(cmd, "SNAPSHOT\tSEQUENCE\tCREATED\tEXPIRES\tSHA256", func(s *catalog.Snapshot) []any {
			return []any{s.SnapshotID, s.Sequence, s.CreatedAt.Format(time.RFC3339), s.ExpiresAt.Format(time.RFC3339), s.Hash}
		})(store.All(ctx, snaps))
	})
	list.Flags().String("tenant", "", "tenant id")
	show := leaf("show SNAPSHOT_ID", "Show a snapshot build record (with --envelope, the view it recorded, as stored; unsigned: sites verify the tenant's TUF repository)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		s, err := svc.Snapshot(ctx, args[0])
		if err != nil {
			return err
		}
		if env, _ := cmd.Flags().GetBool("envelope"); env {
			_, err := cmd.OutOrStdout().Write(append(s.Envelope, '\n'))
			return err
		}
		return output(cmd, s, func(w io.Writer) {
			fmt.Fprintf(w, "snapshot: %s\ntenant:   %s\nsequence: %d\ncreated:  %s\nexpires:  %s\nsha256:   %s\n",
				s.SnapshotID, s.TenantID, s.Sequence, s.CreatedAt.Format(time.RFC3339), s.ExpiresAt.Format(time.RFC3339), s.Hash)
		})
	})
	show.Flags().Bool("envelope", false, "print the stored build record (JSON) instead")
	return group("snapshot", "Build and inspect signed tenant snapshots", build, list, show)
}

// bundleView is what `bundle export` prints as JSON.
type bundleView struct {
	Out string `json:"out"`
	*controlplane.BundleResult
}

func bundleCmd() *cobra.Command {
	export := leaf("export", "Write what a mirror lacks of the tenant's TUF repository and its artifacts to a tar file", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		since, _ := cmd.Flags().GetInt64("since")
		if f := str(cmd, "format"); f != "" && f != controlplane.BundleTUF {
			return usageError(fmt.Errorf("--format %s: bundles are TUF only (schema 1 is no longer exported: re-initialise a schema 1 mirror with the tenant's root, mirror init --root-file ROOT --force)", f))
		}
		noDeltas, _ := cmd.Flags().GetBool("no-deltas")
		o := controlplane.BundleOptions{TenantID: str(cmd, "tenant"), Since: since, MirrorID: str(cmd, "mirror"), Format: str(cmd, "format"), NoDeltas: noDeltas}
		out := str(cmd, "out")
		if out == "" {
			return usageError(fmt.Errorf("--out is required"))
		}
		var res *controlplane.BundleResult
		meter := progress.New(cmd.ErrOrStderr(), "bundle export", -1, progress.Options{})
		err := fsutil.WriteFrom(out, 0o644, func(f io.Writer) error {
			var err error
			res, err = svc.ExportBundle(ctx, o, meter.Writer(f))
			return err
		})
		meter.Finish()
		if err == nil && res != nil && res.SizeBytes == 0 { // a server that sends no result trailer
			if fi, serr := os.Stat(out); serr == nil {
				res.SizeBytes = fi.Size()
			}
		}
		return printed(cmd, func(v bundleView) string {
			if v.Sequence == 0 { // a server that sends no result trailer: the stream says its format
				kind := ""
				if v.Format == controlplane.BundleTUF {
					kind = ": a TUF bundle"
				}
				return fmt.Sprintf("wrote %s (%d bytes)%s", v.Out, v.SizeBytes, kind)
			}
			line := fmt.Sprintf("wrote %s (%d bytes): TUF snapshot version %d, %d repository files, %d artifacts", v.Out, v.SizeBytes, v.Sequence, v.Files, v.Artifacts)
			if v.Deltas > 0 {
				line += fmt.Sprintf("\n%d as deltas: %d bytes instead of %d; deltas saved %d bytes (%.2f%% of the bundle without deltas)",
					v.Deltas, v.DeltaBytes, v.ReplacedBytes, v.SavedBytes, v.SavedPercent)
			}
			return line
		})(bundleView{out, res}, err)
	})
	export.Flags().String("tenant", "", "tenant id")
	export.Flags().String("out", "", "output file")
	export.Flags().Int64("since", 0, "leave out what the mirror at this sequence (mirror status: the TUF snapshot version it holds) already has: its repository files and artifacts")
	export.Flags().String("format", "", "bundle format: tuf, the only one (kept for scripts; anything else is refused)")
	export.Flags().String("mirror", "", "only the artifacts of this mirror's allowed channels, and the vendor's signed acknowledgement of its return files (the mirror's next return file starts after it)")
	export.Flags().Bool("no-deltas", false, "carry every artifact whole (by default, with --since, an artifact whose base the mirror holds travels as a signed delta)")
	return group("bundle", "Offline bundles for air-gapped mirrors", export)
}

func backupCmd() *cobra.Command {
	cmd := leaf("backup", "Write a consistent copy of the catalog (works while the daemon serves, through --server)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		out := str(cmd, "out")
		if out == "" {
			return usageError(fmt.Errorf("--out is required"))
		}
		var n int64
		meter := progress.New(cmd.ErrOrStderr(), "backup", -1, progress.Options{})
		err := fsutil.WriteFrom(out, 0o600, func(f io.Writer) error {
			var err error
			n, err = svc.Backup(ctx, meter.Writer(f))
			return err
		})
		meter.Finish()
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "wrote the catalog to %s (%d bytes)\n", out, n)
		fmt.Fprintln(w, "A restore also needs, copied beside it (README, Backups): the keys directory,")
		fmt.Fprintln(w, "the data-encryption key file, and the artifact bytes (blob.dir, or the S3 bucket).")
		return nil
	})
	cmd.Flags().String("out", "", "output file")
	addClientFlags(cmd)
	return cmd
}
