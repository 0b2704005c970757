package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/store"
)

// TestClient_Service drives the same operations through the App and
// through the HTTP client: both are a controlplane.Service and must
// answer alike, errors included.
func TestClient_Service(t *testing.T) {
	h := newHarness(t)
	h.enableTUF()
	services := []struct {
		name string
		ctx  context.Context
		svc  controlplane.Service
	}{
		{"local", h.operator(), h.app},
		{"remote", context.Background(), &httpapi.Client{BaseURL: h.ts.URL, Token: h.admin}},
	}
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) { exerciseService(t, s.ctx, s.svc) })
	}
}

func exerciseService(t *testing.T, ctx context.Context, svc controlplane.Service) {
	ten, err := svc.CreateTenant(ctx, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("errors keep their code and field", func(t *testing.T) {
		cases := []struct {
			name  string
			err   error
			code  string
			field string
		}{
			{"not found", second(svc.Tenant(ctx, "ten_doesnotexist")), catalog.ENOTFOUND, ""},
			{"malformed id", second(svc.Policy(ctx, "../x")), catalog.ENOTFOUND, ""},
			{"invalid", second(svc.CreateTenant(ctx, controlplane.TenantInput{Name: ""})), catalog.EINVALID, "name"},
			{"no root yet", second(svc.TUFRoot(ctx, ten.TenantID)), catalog.ENOTFOUND, ""},
		}
		for _, c := range cases {
			var de *catalog.Error
			if got := catalog.ErrorCode(c.err); got != c.code || !errors.As(c.err, &de) || de.Field != c.field {
				t.Errorf("%s: got %v (code %s), want code %s field %q", c.name, c.err, got, c.code, c.field)
			}
		}
	})
	t.Run("pages follow the cursor", func(t *testing.T) {
		for _, n := range []string{"a", "b", "c"} {
			if _, err := svc.CreateProduct(ctx, controlplane.ProductInput{Name: n}); err != nil {
				t.Fatal(err)
			}
		}
		first, next, err := svc.Products(ctx, store.Page{Limit: 2})
		if err != nil || len(first) != 2 || next == "" {
			t.Fatalf("first page: %d items, next %q, %v", len(first), next, err)
		}
		rest, _, err := svc.Products(ctx, store.Page{Limit: 2, Cursor: next})
		if err != nil || len(rest) == 0 || rest[0].ProductID == first[1].ProductID {
			t.Fatalf("second page: %v, %v", rest, err)
		}
	})
	data := bytes.Repeat([]byte("artifact "), 1000)
	prod, err := svc.CreateProduct(ctx, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	art, err := svc.UploadArtifact(ctx, bytes.NewReader(data), controlplane.UploadInput{SHA256: sha(data), SizeBytes: int64(len(data)), Length: int64(len(data))})
	if err != nil || art.SHA256 != sha(data) {
		t.Fatalf("upload: %v %v", art, err)
	}
	rel, err := svc.CreateRelease(ctx, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AttachArtifact(ctx, rel.ReleaseID, controlplane.AttachInput{ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}); err != nil {
		t.Fatal(err)
	}
	t.Run("download", func(t *testing.T) {
		d, err := svc.OpenArtifact(ctx, art.ArtifactID)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Body.Close()
		if got, _ := io.ReadAll(d.Body); !bytes.Equal(got, data) {
			t.Fatalf("downloaded %d bytes, want %d", len(got), len(data))
		}
		if d.Artifact.SHA256 != sha(data) {
			t.Errorf("delivery names sha256 %q, want %q", d.Artifact.SHA256, sha(data))
		}
	})
	snap, err := svc.BuildSnapshot(ctx, ten.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("snapshot and bundle", func(t *testing.T) {
		got, err := svc.Snapshot(ctx, snap.SnapshotID)
		if err != nil || got.Sequence != snap.Sequence || got.Hash != snap.Hash || !got.ExpiresAt.Equal(snap.ExpiresAt) {
			t.Fatalf("snapshot: %+v, %v; built %+v", got, err, snap)
		}
		var buf bytes.Buffer
		res, err := svc.ExportBundle(ctx, controlplane.BundleOptions{TenantID: ten.TenantID}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		// The result travels as a trailer after the tar.
		if res.Format != controlplane.BundleTUF || res.Sequence < 1 || res.Artifacts != 1 || res.SizeBytes != int64(buf.Len()) {
			t.Errorf("result %+v, want tuf, a snapshot version, 1 artifact, %d bytes", res, buf.Len())
		}
		if names := tarNames(t, buf.Bytes()); len(names) < 2 || names[0] != "tuf-bundle.json" {
			t.Fatalf("bundle holds %v", names)
		}
		var none bytes.Buffer
		_, err = svc.ExportBundle(ctx, controlplane.BundleOptions{TenantID: ten.TenantID, Format: controlplane.BundleDSSE}, &none)
		if catalog.ErrorCode(err) != catalog.EINVALID || none.Len() != 0 {
			t.Fatalf("format dsse: %v, %d bytes written", err, none.Len())
		}
	})
	t.Run("update with a typed patch", func(t *testing.T) {
		name := "Acme Corp"
		got, err := svc.UpdateTenant(ctx, ten.TenantID, controlplane.TenantPatch{Name: &name})
		if err != nil || got.Name != name {
			t.Fatalf("update: %v %v", got, err)
		}
	})
	t.Run("backup", func(t *testing.T) {
		var buf bytes.Buffer
		if n, err := svc.Backup(ctx, &buf); err != nil || n == 0 || buf.Len() == 0 {
			t.Fatalf("backup: %d bytes, %v", n, err)
		}
	})
}

func second[T any](_ T, err error) error { return err }
