package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store/bolt"
)

// TestControlPlane_DeltaWorker: a delta queued while no worker ran (as
// after a restart) is built by the serving daemon's deltas part, and Run
// and Close leave no goroutine behind.
func TestControlPlane_DeltaWorker(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	sealer, err := controlplane.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	app := controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer})
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	prod, err := app.CreateProduct(op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	v1 := make([]byte, 200<<10)
	rand.Read(v1)
	v2 := append(bytes.Clone(v1), "1.0.1"...)
	var rel2 string
	for _, r := range []struct {
		version string
		body    []byte
	}{{"1.0.0", v1}, {"1.0.1", v2}} {
		art, err := app.UploadArtifact(op, bytes.NewReader(r.body), controlplane.UploadInput{SizeBytes: -1, Length: -1})
		if err != nil {
			t.Fatal(err)
		}
		rel, err := app.CreateRelease(op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: r.version})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.AttachArtifact(op, rel.ReleaseID, controlplane.AttachInput{ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}); err != nil {
			t.Fatal(err)
		}
		rel2 = rel.ReleaseID
	}
	cp, err := controlplaned.New(app, db, controlplaned.Config{Listen: "127.0.0.1:0", ShutdownTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- cp.Run(ctx) }()

	state := ""
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		jobs, err := app.ReleaseDeltas(op, rel2)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("ReleaseDeltas: %+v, %v", jobs, err)
		}
		if state = jobs[0].State; state == deltajob.Done {
			break
		}
	}
	if state != deltajob.Done {
		t.Fatalf("the daemon left the delta %s", state)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := cp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
