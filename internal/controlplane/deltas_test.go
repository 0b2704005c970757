package controlplane_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store/bolt"
)

// deltaSite is an App over a data dir that can be reopened (a restart).
type deltaSite struct {
	dir string
	cfg controlplane.Config
	db  *bolt.DB
	app *controlplane.App
	op  context.Context
}

func openDeltaSite(t testing.TB, dir string, cfg controlplane.Config) *deltaSite {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys")); err != nil {
		if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
			t.Fatal(err)
		}
	}
	dek := bytes.Repeat([]byte{7}, 32)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	a := controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer, Config: cfg})
	s := &deltaSite{dir: dir, cfg: cfg, db: db, app: a, op: controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})}
	t.Cleanup(func() { s.db.Close() })
	return s
}

func (s *deltaSite) reopen(t *testing.T) {
	t.Helper()
	s.db.Close()
	*s = *openDeltaSite(t, s.dir, s.cfg)
}

// release publishes version with one linux/amd64 tar artifact of body.
func (s *deltaSite) release(t testing.TB, productID, version string, body []byte) (*catalog.Release, *catalog.Artifact) {
	t.Helper()
	art, err := s.app.UploadArtifact(s.op, bytes.NewReader(body), controlplane.UploadInput{SizeBytes: -1, Length: -1})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := s.app.CreateRelease(s.op, productID, controlplane.ReleaseInput{Channel: "stable", Version: version})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.AttachArtifact(s.op, rel.ReleaseID, controlplane.AttachInput{ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}); err != nil {
		t.Fatal(err)
	}
	return rel, art
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestDeltas_BuiltListedServed(t *testing.T) {
	s := openDeltaSite(t, t.TempDir(), controlplane.Config{})
	prod, err := s.app.CreateProduct(s.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	ten, err := s.app.CreateTenant(s.op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	v1 := randomBytes(300 << 10)
	_, a1 := s.release(t, prod.ProductID, "1.0.0", v1)
	if _, err := s.app.BuildSnapshot(s.op, ten.TenantID); err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(v1)
	copy(v2[1000:], "a one-line change")
	rel2, a2 := s.release(t, prod.ProductID, "1.1.0", v2)
	if _, err := s.app.BuildSnapshot(s.op, ten.TenantID); err != nil { // published before the delta exists
		t.Fatal(err)
	}

	jobs, err := s.app.ReleaseDeltas(s.op, rel2.ReleaseID)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ReleaseDeltas: %+v, %v, want one job", jobs, err)
	}
	if j := jobs[0]; j.State != deltajob.Pending || j.FromArtifactID != a1.ArtifactID || j.ToArtifactID != a2.ArtifactID {
		t.Fatalf("got job %+v, want pending %s → %s", j, a1.ArtifactID, a2.ArtifactID)
	}
	if ran, err := s.app.RunDeltaJob(context.Background()); !ran || err != nil {
		t.Fatalf("RunDeltaJob: %v, %v", ran, err)
	}
	jobs, _ = s.app.ReleaseDeltas(s.op, rel2.ReleaseID)
	j := jobs[0]
	if j.State != deltajob.Done || !j.Offered || j.SizeBytes <= 0 || j.SizeBytes > int64(len(v2))/10 {
		t.Fatalf("got job %+v, want done, offered, small", j)
	}

	t.Run("the rebuilt snapshot lists it, signed", func(t *testing.T) {
		eng, err := s.app.UpdateEngine(controlplane.WithPrincipal(context.Background(), &controlplane.Principal{Role: catalog.RoleTenant, TenantID: ten.TenantID, TokenID: "tok_x"}))
		if err != nil {
			t.Fatal(err)
		}
		if got := eng.Delta(a2.SHA256, a1.SHA256); got == nil || got.DeltaID != j.DeltaID || got.SHA256 != j.SHA256 {
			t.Fatalf("engine delta %+v, want %s", got, j.DeltaID)
		}
	})
	t.Run("a tenant downloads it and it rebuilds the artifact", func(t *testing.T) {
		tenant := controlplane.WithPrincipal(context.Background(), &controlplane.Principal{Role: catalog.RoleTenant, TenantID: ten.TenantID, TokenID: "tok_x"})
		d, err := s.app.OpenDelta(tenant, j.DeltaID)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Body.Close()
		want := delta.Want{BaseSize: int64(len(v1)), Size: int64(len(v2))}
		want.BaseSHA256, _ = delta.ParseDigest(a1.SHA256)
		want.SHA256, _ = delta.ParseDigest(a2.SHA256)
		var out bytes.Buffer
		if err := delta.Apply(context.Background(), &out, d.Body, bytes.NewReader(v1), want, delta.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), v2) {
			t.Fatal("rebuilt bytes differ")
		}
	})
	t.Run("another tenant cannot", func(t *testing.T) {
		other := controlplane.WithPrincipal(context.Background(), &controlplane.Principal{Role: catalog.RoleTenant, TenantID: "ten_00000000000000000000000000", TokenID: "tok_y"})
		if _, err := s.app.OpenDelta(other, j.DeltaID); err == nil {
			t.Fatal("got the delta, want an error")
		}
	})
}

func TestDeltas_OverShareNotOffered(t *testing.T) {
	s := openDeltaSite(t, t.TempDir(), controlplane.Config{})
	prod, _ := s.app.CreateProduct(s.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	s.release(t, prod.ProductID, "1.0.0", randomBytes(64<<10))
	rel2, _ := s.release(t, prod.ProductID, "2.0.0", randomBytes(64<<10)) // unrelated bytes
	if ran, err := s.app.RunDeltaJob(context.Background()); !ran || err != nil {
		t.Fatalf("RunDeltaJob: %v, %v", ran, err)
	}
	jobs, _ := s.app.ReleaseDeltas(s.op, rel2.ReleaseID)
	if len(jobs) != 1 || jobs[0].State != deltajob.Skipped || jobs[0].Offered || jobs[0].Share <= delta.DefaultMaxShare {
		t.Fatalf("got %+v, want one skipped job over the share", jobs)
	}
	if _, err := s.app.OpenDelta(s.op, jobs[0].DeltaID); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Errorf("OpenDelta of a skipped delta: %v, want not_found", err)
	}
}

func TestDeltas_PreviousReleases(t *testing.T) {
	cases := []struct {
		name     string
		previous int
		want     int
	}{
		{"default 3 of 4 earlier", 0, 3},
		{"one", 1, 1},
		{"disabled", -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openDeltaSite(t, t.TempDir(), controlplane.Config{DeltaPrevious: c.previous})
			prod, _ := s.app.CreateProduct(s.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
			for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
				s.release(t, prod.ProductID, v, randomBytes(1024))
			}
			rel, _ := s.release(t, prod.ProductID, "2.0.0", randomBytes(1024))
			jobs, err := s.app.ReleaseDeltas(s.op, rel.ReleaseID)
			if err != nil || len(jobs) != c.want {
				t.Fatalf("got %d jobs (%v), want %d", len(jobs), err, c.want)
			}
			if c.want > 0 && jobs[0].FromVersion != "1.3.0" && jobs[len(jobs)-1].FromVersion != "1.3.0" {
				t.Errorf("the newest earlier release 1.3.0 is not a base: %+v", jobs)
			}
		})
	}
}

func TestDeltas_PendingResumesAfterRestart(t *testing.T) {
	s := openDeltaSite(t, t.TempDir(), controlplane.Config{})
	prod, _ := s.app.CreateProduct(s.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	v1 := randomBytes(128 << 10)
	s.release(t, prod.ProductID, "1.0.0", v1)
	v2 := append(bytes.Clone(v1), "tail"...)
	rel2, _ := s.release(t, prod.ProductID, "1.0.1", v2)
	s.reopen(t) // the control plane stops before the worker ran
	if ran, err := s.app.RunDeltaJob(context.Background()); !ran || err != nil {
		t.Fatalf("RunDeltaJob after restart: %v, %v", ran, err)
	}
	jobs, _ := s.app.ReleaseDeltas(s.op, rel2.ReleaseID)
	if len(jobs) != 1 || jobs[0].State != deltajob.Done {
		t.Fatalf("got %+v, want the job done", jobs)
	}
	if ran, _ := s.app.RunDeltaJob(context.Background()); ran {
		t.Error("a second run found another job")
	}
}
