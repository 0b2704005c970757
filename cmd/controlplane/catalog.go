package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/progress"
	"github.com/outpost/outpost/internal/store"
)

func productCmd() *cobra.Command {
	create := leaf("create NAME", "Create a product and print its id", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		md, err := metadataFlag(cmd)
		if err != nil {
			return err
		}
		in := controlplane.ProductInput{Name: args[0], Distribution: str(cmd, "distribution"), Metadata: md}
		return printed(cmd, func(p *catalog.Product) string { return p.ProductID })(svc.CreateProduct(ctx, in))
	})
	create.Flags().String("distribution", "licensed", "licensed or open")
	create.Flags().String("metadata", "", "JSON object")
	list := leaf("list", "List products", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return listed(cmd, "PRODUCT\tDISTRIBUTION\tNAME", func(p *catalog.Product) []any { return []any{p.ProductID, p.Distribution, p.Name} })(store.All(ctx, svc.Products))
	})
	return group("product", "Manage products", create, list)
}

func artifactCmd() *cobra.Command {
	upload := leaf("upload FILE", "Upload a file as a MANAGED artifact (streamed; its sha256 is checked by the server)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return printed(cmd, func(a *catalog.Artifact) string { return a.ArtifactID })(uploadFile(ctx, cmd, svc, args[0]))
	})
	external := leaf("external URL", "Record an EXTERNAL artifact and verify it", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		size, _ := cmd.Flags().GetInt64("size")
		a, err := svc.CreateExternalArtifact(ctx, controlplane.ExternalInput{ExternalURL: args[0], SHA256: str(cmd, "sha256"), SizeBytes: size})
		if err != nil {
			return err
		}
		return printed(cmd, func(v *controlplane.Verification) string { return v.ArtifactID + "\t" + v.Status })(svc.VerifyArtifact(ctx, a.ArtifactID))
	})
	external.Flags().String("sha256", "", "declared sha256 (hex)")
	external.Flags().Int64("size", 0, "declared size in bytes")
	return group("artifact", "Manage artifacts", upload, external)
}

// uploadFile hashes the file first so the server can check the bytes it
// receives against what was on disk here. Both passes show their progress
// on stderr (internal/progress).
func uploadFile(ctx context.Context, cmd *cobra.Command, svc controlplane.Service, path string) (*catalog.Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	name := filepath.Base(path)
	h := sha256.New()
	hashing := progress.New(cmd.ErrOrStderr(), "hash "+name, size, progress.Options{})
	n, err := io.Copy(h, hashing.Reader(f))
	hashing.Finish()
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	upload := progress.New(cmd.ErrOrStderr(), "upload "+name, n, progress.Options{})
	defer upload.Finish()
	return svc.UploadArtifact(ctx, upload.Reader(f), controlplane.UploadInput{SHA256: hex.EncodeToString(h.Sum(nil)), SizeBytes: n, Length: n})
}

func releaseCmd() *cobra.Command {
	create := leaf("create", "Create a release (optionally uploading and attaching a file)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		md, err := metadataFlag(cmd)
		if err != nil {
			return err
		}
		// The file first: a typo in --file must not burn the version (a
		// release is append-only), and an artifact without a release is
		// harmless (it can be attached later).
		var art *catalog.Artifact
		if file := str(cmd, "file"); file != "" {
			if art, err = uploadFile(ctx, cmd, svc, file); err != nil {
				return fmt.Errorf("--file: %w (nothing was created)", err)
			}
		}
		rel, err := svc.CreateRelease(ctx, str(cmd, "product"), controlplane.ReleaseInput{Channel: str(cmd, "channel"), Version: str(cmd, "version"), Metadata: md})
		if err != nil {
			if art != nil {
				return fmt.Errorf("%w (the file was uploaded as artifact %s: attach it with `controlplane release attach RELEASE_ID %s --platform … --arch …`)", err, art.ArtifactID, art.ArtifactID)
			}
			return err
		}
		if art != nil {
			if _, err := svc.AttachArtifact(ctx, rel.ReleaseID, attachInput(cmd, art.ArtifactID)); err != nil {
				return fmt.Errorf("release %s created, attaching artifact %s failed: %w; fix the flags and run `controlplane release attach %s %s --platform … --arch …`", rel.ReleaseID, art.ArtifactID, err, rel.ReleaseID, art.ArtifactID)
			}
		}
		return printed(cmd, func(r *catalog.Release) string { return r.ReleaseID })(rel, nil)
	})
	create.Flags().String("product", "", "product id")
	create.Flags().String("channel", "stable", "channel")
	create.Flags().String("version", "", "semantic version")
	create.Flags().String("metadata", "", "JSON object")
	create.Flags().String("file", "", "upload this file and attach it (with --platform, --arch, --installer-type)")
	attachFlags(create)
	list := leaf("list", "List a product's releases", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		releases := func(ctx context.Context, pg store.Page) ([]*catalog.Release, string, error) {
			return svc.Releases(ctx, str(cmd, "product"), pg)
		}
		return listed(cmd, "RELEASE\tCHANNEL\tVERSION\tSTATUS", func(r *catalog.Release) []any { return []any{r.ReleaseID, r.Channel, r.Version, r.Status} })(store.All(ctx, releases))
	})
	list.Flags().String("product", "", "product id")
	revoke := leaf("revoke RELEASE_ID", "Revoke a release (one-way)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return printed(cmd, func(r *catalog.Release) string { return r.ReleaseID + "\t" + r.Status })(svc.RevokeRelease(ctx, args[0]))
	})
	attach := leaf("attach RELEASE_ID ARTIFACT_ID", "Attach a verified artifact to a release", cobra.ExactArgs(2), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return printed(cmd, func(ra *catalog.ReleaseArtifact) string { return ra.ReleaseArtifactID })(svc.AttachArtifact(ctx, args[0], attachInput(cmd, args[1])))
	})
	attachFlags(attach)
	deltas := leaf("deltas RELEASE_ID", "List the delta builds of a release's artifacts (state, sizes, offered)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return listed(cmd, "DELTA\tFROM_VERSION\tSTATE\tSIZE\tSHARE\tOFFERED", func(j *controlplane.DeltaJob) []any {
			return []any{j.DeltaID, j.FromVersion, j.State, j.SizeBytes, fmt.Sprintf("%.2f%%", 100*j.Share), j.Offered}
		})(svc.ReleaseDeltas(ctx, args[0]))
	})
	return group("release", "Manage releases", create, list, revoke, attach, deltas)
}

func attachFlags(cmd *cobra.Command) {
	cmd.Flags().String("platform", "linux", "windows, linux or macos")
	cmd.Flags().String("arch", "x64", "x64, x86, arm64 or arm")
	cmd.Flags().String("installer-type", "tar.gz", "msi, msix, exe, zip, tar.gz, dmg, pkg, deb, rpm or appimage")
	cmd.Flags().Bool("requires-admin", false, "installing needs admin rights")
}

func attachInput(cmd *cobra.Command, artifactID string) controlplane.AttachInput {
	admin, _ := cmd.Flags().GetBool("requires-admin")
	return controlplane.AttachInput{ArtifactID: artifactID, Platform: str(cmd, "platform"), Arch: str(cmd, "arch"), InstallerType: str(cmd, "installer-type"), RequiresAdmin: admin}
}
