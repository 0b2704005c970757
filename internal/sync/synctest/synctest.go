// Package synctest is test support for the mirror: a tenant's TUF
// repository built from simple artifact lists (TUFVendor), a fake control
// plane on loopback (httptest) serving it with byte accounting and fault
// hooks (TUFControlPlane), and TUF bundles of it.
package synctest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

// Art is one artifact in a test snapshot: a release of its own.
type Art struct {
	ID      string
	Channel string // default "stable"
	Data    []byte
	Revoked bool
	// SizeBytes overrides len(Data) in the manifest when non-zero.
	SizeBytes int64
}

// SHA is the hex sha256 of b.
func SHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// manifest is a view of tenant at seq holding arts, each a release of
// product prd_1.
func manifest(tenant string, seq int64, arts []Art) *snapshot.Manifest {
	now := time.Now().UTC().Truncate(time.Second)
	obj := json.RawMessage(`{}`)
	m := &snapshot.Manifest{
		Schema: snapshot.Schema, SnapshotID: fmt.Sprintf("snp_%06d", seq), TenantID: tenant, Sequence: seq,
		CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(24 * time.Hour),
		Tenant:   snapshot.Tenant{TenantID: tenant, Name: "Acme", Status: "active", Metadata: obj},
		Products: []snapshot.Product{{ProductID: "prd_1", Name: "Widget", Distribution: "open", Metadata: obj}},
	}
	for i, a := range arts {
		ch := a.Channel
		if ch == "" {
			ch = "stable"
		}
		size := int64(len(a.Data))
		if a.SizeBytes != 0 {
			size = a.SizeBytes
		}
		r := snapshot.Release{
			ReleaseID: "rel_" + a.ID, ProductID: "prd_1", Channel: ch, Version: fmt.Sprintf("1.0.%d", i),
			PublishedAt: now.Add(-time.Hour), Status: "ACTIVE", Metadata: obj,
			Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: "ra_" + a.ID, ArtifactID: a.ID, Platform: "linux", Arch: "x64", InstallerType: "zip"}},
		}
		if a.Revoked {
			r.Status = "REVOKED"
			t := now.Add(-time.Minute)
			r.RevokedAt = &t
		}
		m.Releases = append(m.Releases, r)
		m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: a.ID, SHA256: SHA(a.Data), SizeBytes: size, SourceType: "MANAGED"})
	}
	sort.Slice(m.Releases, func(i, j int) bool { return m.Releases[i].ReleaseID < m.Releases[j].ReleaseID })
	sort.Slice(m.Artifacts, func(i, j int) bool { return m.Artifacts[i].ArtifactID < m.Artifacts[j].ArtifactID })
	return m
}

// RangeStart parses "bytes=N-" (0 when absent).
func RangeStart(r *http.Request) int64 {
	v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSuffix(v, "-"), 10, 64)
	return n
}

// Random returns n random bytes.
func Random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
