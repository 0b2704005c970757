package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/fsutil"
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
			return writeAtomically(out, func(f *os.File) error {
				if remote(cmd) {
					c, err := apiClient(cmd)
					if err != nil {
						return err
					}
					return streamTo(cmd.Context(), c, "/v1/admin/backup", f)
				}
				return withApp(cmd, func(ctx context.Context, a *app) error {
					_, err := a.store.Backup(ctx, f)
					return err
				})
			})
		},
	}
	cmd.Flags().String("out", "", "output file")
	addClientFlags(cmd)
	return cmd
}

// writeAtomically fills a temp file beside path and renames it into place
// only when complete.
func writeAtomically(path string, fill func(f *os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(path))
}
