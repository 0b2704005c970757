package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/clock"
	"github.com/outpost/outpost/internal/mirror"
)

func leaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "Operate on the mirror's lease ledger",
	}
	cmd.AddCommand(leaseReleaseCmd())
	return cmd
}

func leaseReleaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release SUBJECT_ID --entitlement ENTITLEMENT_ID",
		Short: "Free a subject's seat without its holder secret (through the running daemon when `serve` runs)",
		Long: "release is the site operator's forced release: the machine that held the lease is gone, and\n" +
			"its holder secret with it. Clients release their own leases with the secret (DELETE\n" +
			"/v1/leases/SUBJECT over HTTP); this command needs access to the data dir or the daemon's\n" +
			"admin socket instead. The release is recorded in the audit chain as lease.released.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := mirror.ForceRelease{SubjectID: args[0]}
			f.EntitlementID, _ = cmd.Flags().GetString("entitlement")
			f.SubjectType, _ = cmd.Flags().GetString("subject-type")
			if f.EntitlementID == "" {
				return errors.New("lease release: --entitlement is required")
			}
			done := func() error {
				return output(cmd, f, func(w io.Writer) {
					fmt.Fprintf(w, "released the lease of %s on entitlement %s\n", f.SubjectID, f.EntitlementID)
				})
			}
			if d, ctx, stop, err := runningDaemon(cmd); err != nil || d != nil {
				if err != nil {
					return err
				}
				defer stop()
				if err := d.ForceRelease(ctx, f); err != nil {
					return fmt.Errorf("lease release: %w", err)
				}
				return done()
			}
			return withApp(cmd, false, func(ctx context.Context, a *app) error {
				if err := f.Do(ctx, a.leases, clock.Now()); err != nil {
					return fmt.Errorf("lease release: %w", err)
				}
				return done()
			})
		},
	}
	cmd.Flags().String("entitlement", "", "entitlement id of the lease")
	cmd.Flags().String("subject-type", "", "subject type: user, machine or device (empty: the subject's one active lease)")
	return cmd
}
