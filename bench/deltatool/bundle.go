package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/sync"
)

// bundleCmd measures the air-gap bundle of issue 13 through the real
// export: a control plane (bbolt, disk blob store) publishes BASE as
// release 1.0.0 and builds a snapshot (the mirror's sequence), then
// TARGET as 1.1.0; its delta job builds the delta; `bundle export
// --since` (App.ExportBundle) writes the bundle, and the same export with
// --no-deltas is the reference. With -import a bundles-only mirror
// imports the full bundle of the first snapshot, then the --since one,
// rebuilding TARGET from the delta. Everything lives under -dir.
func bundleCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bundle", flag.ContinueOnError)
	basePath := fs.String("base", "", "the artifact of release 1.0.0")
	targetPath := fs.String("target", "", "the artifact of release 1.1.0")
	dir := fs.String("dir", "", "working directory (created; left for the caller to remove)")
	doImport := fs.Bool("import", true, "import the bundles on a mirror (needs room for a full bundle)")
	if err := parse(fs, args, "base", "target", "dir"); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	db, err := bolt.Open(filepath.Join(*dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		return err
	}
	defer db.Close()
	blobs, err := disk.New(filepath.Join(*dir, "blobs"))
	if err != nil {
		return err
	}
	keys := filepath.Join(*dir, "keys")
	if _, err := keyring.Generate(keys); err != nil {
		return err
	}
	sealer, err := controlplane.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		return err
	}
	app := controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(keys), Secrets: sealer,
		Config: controlplane.Config{DeltaTempDir: *dir}})
	// Bundles are TUF repositories: a 1-of-1 online root, as `controlplane
	// root init` makes by default.
	if _, err := controlplaned.TUFDir(keys).Init(1, 1, ""); err != nil {
		return err
	}
	if err := controlplaned.EnableTUF(app, keys); err != nil {
		return err
	}
	op := controlplane.AsOperator(ctx, catalog.Actor{Type: catalog.ActorUser, ID: "bench"})
	prod, err := app.CreateProduct(op, controlplane.ProductInput{Name: "image", Distribution: catalog.DistributionOpen})
	if err != nil {
		return err
	}
	ten, err := app.CreateTenant(op, controlplane.TenantInput{Name: "site"})
	if err != nil {
		return err
	}
	release := func(version, path string) (*catalog.Artifact, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		art, err := app.UploadArtifact(op, f, controlplane.UploadInput{SizeBytes: -1, Length: -1})
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", path, err)
		}
		rel, err := app.CreateRelease(op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: version})
		if err != nil {
			return nil, err
		}
		_, err = app.AttachArtifact(op, rel.ReleaseID, controlplane.AttachInput{ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "zip"})
		return art, err
	}
	export := func(o controlplane.BundleOptions, path string) (*controlplane.BundleResult, error) {
		o.TenantID = ten.TenantID
		if path == "" {
			return app.ExportBundle(op, o, io.Discard)
		}
		var res *controlplane.BundleResult
		err := fsutil.WriteFrom(path, 0o600, func(w io.Writer) error {
			var err error
			res, err = app.ExportBundle(op, o, w)
			return err
		})
		return res, err
	}

	if _, err := release("1.0.0", *basePath); err != nil {
		return err
	}
	snap1, err := app.BuildSnapshot(op, ten.TenantID)
	if err != nil {
		return err
	}
	fullPath := filepath.Join(*dir, "full.tar")
	if *doImport {
		if _, err := export(controlplane.BundleOptions{}, fullPath); err != nil {
			return fmt.Errorf("export the first bundle: %w", err)
		}
	}
	art2, err := release("1.1.0", *targetPath)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for {
		ran, err := app.RunDeltaJob(ctx)
		if err != nil {
			return fmt.Errorf("delta job: %w", err)
		}
		if !ran {
			break
		}
	}
	build := time.Since(t0)
	if _, err := app.BuildSnapshot(op, ten.TenantID); err != nil {
		return err
	}
	sincePath := filepath.Join(*dir, "since.tar")
	t0 = time.Now()
	res, err := export(controlplane.BundleOptions{Since: snap1.Sequence}, sincePath)
	if err != nil {
		return fmt.Errorf("export --since: %w", err)
	}
	exportTime := time.Since(t0)
	whole, err := export(controlplane.BundleOptions{Since: snap1.Sequence, NoDeltas: true}, "")
	if err != nil {
		return fmt.Errorf("export --since --no-deltas: %w", err)
	}
	fmt.Printf("bundle_artifact_bytes %d\nbundle_since_bytes %d\nbundle_nodeltas_bytes %d\nbundle_deltas %d\nbundle_delta_bytes %d\nbundle_saved_percent %.2f\nbundle_delta_build_seconds %.2f\nbundle_export_seconds %.3f\n",
		art2.SizeBytes, res.SizeBytes, whole.SizeBytes, res.Deltas, res.DeltaBytes, res.SavedPercent, build.Seconds(), exportTime.Seconds())
	if res.Deltas != 1 {
		return fmt.Errorf("the --since bundle carries %d deltas, want 1 (was the delta offered?)", res.Deltas)
	}
	if !*doImport {
		return nil
	}

	// A bundles-only mirror: the full bundle of the first snapshot, then
	// the small one.
	root, err := app.TUFRoot(op, ten.TenantID)
	if err != nil {
		return err
	}
	mdir := filepath.Join(*dir, "mirror")
	st, err := state.Open(filepath.Join(mdir, "mirror.db"), 3)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := cache.Open(mdir)
	if err != nil {
		return err
	}
	s := sync.New(nil, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: ten.TenantID, Root: root}})
	imp := func(path string) (sync.ImportReport, error) {
		f, err := os.Open(path)
		if err != nil {
			return sync.ImportReport{}, err
		}
		defer f.Close()
		return s.Import(ctx, f, false)
	}
	if _, err := imp(fullPath); err != nil {
		return fmt.Errorf("import the first bundle: %w", err)
	}
	os.Remove(fullPath)
	t0 = time.Now()
	rep, err := imp(sincePath)
	if err != nil {
		return fmt.Errorf("import the --since bundle: %w", err)
	}
	if rep.Rebuilt != 1 || !c.Has(art2.SHA256, art2.SizeBytes) {
		return errors.New("the mirror did not rebuild the new artifact")
	}
	fmt.Printf("bundle_import_seconds %.3f\nbundle_rebuilt %d\n", time.Since(t0).Seconds(), rep.Rebuilt)
	return nil
}
