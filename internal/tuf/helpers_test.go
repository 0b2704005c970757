package tuf

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// testSigner returns a deterministic ed25519 signer.
func testSigner(t testing.TB, seed byte) *Ed25519Signer {
	t.Helper()
	var s [ed25519.SeedSize]byte
	s[0], s[1] = seed, 0x7f
	sg, err := NewEd25519Signer(ed25519.NewKeyFromSeed(s[:]))
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func pub(t testing.TB, signers ...Signer) []*metadata.Key {
	t.Helper()
	out := make([]*metadata.Key, len(signers))
	for i, s := range signers {
		k, err := PublicKey(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = k
	}
	return out
}

// mapFetcher serves a repository from memory and records what it served.
type mapFetcher struct {
	mu       sync.Mutex
	files    map[string][]byte
	override map[string]func() io.ReadCloser
	served   []string
}

func newMapFetcher() *mapFetcher {
	return &mapFetcher{files: map[string][]byte{}, override: map[string]func() io.ReadCloser{}}
}

func (f *mapFetcher) Fetch(_ context.Context, path string, _ int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.served = append(f.served, path)
	if o := f.override[path]; o != nil {
		return o(), nil
	}
	b, ok := f.files[path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *mapFetcher) publish(files []File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range files {
		f.files[x.Path] = x.Data
	}
}

func (f *mapFetcher) set(path string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = data
}

func (f *mapFetcher) get(path string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[path]
}

// fixture is a vendor with one tenant's repository published through a
// mapFetcher.
type fixture struct {
	t        testing.TB
	tenantID string
	rootKeys []Signer // 3, threshold 2
	targets  Signer
	snap     Signer
	ts       Signer
	product  Signer
	products *ProductSet
	builder  *Builder
	state    *State
	repo     *mapFetcher
	root     *Root
	rootData []byte
	now      time.Time
}

func newFixture(t testing.TB, tenantID string, po ProductOptions) *fixture {
	t.Helper()
	f := &fixture{
		t: t, tenantID: tenantID,
		rootKeys: []Signer{testSigner(t, 1), testSigner(t, 2), testSigner(t, 3)},
		targets:  testSigner(t, 10), snap: testSigner(t, 11), ts: testSigner(t, 12), product: testSigner(t, 13),
		repo: newMapFetcher(), now: snapshottest.Now,
	}
	var err error
	if f.products, err = NewProductSet(po, f.product); err != nil {
		t.Fatal(err)
	}
	f.builder = &Builder{TenantID: tenantID, Products: f.products, Keys: TenantKeys{
		Targets: []Signer{f.targets}, Snapshot: []Signer{f.snap}, Timestamp: []Signer{f.ts},
	}}
	r, err := NewRoot(f.rootSpec(f.ts))
	if err != nil {
		t.Fatal(err)
	}
	f.publishRoot(r, nil, f.rootKeys[0], f.rootKeys[1])
	return f
}

func (f *fixture) rootSpec(ts Signer) RootSpec {
	return RootSpec{
		TenantID: f.tenantID, Version: 1, Expires: f.now.Add(5 * 365 * 24 * time.Hour),
		Root:    RoleKeys{Keys: pub(f.t, f.rootKeys...), Threshold: 2},
		Targets: RoleKeys{Keys: pub(f.t, f.targets), Threshold: 1}, Snapshot: RoleKeys{Keys: pub(f.t, f.snap), Threshold: 1},
		Timestamp: RoleKeys{Keys: pub(f.t, ts), Threshold: 1},
	}
}

// publishRoot signs r with signers, checks it against the previous root
// and publishes it.
func (f *fixture) publishRoot(r, prev *Root, signers ...Signer) {
	f.t.Helper()
	data, err := SignRoot(context.Background(), r, signers...)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := CheckRoot(prev, r); err != nil {
		f.t.Fatal(err)
	}
	f.root, f.rootData = r, data
	f.repo.set(MetadataPath(metadata.ROOT, r.Signed.Version), data)
}

// build builds the tenant view m, publishes the changed files and
// returns them.
func (f *fixture) build(m *snapshot.Manifest) []File {
	f.t.Helper()
	st, files, err := f.builder.Build(context.Background(), f.state, m, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	f.state = st
	f.repo.publish(files)
	return files
}

func (f *fixture) refresh() []File {
	f.t.Helper()
	st, files, err := f.builder.Refresh(context.Background(), f.state, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	f.state = st
	f.repo.publish(files)
	return files
}

// client returns a client initialised with the tenant's first root over
// store s, reading the fixture's clock.
func (f *fixture) client(s Store, root []byte) *Client {
	f.t.Helper()
	if err := Init(context.Background(), s, f.tenantID, root); err != nil && !strings.Contains(err.Error(), "already holds") {
		f.t.Fatal(err)
	}
	return NewClient(f.tenantID, f.repo, s, ClientOptions{Now: func() time.Time { return f.now }})
}

// view returns the manifest of a generated catalog for the fixture's
// tenant.
func view(products, releases, artifacts int) *snapshot.Manifest {
	in := snapshottest.Input(products, releases, artifacts)
	return snapshot.Build(in, snapshot.BuildOptions{SnapshotID: "s", Now: snapshottest.Now, TTL: time.Hour})
}

// addRelease appends a release with one artifact to product p of m.
func addRelease(m *snapshot.Manifest, p int, n int) {
	pid := m.Products[p].ProductID
	rid := fmt.Sprintf("rel_new%03d", n)
	aid := fmt.Sprintf("art_new%03d", n)
	m.Releases = append(m.Releases, snapshot.Release{
		ReleaseID: rid, ProductID: pid, Channel: "stable", Version: fmt.Sprintf("9.0.%d", n),
		PublishedAt: snapshottest.Now, Status: "ACTIVE", Metadata: []byte("{}"),
		Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: fmt.Sprintf("ra_new%03d", n), ArtifactID: aid, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}},
	})
	m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: aid, SHA256: snapshottest.SHA256(1_000_000 + n), SizeBytes: 42, SourceType: "MANAGED"})
}
