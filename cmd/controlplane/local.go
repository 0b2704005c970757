package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/keyring"
)

// withApp opens the data dir for a one-shot command. bbolt fails at once
// if the daemon holds it.
func withApp(cmd *cobra.Command, fn func(ctx context.Context, a *app) error) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	a, err := openApp(cmd.Context(), cfg, newLogger(cfg, cmd.ErrOrStderr()), false)
	if err != nil {
		return err
	}
	defer a.Close()
	ctx := catalog.WithActor(cmd.Context(), catalog.Actor{Type: catalog.ActorUser, ID: "cli"})
	return fn(ctx, a)
}

func tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an admin or tenant token and print it (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			role, _ := cmd.Flags().GetString("role")
			tenant, _ := cmd.Flags().GetString("tenant")
			name, _ := cmd.Flags().GetString("name")
			if remote(cmd) {
				c, err := apiClient(cmd)
				if err != nil {
					return err
				}
				var t struct {
					catalog.Token
					Secret string `json:"token"`
				}
				if err := c.Do(cmd.Context(), "POST", "/v1/tokens", map[string]any{"role": role, "tenant_id": tenant, "name": name}, &t); err != nil {
					return err
				}
				return output(cmd, map[string]any{"token": t.Secret, "token_id": t.TokenID, "role": t.Role, "tenant_id": t.TenantID}, func(w io.Writer) {
					fmt.Fprintln(w, t.Secret)
				})
			}
			return withApp(cmd, func(ctx context.Context, a *app) error {
				secret, t, err := httpapi.IssueToken(ctx, a.store, role, tenant, name, time.Now().UTC())
				if err != nil {
					return err
				}
				return output(cmd, map[string]any{"token": secret, "token_id": t.TokenID, "role": t.Role, "tenant_id": t.TenantID}, func(w io.Writer) {
					fmt.Fprintln(w, secret)
				})
			})
		},
	}
	create.Flags().String("role", "", "admin or tenant")
	create.Flags().String("tenant", "", "tenant id (tenant tokens)")
	create.Flags().String("name", "", "a label for the token")
	addClientFlags(create)
	cmd.AddCommand(create)
	return cmd
}

func keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage snapshot signing keys"}
	keysDir := func(cmd *cobra.Command) (string, error) {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return "", err
		}
		return cfg.KeysDir, nil
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Generate a new active signing key (keys rotate by overlap: retire the old one later)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			k, err := keyring.Generate(dir)
			if err != nil {
				return err
			}
			return output(cmd, keyView(k), func(w io.Writer) { fmt.Fprintln(w, k.KeyID) })
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List signing keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			keys, err := keyring.Load(dir)
			if err != nil {
				return err
			}
			views := make([]httpapi.PublicKey, 0, len(keys))
			for _, k := range keys {
				views = append(views, keyView(k))
			}
			return output(cmd, map[string]any{"items": views}, func(w io.Writer) {
				for _, v := range views {
					fmt.Fprintf(w, "%s  %-7s  %s  %s\n", v.KeyID, v.Status, v.CreatedAt.Format(time.RFC3339), b64(v.PublicKey))
				}
			})
		},
	}, &cobra.Command{
		Use:   "retire KEY_ID",
		Short: "Stop signing with a key (it stays listed so mirrors can be told)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(cmd)
			if err != nil {
				return err
			}
			return keyring.Retire(dir, args[0])
		},
	})
	return cmd
}

func keyView(k *keyring.Key) httpapi.PublicKey {
	return httpapi.PublicKey{KeyID: k.KeyID, PublicKey: k.Public, Status: k.Status, CreatedAt: k.CreatedAt}
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Inspect the audit log"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain and name the first broken link",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd, func(ctx context.Context, a *app) error {
				var v audit.Verifier
				err := a.store.WalkAudit(ctx, v.Next)
				var broken *audit.BrokenLinkError
				if errors.As(err, &broken) {
					_ = output(cmd, map[string]any{"ok": false, "verified": v.Count(), "broken_seq": broken.Seq, "broken_event_id": broken.EventID, "reason": broken.Reason}, func(io.Writer) {})
					return broken
				}
				if err != nil {
					return err
				}
				head := ""
				if h := v.Head(); h != nil {
					head = h.Hash
				}
				return output(cmd, map[string]any{"ok": true, "verified": v.Count(), "head_hash": head}, func(w io.Writer) {
					fmt.Fprintf(w, "audit chain ok: %d events, head %s\n", v.Count(), head)
				})
			})
		},
	})
	return cmd
}
