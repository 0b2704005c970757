// Package snapshottest generates deterministic catalogs, manifests and
// signing keys for tests and benchmarks of packages that consume
// snapshots (the update engine, the mirror).
package snapshottest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

// Now is the build time of generated manifests; they expire TTL later.
var Now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TTL is the lifetime of generated manifests.
const TTL = 10 * 365 * 24 * time.Hour

// TenantID is the tenant of generated inputs and manifests.
var TenantID = ID(catalog.PrefixTenant, 1)

const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// ID returns a deterministic compact id (prefix, "_", 6 base32
// characters) that sorts by n. It is shorter than the catalog's 26
// characters so that a 100,000-release manifest stays under the default
// 64 MiB envelope cap (with full-length ids it is ~78 MB).
func ID(prefix string, n int) string {
	var b [6]byte
	for i := range b {
		b[i] = '0'
	}
	for i, v := len(b)-1, uint64(n); v > 0 && i >= 0; i, v = i-1, v/32 {
		b[i] = idAlphabet[v%32]
	}
	return prefix + "_" + string(b[:])
}

// SHA256 returns a deterministic sha256 hex for artifact n.
func SHA256(n int) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:])
}

// Signer returns a deterministic signing key derived from seed.
func Signer(seed byte) snapshot.Signer {
	var s [ed25519.SeedSize]byte
	s[0], s[1] = seed, 0x5a
	k := ed25519.NewKeyFromSeed(s[:])
	return snapshot.Signer{KeyID: snapshot.KeyID(k.Public().(ed25519.PublicKey)), Key: k}
}

// Input returns a catalog for TenantID (active): products open products,
// each with releasesPerProduct releases (channel stable, versions
// 1.x.y ascending with the release id) of artifactsPerRelease VERIFIED
// artifacts each (platforms linux, windows, macos in turn), plus per
// product one policy, one blocked version, one rollout on its newest
// release, one current entitlement with one seat, and one active mirror
// with a key. Every list is sorted by id.
func Input(products, releasesPerProduct, artifactsPerRelease int) *catalog.SnapshotInput {
	at := Now.Add(-24 * time.Hour)
	in := &catalog.SnapshotInput{
		Tenant:   &catalog.Tenant{TenantID: TenantID, Name: "Tenant One", Status: catalog.TenantActive, CreatedAt: at, Metadata: json.RawMessage(`{}`)},
		Sequence: 1,
	}
	platforms := []string{"linux", "windows", "macos"}
	installers := []string{"tar.gz", "msi", "dmg"}
	rel, art := 0, 0
	for p := 1; p <= products; p++ {
		pid := ID(catalog.PrefixProduct, p)
		in.Products = append(in.Products, &catalog.Product{
			ProductID: pid, Name: fmt.Sprintf("Product %d", p), Distribution: catalog.DistributionOpen,
			CreatedAt: at, Metadata: json.RawMessage(`{}`),
		})
		for r := 0; r < releasesPerProduct; r++ {
			rel++
			rid := ID(catalog.PrefixRelease, rel)
			in.Releases = append(in.Releases, &catalog.Release{
				ReleaseID: rid, ProductID: pid, Channel: "stable",
				Version:     fmt.Sprintf("1.%d.%d", r/1000, r%1000),
				PublishedAt: at, Status: catalog.ReleaseActive, Metadata: json.RawMessage(`{}`),
			})
			for a := 0; a < artifactsPerRelease; a++ {
				art++
				aid := ID(catalog.PrefixArtifact, art)
				in.Artifacts = append(in.Artifacts, &catalog.Artifact{
					ArtifactID: aid, SourceType: catalog.SourceManaged, SHA256: SHA256(art),
					SizeBytes: int64(1000 + art), Status: catalog.ArtifactVerified, CreatedAt: at,
				})
				in.ReleaseArtifacts = append(in.ReleaseArtifacts, &catalog.ReleaseArtifact{
					ReleaseArtifactID: ID(catalog.PrefixReleaseArtifact, art), ReleaseID: rid, ArtifactID: aid,
					Platform: platforms[a%3], Arch: "x64", InstallerType: installers[a%3],
				})
			}
		}
		if releasesPerProduct > 0 {
			in.Rollouts = append(in.Rollouts, &catalog.Rollout{
				RolloutID: ID(catalog.PrefixRollout, p), ProductID: pid, Channel: "stable",
				ReleaseID: ID(catalog.PrefixRelease, rel), Percentage: 25, Status: catalog.RolloutActive,
				CreatedAt: at, UpdatedAt: at,
			})
		}
		in.Policies = append(in.Policies, &catalog.Policy{
			PolicyID: ID(catalog.PrefixPolicy, p), TenantID: TenantID, ProductID: pid, Channel: "stable",
			Action: catalog.ActionDownload, Conditions: json.RawMessage(`{"platforms":["linux"]}`), Priority: 10, Version: 1,
			CreatedAt: at, UpdatedAt: at,
		})
		in.BlockedVersions = append(in.BlockedVersions, &catalog.BlockedVersion{
			BlocklistID: ID(catalog.PrefixBlocked, p), TenantID: TenantID, ProductID: pid,
			BlockedVersion: "1.0.0", Reason: "known bad", CreatedAt: at,
		})
		eid := ID(catalog.PrefixEntitlement, p)
		in.Entitlements = append(in.Entitlements, &catalog.Entitlement{
			EntitlementID: eid, TenantID: TenantID, ProductID: pid, Policy: json.RawMessage(`{"max_seats":10}`),
			StartsAt: at, CreatedAt: at, UpdatedAt: at,
		})
		in.SeatAssignments = append(in.SeatAssignments, &catalog.SeatAssignment{
			SeatAssignmentID: ID(catalog.PrefixSeat, p), EntitlementID: eid, SubjectType: catalog.SubjectMachine,
			SubjectID: fmt.Sprintf("host-%d", p), AssignedAt: at, AssignedBy: "admin",
		})
	}
	mk := Signer(200).Key.Public().(ed25519.PublicKey)
	in.Mirrors = []*catalog.Mirror{{
		MirrorID: ID(catalog.PrefixMirror, 1), TenantID: TenantID, Name: "site", Status: catalog.MirrorActive,
		PublicKey: base64.StdEncoding.EncodeToString(mk), AllowedChannels: []string{"stable"}, CreatedAt: at, UpdatedAt: at,
	}}
	return in
}

// Manifest builds the manifest of Input(products, releasesPerProduct,
// artifactsPerRelease) at Now, sequence 1.
func Manifest(products, releasesPerProduct, artifactsPerRelease int) *snapshot.Manifest {
	return snapshot.Build(Input(products, releasesPerProduct, artifactsPerRelease), snapshot.BuildOptions{
		SnapshotID: ID(catalog.PrefixSnapshot, 1), Now: Now, TTL: TTL,
	})
}
