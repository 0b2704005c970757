package tuf

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// bindRelease appends a release of product p with one artifact on
// platform/arch and returns the answer a truthful server gives for it.
func bindRelease(m *snapshot.Manifest, p int, n int, version, platform, arch string) Answer {
	pid := m.Products[p].ProductID
	rid, aid, raid := fmt.Sprintf("rel_bind%03d", n), fmt.Sprintf("art_bind%03d", n), fmt.Sprintf("ra_bind%03d", n)
	m.Releases = append(m.Releases, snapshot.Release{
		ReleaseID: rid, ProductID: pid, Channel: "stable", Version: version,
		PublishedAt: snapshottest.Now, Status: catalog.ReleaseActive, Metadata: []byte("{}"),
		Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: raid, ArtifactID: aid, Platform: platform, Arch: arch, InstallerType: "tar.gz"}},
	})
	sum := snapshottest.SHA256(2_000_000 + n)
	m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: aid, SHA256: sum, SizeBytes: int64(1000 + n), SourceType: "MANAGED"})
	return Answer{
		ReleaseID: rid, ProductID: pid, Channel: "stable", Version: version,
		ArtifactID: aid, SHA256: sum, SizeBytes: int64(1000 + n), Target: ArtifactTarget(pid, raid),
	}
}

func TestCheckAnswer_LyingMirror(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 30, 1)
	good := bindRelease(m, 0, 1, "9.1.0", "linux", "x64")
	other := bindRelease(m, 1, 2, "9.1.0", "linux", "x64")     // another product's installer
	windows := bindRelease(m, 0, 3, "9.2.0", "windows", "x64") // another platform
	arm := bindRelease(m, 0, 4, "9.3.0", "linux", "arm64")     // another arch
	older := bindRelease(m, 0, 5, "0.9.0", "linux", "x64")     // older than installed
	revoked := bindRelease(m, 0, 6, "9.4.0", "linux", "x64")   // revoked after the client first saw it
	blocked := bindRelease(m, 0, 7, "9.5.0", "linux", "x64")   // blocked version
	m.BlockedVersions = append(m.BlockedVersions, snapshot.BlockedVersion{BlocklistID: "bl_1", ProductID: good.ProductID, BlockedVersion: "9.5.0"})
	f.build(m)
	store := NewMemStore()
	c := f.client(store, f.rootData)
	if _, err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.Repository()
	if _, err := CheckAnswer(before, AnswerQuery{TenantID: f.tenantID, Product: revoked.ProductID, Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"}, revoked, f.now); err != nil {
		t.Fatalf("release not yet revoked: %v", err)
	}
	// Revoke it; the client sees the current metadata.
	for i := range m.Releases {
		if m.Releases[i].ReleaseID == revoked.ReleaseID {
			at := f.now
			m.Releases[i].Status, m.Releases[i].RevokedAt = catalog.ReleaseRevoked, &at
		}
	}
	f.build(m)
	if _, err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	repo := c.Repository()

	q := AnswerQuery{TenantID: f.tenantID, Product: good.ProductID, Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"}
	with := func(a Answer, edit func(*Answer)) Answer { edit(&a); return a }
	asking := func(edit func(*AnswerQuery)) AnswerQuery { x := q; edit(&x); return x }
	cases := []struct {
		name  string
		q     AnswerQuery
		a     Answer
		now   time.Time
		field string // "" accepted
	}{
		{"truthful answer", q, good, f.now, ""},
		{"truthful answer without a target path", q, with(good, func(a *Answer) { a.Target = "" }), f.now, ""},
		{"installer type asked and matching", asking(func(x *AnswerQuery) { x.InstallerType = "tar.gz" }), good, f.now, ""},
		{"another product's installer", q, other, f.now, "product"},
		{"another product's installer under this product's id", q, with(other, func(a *Answer) { a.ProductID = good.ProductID }), f.now, "release.product_id"},
		{"another platform", q, windows, f.now, "platform"},
		{"another arch", q, arm, f.now, "arch"},
		{"another channel asked", asking(func(x *AnswerQuery) { x.Channel = "beta" }), good, f.now, "channel"},
		{"another installer type asked", asking(func(x *AnswerQuery) { x.InstallerType = "msi" }), good, f.now, "installer_type"},
		{"older version", q, older, f.now, "release.version"},
		{"same version as installed", asking(func(x *AnswerQuery) { x.Version = "9.1.0" }), good, f.now, "release.version"},
		{"newer installed", asking(func(x *AnswerQuery) { x.Version = "10.0.0" }), good, f.now, "release.version"},
		{"revoked since", q, revoked, f.now, "release.status"},
		{"blocked version", q, blocked, f.now, "release.version"},
		{"target not listed", q, with(good, func(a *Answer) { a.Target = good.ProductID + "/ra_nosuch" }), f.now, "artifact.target"},
		{"target path outside any product", q, with(good, func(a *Answer) { a.Target = "../etc/passwd" }), f.now, "artifact.target"},
		{"release and artifact not listed", q, with(good, func(a *Answer) { a.Target, a.ReleaseID = "", "rel_nosuch" }), f.now, "artifact.target"},
		{"another hash", q, with(good, func(a *Answer) { a.SHA256 = snapshottest.SHA256(1) }), f.now, "artifact.sha256"},
		{"another size", q, with(good, func(a *Answer) { a.SizeBytes++ }), f.now, "artifact.size_bytes"},
		{"another release id", q, with(good, func(a *Answer) { a.ReleaseID = older.ReleaseID }), f.now, "release.release_id"},
		{"another artifact id", q, with(good, func(a *Answer) { a.ArtifactID = older.ArtifactID }), f.now, "artifact.artifact_id"},
		{"version claimed newer than signed", q, with(older, func(a *Answer) { a.Version = "99.0.0" }), f.now, "release.version"},
		{"wrong tenant", asking(func(x *AnswerQuery) { x.TenantID = "ten_other" }), good, f.now, "tenant"},
		{"expired metadata", q, good, f.now.Add(48 * time.Hour), "metadata"},
		{"installed version not semver", asking(func(x *AnswerQuery) { x.Version = "v1" }), good, f.now, "version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckAnswer(repo, tc.q, tc.a, tc.now)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.Path != good.Target || got.SHA256 != good.SHA256 || got.Length != good.SizeBytes {
					t.Fatalf("target %+v, want %s", got, good.Target)
				}
				return
			}
			var ae *AnswerError
			if !errors.As(err, &ae) || !errors.Is(err, ErrAnswerRefused) {
				t.Fatalf("got %v, want an AnswerError on %s", err, tc.field)
			}
			if ae.Field != tc.field {
				t.Fatalf("field %q (%v), want %q", ae.Field, err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
	t.Run("after a restart, from the store", func(t *testing.T) {
		// The bins come back compact from the store: the same answers.
		loaded, err := f.client(store, f.rootData).Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []Answer{good, with(good, func(a *Answer) { a.Target = "" })} {
			if _, err := CheckAnswer(loaded, q, a, f.now); err != nil {
				t.Fatalf("truthful answer refused: %v", err)
			}
		}
		if _, err := CheckAnswer(loaded, q, revoked, f.now); !errors.Is(err, ErrAnswerRefused) {
			t.Fatalf("revoked release: got %v", err)
		}
		if len(loaded.compact) == 0 {
			t.Fatal("no bin held compact after a load")
		}
	})
	t.Run("nil repository", func(t *testing.T) {
		if _, err := CheckAnswer(nil, q, good, f.now); !errors.Is(err, ErrAnswerRefused) {
			t.Fatalf("got %v", err)
		}
	})
}
