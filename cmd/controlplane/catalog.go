package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

func productCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "product", Short: "Manage products"}
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a product and print its id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			md, err := metadataFlag(cmd)
			if err != nil {
				return err
			}
			dist, _ := cmd.Flags().GetString("distribution")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				p, err := svc.CreateProduct(ctx, controlplane.ProductInput{Name: args[0], Distribution: dist, Metadata: md})
				if err != nil {
					return err
				}
				return output(cmd, p, func(w io.Writer) { fmt.Fprintln(w, p.ProductID) })
			})
		},
	}
	create.Flags().String("distribution", "licensed", "licensed or open")
	create.Flags().String("metadata", "", "JSON object")
	list := &cobra.Command{
		Use: "list", Short: "List products", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				ps, err := all(ctx, svc.Products)
				if err != nil {
					return err
				}
				return items(cmd, ps, "PRODUCT\tDISTRIBUTION\tNAME", func(p *catalog.Product) []any { return []any{p.ProductID, p.Distribution, p.Name} })
			})
		},
	}
	cmd.AddCommand(create, list)
	addClientFlags(cmd)
	return cmd
}

func artifactCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "artifact", Short: "Manage artifacts"}
	upload := &cobra.Command{
		Use: "upload FILE", Short: "Upload a file as a MANAGED artifact (streamed; its sha256 is checked by the server)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				a, err := uploadFile(ctx, svc, args[0])
				if err != nil {
					return err
				}
				return output(cmd, a, func(w io.Writer) { fmt.Fprintln(w, a.ArtifactID) })
			})
		},
	}
	external := &cobra.Command{
		Use: "external URL", Short: "Record an EXTERNAL artifact and verify it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sha, _ := cmd.Flags().GetString("sha256")
			size, _ := cmd.Flags().GetInt64("size")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				a, err := svc.CreateExternalArtifact(ctx, controlplane.ExternalInput{ExternalURL: args[0], SHA256: sha, SizeBytes: size})
				if err != nil {
					return err
				}
				v, err := svc.VerifyArtifact(ctx, a.ArtifactID)
				if err != nil {
					return err
				}
				return output(cmd, v, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\n", v.ArtifactID, v.Status) })
			})
		},
	}
	external.Flags().String("sha256", "", "declared sha256 (hex)")
	external.Flags().Int64("size", 0, "declared size in bytes")
	cmd.AddCommand(upload, external)
	addClientFlags(cmd)
	return cmd
}

// uploadFile hashes the file first so the server can check the bytes it
// receives against what was on disk here.
func uploadFile(ctx context.Context, svc controlplane.Service, path string) (*catalog.Artifact, error) {
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
	return svc.UploadArtifact(ctx, f, controlplane.UploadInput{SHA256: hex.EncodeToString(h.Sum(nil)), SizeBytes: n, Length: n})
}

func releaseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Manage releases"}
	create := &cobra.Command{
		Use: "create", Short: "Create a release (optionally uploading and attaching a file)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			product, _ := cmd.Flags().GetString("product")
			in := controlplane.ReleaseInput{}
			in.Channel, _ = cmd.Flags().GetString("channel")
			in.Version, _ = cmd.Flags().GetString("version")
			file, _ := cmd.Flags().GetString("file")
			md, err := metadataFlag(cmd)
			if err != nil {
				return err
			}
			in.Metadata = md
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				rel, err := svc.CreateRelease(ctx, product, in)
				if err != nil {
					return err
				}
				if file != "" {
					a, err := uploadFile(ctx, svc, file)
					if err != nil {
						return fmt.Errorf("release %s created, upload failed: %w", rel.ReleaseID, err)
					}
					if _, err := svc.AttachArtifact(ctx, rel.ReleaseID, attachInput(cmd, a.ArtifactID)); err != nil {
						return fmt.Errorf("release %s created, attach failed: %w", rel.ReleaseID, err)
					}
				}
				return output(cmd, rel, func(w io.Writer) { fmt.Fprintln(w, rel.ReleaseID) })
			})
		},
	}
	create.Flags().String("product", "", "product id")
	create.Flags().String("channel", "stable", "channel")
	create.Flags().String("version", "", "semantic version")
	create.Flags().String("metadata", "", "JSON object")
	create.Flags().String("file", "", "upload this file and attach it (with --platform, --arch, --installer-type)")
	attachFlags(create)
	list := &cobra.Command{
		Use: "list", Short: "List a product's releases", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			product, _ := cmd.Flags().GetString("product")
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				rs, err := all(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Release, string, error) {
					return svc.Releases(ctx, product, pg)
				})
				if err != nil {
					return err
				}
				return items(cmd, rs, "RELEASE\tCHANNEL\tVERSION\tSTATUS", func(r *catalog.Release) []any { return []any{r.ReleaseID, r.Channel, r.Version, r.Status} })
			})
		},
	}
	list.Flags().String("product", "", "product id")
	revoke := &cobra.Command{
		Use: "revoke RELEASE_ID", Short: "Revoke a release (one-way)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				rel, err := svc.RevokeRelease(ctx, args[0])
				if err != nil {
					return err
				}
				return output(cmd, rel, func(w io.Writer) { fmt.Fprintf(w, "%s\t%s\n", rel.ReleaseID, rel.Status) })
			})
		},
	}
	attach := &cobra.Command{
		Use: "attach RELEASE_ID ARTIFACT_ID", Short: "Attach a verified artifact to a release", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd, func(ctx context.Context, svc controlplane.Service) error {
				ra, err := svc.AttachArtifact(ctx, args[0], attachInput(cmd, args[1]))
				if err != nil {
					return err
				}
				return output(cmd, ra, func(w io.Writer) { fmt.Fprintln(w, ra.ReleaseArtifactID) })
			})
		},
	}
	attachFlags(attach)
	cmd.AddCommand(create, list, revoke, attach)
	addClientFlags(cmd)
	return cmd
}

func attachFlags(cmd *cobra.Command) {
	cmd.Flags().String("platform", "linux", "windows, linux or macos")
	cmd.Flags().String("arch", "x64", "x64, x86, arm64 or arm")
	cmd.Flags().String("installer-type", "tar.gz", "msi, msix, exe, zip, tar.gz, dmg, pkg, deb, rpm or appimage")
	cmd.Flags().Bool("requires-admin", false, "installing needs admin rights")
}

func attachInput(cmd *cobra.Command, artifactID string) controlplane.AttachInput {
	in := controlplane.AttachInput{ArtifactID: artifactID}
	in.Platform, _ = cmd.Flags().GetString("platform")
	in.Arch, _ = cmd.Flags().GetString("arch")
	in.InstallerType, _ = cmd.Flags().GetString("installer-type")
	in.RequiresAdmin, _ = cmd.Flags().GetBool("requires-admin")
	return in
}
