package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/httpapi"
)

// Admin commands talk to a running control plane over HTTP:
// --server (OUTPOST_SERVER) and --token (OUTPOST_TOKEN).

func apiClient(cmd *cobra.Command) (*httpapi.Client, error) {
	server, _ := cmd.Flags().GetString("server")
	token, _ := cmd.Flags().GetString("token")
	if server == "" {
		server = os.Getenv("OUTPOST_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8440"
	}
	if token == "" {
		token = os.Getenv("OUTPOST_TOKEN")
	}
	if token == "" {
		return nil, errors.New("no token: pass --token or set OUTPOST_TOKEN")
	}
	return &httpapi.Client{BaseURL: server, Token: token}, nil
}

func addClientFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().String("server", "", "control plane URL (env OUTPOST_SERVER, default http://127.0.0.1:8440)")
	cmd.PersistentFlags().String("token", "", "admin token (env OUTPOST_TOKEN)")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func metadataFlag(cmd *cobra.Command) (json.RawMessage, error) {
	s, _ := cmd.Flags().GetString("metadata")
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, errors.New("--metadata must be a JSON object")
	}
	return json.RawMessage(s), nil
}

func table(w io.Writer, header string, rows [][]any) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func adminCmds() []*cobra.Command {
	tenant := &cobra.Command{Use: "tenant", Short: "Manage tenants (over the HTTP API)"}
	tcreate := &cobra.Command{
		Use: "create NAME", Short: "Create a tenant and print its id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			md, err := metadataFlag(cmd)
			if err != nil {
				return err
			}
			var t catalog.Tenant
			if err := c.Do(cmd.Context(), "POST", "/v1/tenants", map[string]any{"name": args[0], "metadata": md}, &t); err != nil {
				return err
			}
			return output(cmd, t, func(w io.Writer) { fmt.Fprintln(w, t.TenantID) })
		},
	}
	tcreate.Flags().String("metadata", "", "JSON object")
	tlist := &cobra.Command{
		Use: "list", Short: "List tenants", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			items, err := listAll[catalog.Tenant](cmd, c, "/v1/tenants")
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"items": items}, func(w io.Writer) {
				var rows [][]any
				for _, t := range items {
					rows = append(rows, []any{t.TenantID, t.Status, t.Name})
				}
				table(w, "TENANT\tSTATUS\tNAME", rows)
			})
		},
	}
	tenant.AddCommand(tcreate, tlist)

	product := &cobra.Command{Use: "product", Short: "Manage products (over the HTTP API)"}
	pcreate := &cobra.Command{
		Use: "create NAME", Short: "Create a product and print its id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			md, err := metadataFlag(cmd)
			if err != nil {
				return err
			}
			dist, _ := cmd.Flags().GetString("distribution")
			var p catalog.Product
			if err := c.Do(cmd.Context(), "POST", "/v1/products", map[string]any{"name": args[0], "distribution": dist, "metadata": md}, &p); err != nil {
				return err
			}
			return output(cmd, p, func(w io.Writer) { fmt.Fprintln(w, p.ProductID) })
		},
	}
	pcreate.Flags().String("distribution", "licensed", "licensed or open")
	pcreate.Flags().String("metadata", "", "JSON object")
	plist := &cobra.Command{
		Use: "list", Short: "List products", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			items, err := listAll[catalog.Product](cmd, c, "/v1/products")
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"items": items}, func(w io.Writer) {
				var rows [][]any
				for _, p := range items {
					rows = append(rows, []any{p.ProductID, p.Distribution, p.Name})
				}
				table(w, "PRODUCT\tDISTRIBUTION\tNAME", rows)
			})
		},
	}
	product.AddCommand(pcreate, plist)

	artifact := &cobra.Command{Use: "artifact", Short: "Manage artifacts (over the HTTP API)"}
	upload := &cobra.Command{
		Use: "upload FILE", Short: "Upload a file as a MANAGED artifact (streamed; its sha256 is checked by the server)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			a, err := uploadFile(cmd, c, args[0])
			if err != nil {
				return err
			}
			return output(cmd, a, func(w io.Writer) { fmt.Fprintln(w, a.ArtifactID) })
		},
	}
	external := &cobra.Command{
		Use: "external URL", Short: "Record an EXTERNAL artifact and verify it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			sha, _ := cmd.Flags().GetString("sha256")
			size, _ := cmd.Flags().GetInt64("size")
			var a catalog.Artifact
			if err := c.Do(cmd.Context(), "POST", "/v1/artifacts", map[string]any{"external_url": args[0], "sha256": sha, "size_bytes": size}, &a); err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), "POST", "/v1/artifacts/"+a.ArtifactID+"/verify", nil, &a); err != nil {
				return err
			}
			return output(cmd, a, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\n", a.ArtifactID, a.Status) })
		},
	}
	external.Flags().String("sha256", "", "declared sha256 (hex)")
	external.Flags().Int64("size", 0, "declared size in bytes")
	artifact.AddCommand(upload, external)

	release := &cobra.Command{Use: "release", Short: "Manage releases (over the HTTP API)"}
	rcreate := &cobra.Command{
		Use: "create", Short: "Create a release (optionally uploading and attaching a file)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			product, _ := cmd.Flags().GetString("product")
			channel, _ := cmd.Flags().GetString("channel")
			version, _ := cmd.Flags().GetString("version")
			md, err := metadataFlag(cmd)
			if err != nil {
				return err
			}
			var rel catalog.Release
			if err := c.Do(cmd.Context(), "POST", "/v1/products/"+url.PathEscape(product)+"/releases",
				map[string]any{"channel": channel, "version": version, "metadata": md}, &rel); err != nil {
				return err
			}
			if file, _ := cmd.Flags().GetString("file"); file != "" {
				a, err := uploadFile(cmd, c, file)
				if err != nil {
					return fmt.Errorf("release %s created, upload failed: %w", rel.ReleaseID, err)
				}
				if _, err := attach(cmd, c, rel.ReleaseID, a.ArtifactID); err != nil {
					return fmt.Errorf("release %s created, attach failed: %w", rel.ReleaseID, err)
				}
			}
			return output(cmd, rel, func(w io.Writer) { fmt.Fprintln(w, rel.ReleaseID) })
		},
	}
	rcreate.Flags().String("product", "", "product id")
	rcreate.Flags().String("channel", "stable", "channel")
	rcreate.Flags().String("version", "", "semantic version")
	rcreate.Flags().String("metadata", "", "JSON object")
	rcreate.Flags().String("file", "", "upload this file and attach it (with --platform, --arch, --installer-type)")
	attachFlags(rcreate)
	rlist := &cobra.Command{
		Use: "list", Short: "List a product's releases", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			product, _ := cmd.Flags().GetString("product")
			items, err := listAll[catalog.Release](cmd, c, "/v1/products/"+url.PathEscape(product)+"/releases")
			if err != nil {
				return err
			}
			return output(cmd, map[string]any{"items": items}, func(w io.Writer) {
				var rows [][]any
				for _, r := range items {
					rows = append(rows, []any{r.ReleaseID, r.Channel, r.Version, r.Status})
				}
				table(w, "RELEASE\tCHANNEL\tVERSION\tSTATUS", rows)
			})
		},
	}
	rlist.Flags().String("product", "", "product id")
	revoke := &cobra.Command{
		Use: "revoke RELEASE_ID", Short: "Revoke a release (one-way)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var rel catalog.Release
			if err := c.Do(cmd.Context(), "POST", "/v1/releases/"+url.PathEscape(args[0])+"/revoke", nil, &rel); err != nil {
				return err
			}
			return output(cmd, rel, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\n", rel.ReleaseID, rel.Status) })
		},
	}
	attachCmd := &cobra.Command{
		Use: "attach RELEASE_ID ARTIFACT_ID", Short: "Attach a verified artifact to a release", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			ra, err := attach(cmd, c, args[0], args[1])
			if err != nil {
				return err
			}
			return output(cmd, ra, func(w io.Writer) { fmt.Fprintln(w, ra.ReleaseArtifactID) })
		},
	}
	attachFlags(attachCmd)
	release.AddCommand(rcreate, rlist, revoke, attachCmd)

	cmds := []*cobra.Command{tenant, product, artifact, release}
	for _, c := range cmds {
		addClientFlags(c)
	}
	return cmds
}

