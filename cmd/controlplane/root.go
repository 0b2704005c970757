package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/tufkeys"
)

// rootCmd manages the TUF keys and each tenant's root (docs/metadata.md,
// "The control plane"). Like `keys`, it works on the data dir, never over
// the API; `root sign` needs no control plane at all.
func rootCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "root", Short: "TUF keys and root ceremonies (offline root keys, rotation)"}

	initC := &cobra.Command{
		Use:   "init",
		Short: "Create the root keys (threshold of n) and the online timestamp, snapshot, targets and product keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			threshold, _ := cmd.Flags().GetInt("threshold")
			n, _ := cmd.Flags().GetInt("keys")
			out, _ := cmd.Flags().GetString("out")
			if n > 1 && out == "" {
				return usageError(errors.New("--keys above 1 needs --out DIR: root keys are kept offline"))
			}
			files, err := controlplaned.TUFDir(cfg.KeysDir).Init(threshold, n, out)
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"threshold": threshold, "root_key_files": files}, func(w io.Writer) {
				if out == "" {
					fmt.Fprintf(w, "root: %d of %d key(s), kept online in %s\n", threshold, n, controlplaned.TUFDir(cfg.KeysDir))
					return
				}
				fmt.Fprintf(w, "root: %d of %d keys; move these files off this machine, one per key holder:\n", threshold, n)
				for _, f := range files {
					fmt.Fprintln(w, "  "+f)
				}
			})
		},
	}
	initC.Flags().Int("threshold", 1, "root signatures required")
	initC.Flags().Int("keys", 1, "root keys to create")
	initC.Flags().String("out", "", "directory for the root key files (offline root); empty keeps a 1-of-1 root online")

	export := &cobra.Command{
		Use:   "export",
		Short: "Write every tenant's next root, unsigned, for a signing ceremony",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, _ := cmd.Flags().GetString("out")
			return withApp(cmd, func(ctx context.Context, a *controlplane.App) error {
				c, err := a.ExportRoots(ctx)
				if err != nil {
					return err
				}
				if err := writeCeremony(out, c); err != nil {
					return err
				}
				return output(cmd, map[string]int{"roots": len(c.Roots)}, func(w io.Writer) {
					fmt.Fprintf(w, "%d root(s) written to %s: sign with `controlplane root sign --key FILE %s` on each key holder's machine\n", len(c.Roots), out, out)
				})
			})
		},
	}
	export.Flags().String("out", "unsigned.json", "ceremony file to write")

	sign := &cobra.Command{
		Use:   "sign --key FILE CEREMONY.json",
		Short: "Sign a ceremony file with one root key (runs anywhere, no control plane needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keyFile, _ := cmd.Flags().GetString("key")
			out, _ := cmd.Flags().GetString("out")
			if keyFile == "" {
				return usageError(errors.New("--key is required"))
			}
			if out == "" {
				out = args[0]
			}
			k, err := keyring.LoadFile(keyFile)
			if err != nil {
				return err
			}
			s, err := tufkeys.Signer(k)
			if err != nil {
				return err
			}
			c, err := readCeremony(args[0])
			if err != nil {
				return err
			}
			if err := controlplane.SignRoots(cmd.Context(), c, s); err != nil {
				return err
			}
			if err := writeCeremony(out, c); err != nil {
				return err
			}
			return output(cmd, map[string]any{"roots": len(c.Roots), "key_id": s.KeyID()}, func(w io.Writer) {
				fmt.Fprintf(w, "signed %d root(s) with key %s into %s\n", len(c.Roots), s.KeyID(), out)
			})
		},
	}
	sign.Flags().String("key", "", "root key file")
	sign.Flags().String("out", "", "file to write (default: the ceremony file, in place)")

	imp := &cobra.Command{
		Use:   "import SIGNED.json",
		Short: "Publish the signed roots once each has a threshold of root signatures",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := readCeremony(args[0])
			if err != nil {
				return err
			}
			return withApp(cmd, func(ctx context.Context, a *controlplane.App) error {
				n, err := a.ImportRoots(ctx, c)
				if err != nil {
					return err
				}
				// Old online root keys a rekey replaced are no longer needed.
				cfg, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				if _, err := controlplaned.TUFDir(cfg.KeysDir).DropStaleRootKeys(); err != nil {
					return err
				}
				return output(cmd, map[string]int{"published": n}, func(w io.Writer) { fmt.Fprintf(w, "published %d root(s)\n", n) })
			})
		},
	}

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Publish every tenant's next root with the current keys (--replace a compromised online key first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			replace, _ := cmd.Flags().GetStringSlice("replace")
			for _, role := range replace {
				if err := controlplaned.TUFDir(cfg.KeysDir).Replace(role); err != nil {
					return err
				}
			}
			return withApp(cmd, func(ctx context.Context, a *controlplane.App) error {
				n, err := a.RotateRoots(ctx)
				if errors.Is(err, controlplane.ErrOfflineRoot) {
					fmt.Fprintln(cmd.ErrOrStderr(), "The root keys are offline. Run the ceremony:\n"+
						"  controlplane root export --out unsigned.json\n"+
						"  controlplane root sign --key ROOT_KEY_FILE unsigned.json   (on each key holder's machine, up to the threshold)\n"+
						"  controlplane root import unsigned.json")
				}
				if err != nil {
					return err
				}
				return output(cmd, map[string]int{"rotated": n}, func(w io.Writer) { fmt.Fprintf(w, "published the next root of %d tenant(s)\n", n) })
			})
		},
	}
	rotate.Flags().StringSlice("replace", nil, "online roles whose key to replace first: timestamp, snapshot, targets, product")

	// show works on the data dir or, while the daemon serves (bbolt is
	// locked), through the API: the command's one Service either way.
	show := leaf("show TENANT_ID", "Print a tenant's newest root.json (what its mirrors and clients are initialised with: mirror init --root-file, updatectl --tuf-root)",
		cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
			b, err := svc.TUFRoot(ctx, args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		})

	ttl := &cobra.Command{
		Use:   "timestamp-ttl TENANT_ID DURATION",
		Short: "Set a tenant's timestamp lifetime (short online; longer than the bundle cadence when air-gapped)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := time.ParseDuration(args[1])
			if err != nil {
				return usageError(fmt.Errorf("duration: %w", err))
			}
			return withApp(cmd, func(ctx context.Context, a *controlplane.App) error {
				return a.SetTUFTimestampTTL(ctx, args[0], d)
			})
		},
	}
	rekey := &cobra.Command{
		Use:   "rekey",
		Short: "Replace the root keys (e.g. take a quickstart's online root offline); then run the ceremony",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			threshold, _ := cmd.Flags().GetInt("threshold")
			n, _ := cmd.Flags().GetInt("keys")
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return usageError(errors.New("--out DIR is required: new root keys are kept offline"))
			}
			files, err := controlplaned.TUFDir(cfg.KeysDir).Rekey(threshold, n, out)
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"threshold": threshold, "root_key_files": files}, func(w io.Writer) {
				fmt.Fprintf(w, "new root: %d of %d keys; move these files off this machine:\n", threshold, n)
				for _, f := range files {
					fmt.Fprintln(w, "  "+f)
				}
				fmt.Fprintln(w, "then: root export, root sign with the new keys, root import")
			})
		},
	}
	rekey.Flags().Int("threshold", 2, "root signatures required")
	rekey.Flags().Int("keys", 3, "root keys to create")
	rekey.Flags().String("out", "", "directory for the new root key files")
	addClientFlags(show)
	cmd.AddCommand(initC, export, sign, imp, rotate, show, ttl, rekey)
	syncKeyCommands(cmd)
	return cmd
}

func readCeremony(path string) (*controlplane.RootCeremony, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var c controlplane.RootCeremony
	if err := json.NewDecoder(io.LimitReader(f, 256<<20)).Decode(&c); err != nil {
		return nil, fmt.Errorf("read ceremony file %s: %w", path, err)
	}
	return &c, nil
}

func writeCeremony(path string, c *controlplane.RootCeremony) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(path, append(b, '\n'), 0o644)
}
