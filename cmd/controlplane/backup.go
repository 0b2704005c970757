package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/httpapi"
)

func backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write a consistent copy of the catalog (works while the daemon serves, through --server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			return fsutil.WriteFrom(out, 0o600, func(f io.Writer) error {
				if remote(cmd) {
					c, err := apiClient(cmd)
					if err != nil {
						return err
					}
					return streamTo(cmd.Context(), c, "/v1/admin/backup", f)
				}
				return withApp(cmd, func(ctx context.Context, a *app) error {
					b, ok := a.store.(httpapi.Backuper)
					if !ok {
						return fmt.Errorf("backup: the %s store has no online backup (use its own tools, e.g. pg_dump)", a.cfg.Store)
					}
					_, err := b.Backup(ctx, f)
					return err
				})
			})
		},
	}
	cmd.Flags().String("out", "", "output file")
	addClientFlags(cmd)
	return cmd
}