func attachFlags(cmd *cobra.Command) {
	cmd.Flags().String("platform", "linux", "windows, linux or macos")
	cmd.Flags().String("arch", "x64", "x64, x86, arm64 or arm")
	cmd.Flags().String("installer-type", "tar.gz", "msi, msix, exe, zip, tar.gz, dmg, pkg, deb, rpm or appimage")
	cmd.Flags().Bool("requires-admin", false, "installing needs admin rights")
}

func attach(cmd *cobra.Command, c *httpapi.Client, releaseID, artifactID string) (*catalog.ReleaseArtifact, error) {
	platform, _ := cmd.Flags().GetString("platform")
	arch, _ := cmd.Flags().GetString("arch")
	it, _ := cmd.Flags().GetString("installer-type")
	admin, _ := cmd.Flags().GetBool("requires-admin")
	var ra catalog.ReleaseArtifact
	err := c.Do(cmd.Context(), "POST", "/v1/releases/"+url.PathEscape(releaseID)+"/artifacts", map[string]any{
		"artifact_id": artifactID, "platform": platform, "arch": arch, "installer_type": it, "requires_admin": admin,
	}, &ra)
	return &ra, err
}

// uploadFile hashes the file first so the server can check the bytes it
// receives against what was on disk here.
func uploadFile(cmd *cobra.Command, c *httpapi.Client, path string) (*catalog.Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	q := url.Values{"sha256": {hex.EncodeToString(h.Sum(nil))}, "size_bytes": {fmt.Sprint(n)}}
	var a catalog.Artifact
	if err := c.DoRaw(cmd.Context(), "POST", "/v1/artifacts?"+q.Encode(), "application/octet-stream", f, n, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func listAll[T any](cmd *cobra.Command, c *httpapi.Client, path string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		var page struct {
			Items      []T    `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		p := path + "?limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := c.Do(cmd.Context(), "GET", p, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}
