package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fsutil"
)

func snapshotCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Build and inspect signed tenant snapshots"}
	build := &cobra.Command{
		Use:   "build",
		Short: "Build, sign and store the tenant's next snapshot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				snap, err := svc.BuildSnapshot(ctx, tenant)
				if err != nil {
					return err
				}
				return output(cmd, snap, func(w io.Writer) {
					fmt.Fprintf(w, "%s\tsequence %d\texpires %s\n", snap.SnapshotID, snap.Sequence, snap.ExpiresAt.Format(time.RFC3339))
				})
			})
		},
	}
	build.Flags().String("tenant", "", "tenant id")
	cmd.AddCommand(build)
	addClientFlags(cmd)
	return cmd
}

func bundleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bundle", Short: "Offline bundles for air-gapped mirrors"}
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the tenant's latest snapshot and its artifacts to a tar file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o := controlplane.BundleOptions{}
			o.TenantID, _ = cmd.Flags().GetString("tenant")
			o.Since, _ = cmd.Flags().GetInt64("since")
			o.MirrorID, _ = cmd.Flags().GetString("mirror")
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			if !catalog.ValidID(catalog.PrefixTenant, o.TenantID) {
				return usageError{fmt.Errorf("--tenant %q is not a tenant id", o.TenantID)}
			}
			var res *controlplane.BundleResult
			err := withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				return fsutil.WriteFrom(out, 0o644, func(f io.Writer) error {
					var err error
					res, err = svc.ExportBundle(ctx, o, f)
					return err
				})
			})
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"out": out, "sequence": res.Sequence, "artifacts": res.Artifacts}, func(w io.Writer) {
				if res.Sequence > 0 {
					fmt.Fprintf(w, "wrote %s: snapshot %d, %d artifacts\n", out, res.Sequence, res.Artifacts)
				} else {
					fmt.Fprintf(w, "wrote %s\n", out)
				}
			})
		},
	}
	export.Flags().String("tenant", "", "tenant id")
	export.Flags().String("out", "", "output file")
	export.Flags().Int64("since", 0, "leave out artifacts that snapshot SEQ already referenced")
	export.Flags().String("mirror", "", "only the artifacts of this mirror's allowed channels")
	cmd.AddCommand(export)
	addClientFlags(cmd)
	return cmd
}

func backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write a consistent copy of the catalog (works while the daemon serves, through --server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				return fsutil.WriteFrom(out, 0o600, func(f io.Writer) error {
					_, err := svc.Backup(ctx, f)
					return err
				})
			})
		},
	}
	cmd.Flags().String("out", "", "output file")
	addClientFlags(cmd)
	return cmd
}
