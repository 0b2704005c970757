package tufhttp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func signer(t testing.TB, seed byte) tuf.Signer {
	t.Helper()
	var s [ed25519.SeedSize]byte
	s[0], s[1] = seed, 0x3c
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

// vendor publishes one tenant's repository into a MemRepo, with its
// clock at the real time (tuf-js reads the system clock).
type vendor struct {
	t        testing.TB
	tenantID string
	rootKeys []tuf.Signer
	targets  tuf.Signer
	snap     tuf.Signer
	ts       tuf.Signer
	builder  *tuf.Builder
	state    *tuf.State
	repo     *MemRepo
	root     *tuf.Root
	rootData []byte // the first root: what clients are initialised with
	now      time.Time
}

func newVendor(t testing.TB, po tuf.ProductOptions) *vendor {
	t.Helper()
	v := &vendor{
		t: t, tenantID: snapshottest.TenantID,
		rootKeys: []tuf.Signer{signer(t, 1), signer(t, 2), signer(t, 3)},
		targets:  signer(t, 10), snap: signer(t, 11), ts: signer(t, 12),
		repo: NewMemRepo(), now: time.Now().UTC().Truncate(time.Second),
	}
	ps, err := tuf.NewProductSet(po, signer(t, 13))
	if err != nil {
		t.Fatal(err)
	}
	v.builder = &tuf.Builder{TenantID: v.tenantID, Products: ps, Keys: tuf.TenantKeys{
		Targets: []tuf.Signer{v.targets}, Snapshot: []tuf.Signer{v.snap}, Timestamp: []tuf.Signer{v.ts},
	}}
	r, err := tuf.NewRoot(v.spec(1, v.ts))
	if err != nil {
		t.Fatal(err)
	}
	v.publishRoot(r, nil, v.rootKeys[0], v.rootKeys[1])
	v.rootData = v.repo.Get(tuf.MetadataPath(metadata.ROOT, 1))
	return v
}

func (v *vendor) spec(version int64, ts tuf.Signer) tuf.RootSpec {
	return tuf.RootSpec{
		TenantID: v.tenantID, Version: version, Expires: v.now.Add(5 * 365 * 24 * time.Hour),
		Root:    tuf.RoleKeys{Keys: pubs(v.t, v.rootKeys...), Threshold: 2},
		Targets: tuf.RoleKeys{Keys: pubs(v.t, v.targets), Threshold: 1}, Snapshot: tuf.RoleKeys{Keys: pubs(v.t, v.snap), Threshold: 1},
		Timestamp: tuf.RoleKeys{Keys: pubs(v.t, ts), Threshold: 1},
	}
}

func (v *vendor) publishRoot(r, prev *tuf.Root, signers ...tuf.Signer) {
	v.t.Helper()
	data, err := tuf.SignRoot(context.Background(), r, signers...)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := tuf.CheckRoot(prev, r); err != nil {
		v.t.Fatal(err)
	}
	v.root = r
	v.repo.Set(tuf.MetadataPath(metadata.ROOT, r.Signed.Version), data)
}

// rotateTimestampKey publishes the next root with a new timestamp key
// (signed by the old and new root thresholds) and builds with it.
func (v *vendor) rotateTimestampKey(seed byte) {
	v.t.Helper()
	ts := signer(v.t, seed)
	next, err := tuf.NextRoot(v.root, v.spec(v.root.Signed.Version+1, ts))
	if err != nil {
		v.t.Fatal(err)
	}
	v.publishRoot(next, v.root, v.rootKeys[1], v.rootKeys[2])
	v.ts = ts
	v.builder.Keys.Timestamp = []tuf.Signer{ts}
}

func (v *vendor) build(m *snapshot.Manifest) []tuf.File {
	v.t.Helper()
	st, files, err := v.builder.Build(context.Background(), v.state, m, v.now)
	if err != nil {
		v.t.Fatal(err)
	}
	v.state = st
	v.repo.Publish(files)
	return files
}

// serve starts the handler on a loopback server.
func (v *vendor) serve(o Options) *httptest.Server {
	v.t.Helper()
	srv := httptest.NewServer(New(v.repo, o))
	v.t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		v.t.Fatalf("server on %s, want loopback", srv.URL)
	}
	return srv
}

func view(products, releases, artifacts int) *snapshot.Manifest {
	in := snapshottest.Input(products, releases, artifacts)
	return snapshot.Build(in, snapshot.BuildOptions{SnapshotID: "s", Now: snapshottest.Now, TTL: time.Hour})
}

// withInstaller gives the last release's first artifact real bytes,
// publishes them and returns its target path and the bytes.
func withInstaller(m *snapshot.Manifest, size int) (target string, data []byte) {
	data = bytes.Repeat([]byte("outpost installer "), size/18+1)[:size]
	sum := sha256.Sum256(data)
	rel := &m.Releases[len(m.Releases)-1]
	ra := rel.Artifacts[0]
	for i := range m.Artifacts {
		if m.Artifacts[i].ArtifactID == ra.ArtifactID {
			m.Artifacts[i].SHA256, m.Artifacts[i].SizeBytes = hex.EncodeToString(sum[:]), int64(size)
		}
	}
	return tuf.ArtifactTarget(rel.ProductID, ra.ReleaseArtifactID), data
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// addRelease appends a release with one artifact to product p of m.
func addRelease(m *snapshot.Manifest, p int, n int) string {
	pid := m.Products[p].ProductID
	rid := fmt.Sprintf("rel_new%03d", n)
	aid := fmt.Sprintf("art_new%03d", n)
	raid := fmt.Sprintf("ra_new%03d", n)
	m.Releases = append(m.Releases, snapshot.Release{
		ReleaseID: rid, ProductID: pid, Channel: "stable", Version: fmt.Sprintf("9.0.%d", n),
		PublishedAt: snapshottest.Now, Status: "ACTIVE", Metadata: []byte("{}"),
		Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: raid, ArtifactID: aid, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}},
	})
	m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: aid, SHA256: snapshottest.SHA256(1_000_000 + n), SizeBytes: 42, SourceType: "MANAGED"})
	return tuf.ArtifactTarget(pid, raid)
}
