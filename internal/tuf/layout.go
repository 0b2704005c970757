package tuf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Repository layout (docs/metadata.md).
const (
	// TenantField is the custom field of root, timestamp, snapshot and
	// top-level targets naming the tenant the repository belongs to.
	TenantField = "x-outpost-tenant"

	// MetadataDir and TargetsDir are the two trees of a published
	// repository (consistent snapshots: "<version>.<role>.json" and
	// "<sha256>.<name>").
	MetadataDir = "metadata"
	TargetsDir  = "targets"

	// DocsDir holds the tenant's signed documents in the targets tree.
	DocsDir = "docs"

	// productRolePrefix starts a product's delegated role name.
	productRolePrefix = "p-"
)

// Tenant documents: what is not a file travels as a signed target
// document under docs/.
const (
	DocTenant          = "docs/tenant.json"
	DocPolicies        = "docs/policies.json"
	DocBlockedVersions = "docs/blocked_versions.json"
	DocRollouts        = "docs/rollouts.json"
	DocEntitlements    = "docs/entitlements.json"
	DocSeatAssignments = "docs/seat_assignments.json"
	DocMirrorKeys      = "docs/mirror_keys.json"
	// DocLeaseKeys lists the vendor keys that sign online leases; only
	// when the view has some (snapshot.Manifest.LeaseKeys).
	DocLeaseKeys = "docs/lease_keys.json"
)

// productDocName is the product document's name inside the product's
// directory: the product record and its releases without artifacts.
const productDocName = "product.json"

// ProductRole is the delegated role of a product.
func ProductRole(productID string) string { return productRolePrefix + productID }

// BinPrefix is the name prefix of a product's hashed bins:
// "b-" and 12 hex digits of sha256(product id). Bins are listed in every
// snapshot, so their names are kept short whatever the id's length.
func BinPrefix(productID string) string {
	h := sha256.Sum256([]byte(productID))
	return "b-" + hex.EncodeToString(h[:6])
}

// ProductDoc is the target path of a product's document.
func ProductDoc(productID string) string { return productID + "/" + productDocName }

// ArtifactTarget is the target path of one release artifact of a
// product: "<product_id>/<release_artifact_id>".
func ArtifactTarget(productID, releaseArtifactID string) string {
	return productID + "/" + releaseArtifactID
}

// DeltaTarget is the target path of a signed delta between two of a
// product's artifacts: "<product_id>/delta-<from_sha256>-<to_sha256>"
// (docs/deltas.md). The product role lists it as a target (custom
// DeltaCustom), so an unmodified TUF client can fetch it, and bundles
// carry deltas under it. It has two segments, like every target of the
// product, so the top-level delegation's "<product_id>/*" covers it.
func DeltaTarget(productID, fromSHA256, toSHA256 string) string {
	return productID + "/" + deltaPrefix + fromSHA256 + "-" + toSHA256
}

const deltaPrefix = "delta-"

// ParseDeltaTarget splits a delta target path (DeltaTarget); ok is false
// for any other path.
func ParseDeltaTarget(path string) (productID, fromSHA256, toSHA256 string, ok bool) {
	pid, name, ok1 := strings.Cut(path, "/")
	rest, ok2 := strings.CutPrefix(name, deltaPrefix)
	from, to, ok3 := strings.Cut(rest, "-")
	if !ok1 || !ok2 || !ok3 || pid == "" || !isHex64(from) || !isHex64(to) {
		return "", "", "", false
	}
	return pid, from, to, true
}

// IsDeltaTarget says whether path is a delta target's.
func IsDeltaTarget(path string) bool {
	_, _, _, ok := ParseDeltaTarget(path)
	return ok
}

// DeltaCustom is the custom field of a delta target: the delta, its base
// and the artifact it rebuilds (docs/deltas.md).
type DeltaCustom struct {
	// Fields in the order of their JSON names (canonical JSON).
	Delta        string `json:"delta"`
	From         string `json:"from"`
	FromArtifact string `json:"from_artifact"`
	To           string `json:"to"`
	ToArtifact   string `json:"to_artifact"`
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// MetadataPath is where a role's metadata is published: versioned
// ("metadata/<version>.<role>.json") except the timestamp.
func MetadataPath(role string, version int64) string {
	if role == "timestamp" || version <= 0 {
		return MetadataDir + "/" + role + ".json"
	}
	return MetadataDir + "/" + strconv.FormatInt(version, 10) + "." + role + ".json"
}

// TargetPath is where a target is published: "targets/<dir>/<sha256>.<base>".
func TargetPath(target, sha256hex string) string {
	dir, base := "", target
	if i := strings.LastIndexByte(target, '/'); i >= 0 {
		dir, base = target[:i+1], target[i+1:]
	}
	return TargetsDir + "/" + dir + sha256hex + "." + base
}

// Custom is the custom field of an artifact target: the release artifact,
// its release and the artifact, enough to rebuild the manifest and to
// bind an update answer to the query.
type Custom struct {
	// Fields in the order of their JSON names: the encoding is then
	// canonical JSON as it stands (fastBin).
	Arch            string     `json:"arch"`
	Artifact        string     `json:"artifact"`
	Channel         string     `json:"channel"`
	InstallerType   string     `json:"installer_type"`
	Platform        string     `json:"platform"`
	Product         string     `json:"product"`
	PublishedAt     time.Time  `json:"published_at"`
	Release         string     `json:"release"`
	ReleaseArtifact string     `json:"release_artifact"`
	ReleaseMetadata string     `json:"release_metadata,omitempty"` // JSON text: canonical JSON has no floats
	RequiresAdmin   bool       `json:"requires_admin,omitempty"`
	RevokedAt       *time.Time `json:"revoked_at,omitempty"`
	SourceType      string     `json:"source_type,omitempty"`
	Status          string     `json:"status"`
	Version         string     `json:"version"`
}

// parseMetaName splits "<role>.json" from snapshot meta.
func parseMetaName(name string) (string, error) {
	role, ok := strings.CutSuffix(name, ".json")
	if !ok || role == "" {
		return "", fmt.Errorf("meta name %q: want <role>.json", name)
	}
	return role, nil
}
