package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/httpapi"
)

// remote reports whether a command should go through the HTTP API: with
// --server or --token given (or their env vars), it does; otherwise it
// opens the data dir itself.
func remote(cmd *cobra.Command) bool {
	s, _ := cmd.Flags().GetString("server")
	t, _ := cmd.Flags().GetString("token")
	return s != "" || t != "" || os.Getenv("OUTPOST_TOKEN") != ""
}

func snapshotCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Build and inspect signed tenant snapshots"}
	build := &cobra.Command{
		Use:   "build",
		Short: "Build, sign and store the tenant's next snapshot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			if !catalog.ValidID(catalog.PrefixTenant, tenant) {
				return fmt.Errorf("--tenant %q is not a tenant id", tenant)
			}
			var snap *catalog.Snapshot
			if remote(cmd) {
				c, err := apiClient(cmd)
				if err != nil {
					return err
				}
				snap = &catalog.Snapshot{}
				if err := c.Do(cmd.Context(), "POST", "/v1/tenants/"+tenant+"/snapshots", nil, snap); err != nil {
					return err
				}
			} else {
				err := withApp(cmd, func(ctx context.Context, a *app) error {
					var err error
					snap, err = httpapi.BuildSnapshot(ctx, a.store, a.server.Keys.Signers(), tenant, time.Now().UTC(), a.cfg.SnapshotTTL)
					return err
				})
				if err != nil {
					return err
				}
			}
			return output(cmd, snap, func(w io.Writer) {
				fmt.Fprintf(w, "%s\tsequence %d\texpires %s\n", snap.SnapshotID, snap.Sequence, snap.ExpiresAt.Format(time.RFC3339))
			})
		},
	}
	build.Flags().String("tenant", "", "tenant id")
	addClientFlags(build)
	cmd.AddCommand(build)
	return cmd
}

func bundleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bundle", Short: "Offline bundles for air-gapped mirrors"}
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the tenant's latest snapshot and its artifacts to a tar file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			out, _ := cmd.Flags().GetString("out")
			since, _ := cmd.Flags().GetInt64("since")
			mirror, _ := cmd.Flags().GetString("mirror")
			if !catalog.ValidID(catalog.PrefixTenant, tenant) {
				return fmt.Errorf("--tenant %q is not a tenant id", tenant)
			}
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			var seq int64
			var n int
			err := fsutil.WriteFrom(out, 0o644, func(f io.Writer) error {
				if remote(cmd) {
					c, err := apiClient(cmd)
					if err != nil {
						return err
					}
					q := url.Values{}
					if since > 0 {
						q.Set("since", fmt.Sprint(since))
					}
					if mirror != "" {
						q.Set("mirror_id", mirror)
					}
					return streamTo(cmd.Context(), c, "/v1/tenants/"+tenant+"/bundle?"+q.Encode(), f)
				}
				return withApp(cmd, func(ctx context.Context, a *app) error {
					snap, count, err := httpapi.ExportBundle(ctx, a.store, a.blobs, http.DefaultClient, f, httpapi.BundleOptions{TenantID: tenant, Since: since, MirrorID: mirror})
					if err == nil {
						seq, n = snap.Sequence, count
					}
					return err
				})
			})
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"out": out, "sequence": seq, "artifacts": n}, func(w io.Writer) {
				if seq > 0 {
					fmt.Fprintf(w, "wrote %s: snapshot %d, %d artifacts\n", out, seq, n)
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
	addClientFlags(export)
	cmd.AddCommand(export)
	return cmd
}

func streamTo(ctx context.Context, c *httpapi.Client, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.BaseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = jsonUnmarshal(b, &e)
		return fmt.Errorf("export bundle: %s: %s", resp.Status, e.Error.Message)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
