package license

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

// Fixed ids so that failures are readable; they are valid catalog ids.
const (
	tenantA  = "ten_00000000000000000000000001"
	tenantB  = "ten_00000000000000000000000002"
	product1 = "prd_00000000000000000000000001"
	product2 = "prd_00000000000000000000000002"
	entAuto  = "ent_00000000000000000000000001" // automatic, 10 mirror seats
	entOne   = "ent_00000000000000000000000002" // automatic, 1 mirror seat
	entExpl  = "ent_00000000000000000000000003" // explicit, 5 mirror seats
	entNone  = "ent_00000000000000000000000004" // no seats for our mirror
	entLater = "ent_00000000000000000000000005" // starts in the future
	entBig   = "ent_00000000000000000000000006" // 1,000,000 mirror seats (benchmarks)
	mirror1  = "mir_00000000000000000000000001"
	mirror2  = "mir_00000000000000000000000002"
)

// t0 is the tests' "now"; the fixture's snapshot and entitlements are
// current at t0.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testKey(seed byte) ed25519.PrivateKey {
	s := sha256.Sum256([]byte{seed})
	return ed25519.NewKeyFromSeed(s[:])
}

var (
	vendorKey  = testKey(1)
	mirror1Key = testKey(2)
	mirror2Key = testKey(3)
	rogueKey   = testKey(4)
)

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func vendorKeys() map[string]ed25519.PublicKey {
	return map[string]ed25519.PublicKey{KeyID(pub(vendorKey)): pub(vendorKey)}
}

func policyJSON(t testing.TB, p map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.ParseEntitlementPolicy(b); err != nil {
		t.Fatalf("fixture policy %s: %v", b, err)
	}
	return b
}

// testManifest is a manifest of tenantA held by mirror1 (and listing
// mirror2's key too), valid at t0.
func testManifest(t testing.TB) *snapshot.Manifest {
	t.Helper()
	start := t0.Add(-24 * time.Hour)
	later := t0.Add(24 * time.Hour)
	end := t0.Add(365 * 24 * time.Hour)
	ent := func(id, product string, start time.Time, end *time.Time, p map[string]any) snapshot.Entitlement {
		return snapshot.Entitlement{EntitlementID: id, ProductID: product, Policy: policyJSON(t, p), StartsAt: start, EndsAt: end}
	}
	return &snapshot.Manifest{
		Schema: 1, SnapshotID: "snp_00000000000000000000000001", TenantID: tenantA, Sequence: 1,
		CreatedAt: t0.Add(-time.Hour), ExpiresAt: t0.Add(30 * 24 * time.Hour),
		Tenant: snapshot.Tenant{TenantID: tenantA, Name: "Acme", Status: catalog.TenantActive, Metadata: json.RawMessage(`{}`)},
		Products: []snapshot.Product{
			{ProductID: product1, Name: "Product One", Distribution: catalog.DistributionLicensed, Metadata: json.RawMessage(`{}`)},
			{ProductID: product2, Name: "Product Two", Distribution: catalog.DistributionLicensed, Metadata: json.RawMessage(`{}`)},
		},
		Releases: []snapshot.Release{}, Artifacts: []snapshot.Artifact{}, Policies: []snapshot.Policy{},
		BlockedVersions: []snapshot.BlockedVersion{}, Rollouts: []snapshot.Rollout{},
		Entitlements: []snapshot.Entitlement{
			ent(entAuto, product1, start, &end, map[string]any{
				"max_seats": 20, "lease_ttl": "1h", "offline_grace": "2h", "features": []string{"pro", "sso"},
				"mirror_seats": map[string]int{mirror1: 10, mirror2: 5},
			}),
			ent(entOne, product2, start, nil, map[string]any{
				"max_seats": 1, "lease_ttl": "10m", "mirror_seats": map[string]int{mirror1: 1},
			}),
			ent(entExpl, product1, start, nil, map[string]any{
				"max_seats": 5, "seat_assignment_mode": "explicit", "mirror_seats": map[string]int{mirror1: 5},
			}),
			ent(entNone, product2, start, nil, map[string]any{"max_seats": 3, "mirror_seats": map[string]int{mirror2: 3}}),
			ent(entLater, product1, later, nil, map[string]any{"max_seats": 3, "mirror_seats": map[string]int{mirror1: 3}}),
			ent(entBig, product2, start, nil, map[string]any{"max_seats": 1_000_000, "mirror_seats": map[string]int{mirror1: 1_000_000}}),
		},
		SeatAssignments: []snapshot.SeatAssignment{
			{SeatAssignmentID: "sea_00000000000000000000000001", EntitlementID: entExpl, SubjectType: "user", SubjectID: "alice", AssignedAt: start},
			{SeatAssignmentID: "sea_00000000000000000000000002", EntitlementID: entExpl, SubjectType: "user", SubjectID: "bob", AssignedAt: start, RevokedAt: &t0},
		},
		MirrorKeys: []snapshot.MirrorKey{
			{MirrorID: mirror1, PublicKey: base64.StdEncoding.EncodeToString(pub(mirror1Key))},
			{MirrorID: mirror2, PublicKey: base64.StdEncoding.EncodeToString(pub(mirror2Key))},
		},
	}
}

// vendorClaims is a valid vendor-signed lease of entAuto at t0.
func vendorClaims() Claims {
	return Claims{
		LeaseID: "lea_00000000000000000000000001", EntitlementID: entAuto, TenantID: tenantA, ProductID: product1,
		SubjectType: "machine", SubjectID: "host-1", Features: []string{"pro"},
		IssuedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix(), Grace: 600, Issuer: IssuerVendor,
	}
}

// mirrorClaims is a valid mirror1-signed lease of entAuto at t0.
func mirrorClaims() Claims {
	c := vendorClaims()
	c.Issuer = "mirror:" + mirror1
	return c
}

func mustIssue(t testing.TB, c Claims, k ed25519.PrivateKey) string {
	t.Helper()
	tok, err := Issue(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
