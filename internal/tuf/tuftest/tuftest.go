// Package tuftest publishes a tenant's TUF repository for tests of the
// packages that consume one (the mirror's state, sync and server, the
// client): a vendor with offline-style root keys and online keys, the
// internal/tuf builder, and a tufhttp.MemRepo holding what it published,
// including artifact bytes.
package tuftest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
)

// Signer returns a deterministic ed25519 signer derived from seed.
func Signer(t testing.TB, seed byte) tuf.Signer {
	t.Helper()
	var s [ed25519.SeedSize]byte
	s[0], s[1] = seed, 0x7e
	sg, err := tuf.NewEd25519Signer(ed25519.NewKeyFromSeed(s[:]))
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func pubs(t testing.TB, ss ...tuf.Signer) []*metadata.Key {
	t.Helper()
	out := make([]*metadata.Key, len(ss))
	for i, s := range ss {
		k, err := tuf.PublicKey(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = k
	}
	return out
}

// Vendor publishes one tenant's repository into Repo. Now is its clock
// (the real time at creation, truncated to the second).
type Vendor struct {
	T        testing.TB
	TenantID string
	RootKeys []tuf.Signer // threshold 2
	Targets  tuf.Signer
	Snap     tuf.Signer
	TS       tuf.Signer
	Builder  *tuf.Builder
	State    *tuf.State
	Repo     *tufhttp.MemRepo
	Root     *tuf.Root
	RootData []byte // the first root: what clients are initialised with
	Now      time.Time
	Options  tuf.TenantOptions
}

// NewVendor returns a vendor of tenantID ("" is snapshottest.TenantID)
// that has published its first root. seed varies every key, so two
// vendors with different seeds share none.
func NewVendor(t testing.TB, tenantID string, seed byte) *Vendor {
	t.Helper()
	if tenantID == "" {
		tenantID = snapshottest.TenantID
	}
	v := &Vendor{
		T: t, TenantID: tenantID,
		RootKeys: []tuf.Signer{Signer(t, seed+1), Signer(t, seed+2), Signer(t, seed+3)},
		Targets:  Signer(t, seed+10), Snap: Signer(t, seed+11), TS: Signer(t, seed+12),
		Repo: tufhttp.NewMemRepo(), Now: time.Now().UTC().Truncate(time.Second),
	}
	ps, err := tuf.NewProductSet(tuf.ProductOptions{}, Signer(t, seed+13))
	if err != nil {
		t.Fatal(err)
	}
	v.Builder = &tuf.Builder{TenantID: v.TenantID, Products: ps, Keys: tuf.TenantKeys{
		Targets: []tuf.Signer{v.Targets}, Snapshot: []tuf.Signer{v.Snap}, Timestamp: []tuf.Signer{v.TS},
	}}
	r, err := tuf.NewRoot(v.spec(1))
	if err != nil {
		t.Fatal(err)
	}
	v.publishRoot(r, nil, v.RootKeys[0], v.RootKeys[1])
	v.RootData = v.Repo.Get(tuf.MetadataPath(metadata.ROOT, 1))
	return v
}

func (v *Vendor) spec(version int64) tuf.RootSpec {
	return tuf.RootSpec{
		TenantID: v.TenantID, Version: version, Expires: v.Now.Add(5 * 365 * 24 * time.Hour),
		Root:    tuf.RoleKeys{Keys: pubs(v.T, v.RootKeys...), Threshold: 2},
		Targets: tuf.RoleKeys{Keys: pubs(v.T, v.Targets), Threshold: 1}, Snapshot: tuf.RoleKeys{Keys: pubs(v.T, v.Snap), Threshold: 1},
		Timestamp: tuf.RoleKeys{Keys: pubs(v.T, v.TS), Threshold: 1},
	}
}

func (v *Vendor) publishRoot(r, prev *tuf.Root, signers ...tuf.Signer) {
	v.T.Helper()
	data, err := tuf.SignRoot(context.Background(), r, signers...)
	if err != nil {
		v.T.Fatal(err)
	}
	if err := tuf.CheckRoot(prev, r); err != nil {
		v.T.Fatal(err)
	}
	v.Root = r
	v.Repo.Set(tuf.MetadataPath(metadata.ROOT, r.Signed.Version), data)
}

// RotateTimestampKey publishes the next root with a new timestamp key,
// signed by the old and the new root thresholds; the next build signs
// with it. The timestamp must be rebuilt (Refresh or Build) to count.
func (v *Vendor) RotateTimestampKey(seed byte) {
	v.T.Helper()
	v.TS = Signer(v.T, seed)
	next, err := tuf.NextRoot(v.Root, v.spec(v.Root.Signed.Version+1))
	if err != nil {
		v.T.Fatal(err)
	}
	v.publishRoot(next, v.Root, v.RootKeys[0], v.RootKeys[1], v.RootKeys[2])
	v.Builder.Keys.Timestamp = []tuf.Signer{v.TS}
}

// RotateRootKey replaces root key i by a new one (next root signed by
// the previous threshold and its own).
func (v *Vendor) RotateRootKey(i int, seed byte) {
	v.T.Helper()
	old := append([]tuf.Signer(nil), v.RootKeys...)
	v.RootKeys[i] = Signer(v.T, seed)
	next, err := tuf.NextRoot(v.Root, v.spec(v.Root.Signed.Version+1))
	if err != nil {
		v.T.Fatal(err)
	}
	signers := append([]tuf.Signer{}, old...)
	signers = append(signers, v.RootKeys[i])
	v.publishRoot(next, v.Root, signers...)
}

// Build publishes the repository for m and returns the files written.
func (v *Vendor) Build(m *snapshot.Manifest) []tuf.File {
	v.T.Helper()
	st, files, err := v.Builder.Build(context.Background(), v.State, m, v.Now)
	if err != nil {
		v.T.Fatal(err)
	}
	v.State = st
	v.Repo.Publish(files)
	return files
}

// Refresh re-signs the timestamp (and what nears expiry) at v.Now.
func (v *Vendor) Refresh() []tuf.File {
	v.T.Helper()
	st, files, err := v.Builder.Refresh(context.Background(), v.State, v.Now)
	if err != nil {
		v.T.Fatal(err)
	}
	v.State = st
	v.Repo.Publish(files)
	return files
}

// View is a small manifest: products × releases × artifacts, for
// tenant snapshottest.TenantID.
func View(products, releases, artifacts int) *snapshot.Manifest {
	in := snapshottest.Input(products, releases, artifacts)
	return snapshot.Build(in, snapshot.BuildOptions{SnapshotID: "s", Now: snapshottest.Now, TTL: time.Hour})
}

// WithBytes gives every artifact of m real bytes (a few hundred, unique
// per artifact) and returns them by sha256; Publish them after a Build.
func WithBytes(m *snapshot.Manifest) map[string][]byte {
	out := map[string][]byte{}
	for i := range m.Artifacts {
		a := &m.Artifacts[i]
		data := bytes.Repeat([]byte(fmt.Sprintf("installer %s ", a.ArtifactID)), 20)
		sum := sha256.Sum256(data)
		a.SHA256, a.SizeBytes = hex.EncodeToString(sum[:]), int64(len(data))
		out[a.SHA256] = data
	}
	return out
}

// PublishArtifacts puts the bytes of every artifact target of m in the
// repository (under each release artifact's consistent target path).
func (v *Vendor) PublishArtifacts(m *snapshot.Manifest, blobs map[string][]byte) {
	v.T.Helper()
	sums := map[string]string{}
	for _, a := range m.Artifacts {
		sums[a.ArtifactID] = a.SHA256
	}
	for _, r := range m.Releases {
		for _, ra := range r.Artifacts {
			sum := sums[ra.ArtifactID]
			if data, ok := blobs[sum]; ok {
				v.Repo.Set(tuf.TargetPath(tuf.ArtifactTarget(r.ProductID, ra.ReleaseArtifactID), sum), data)
			}
		}
	}
}

// AddRelease appends an ACTIVE release of product p with one artifact
// (real bytes, returned) and returns the release.
func AddRelease(m *snapshot.Manifest, p int, n int, version string) (*snapshot.Release, []byte) {
	pid := m.Products[p].ProductID
	data := bytes.Repeat([]byte(fmt.Sprintf("new installer %d ", n)), 20)
	sum := sha256.Sum256(data)
	aid := fmt.Sprintf("art_new%03d", n)
	m.Releases = append(m.Releases, snapshot.Release{
		ReleaseID: fmt.Sprintf("rel_new%03d", n), ProductID: pid, Channel: "stable", Version: version,
		PublishedAt: snapshottest.Now, Status: "ACTIVE", Metadata: []byte("{}"),
		Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: fmt.Sprintf("ra_new%03d", n), ArtifactID: aid, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}},
	})
	m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: aid, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data)), SourceType: "MANAGED"})
	return &m.Releases[len(m.Releases)-1], data
}

// Fetcher is a tuf.Fetcher reading a MemRepo by repository path.
type Fetcher struct{ Repo *tufhttp.MemRepo }

// Fetch implements tuf.Fetcher.
func (f Fetcher) Fetch(_ context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	b := f.Repo.Get(path)
	if b == nil {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrTooLarge)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Resign returns the metadata at path in the repository, edited and
// signed by signers only (an attacker holding those keys).
func Resign[T metadata.Roles](t testing.TB, v *Vendor, path string, edit func(*metadata.Metadata[T]), signers ...tuf.Signer) []byte {
	t.Helper()
	m, err := (&metadata.Metadata[T]{}).FromBytes(v.Repo.Get(path))
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	m.ClearSignatures()
	data, err := tuf.Export(m)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []metadata.Signature
	for _, s := range signers {
		sig, err := tuf.SignExported(context.Background(), data, s)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sig)
	}
	_, out, err := tuf.AddSignatures[T](data, sigs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
