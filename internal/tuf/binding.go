package tuf

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

// ErrAnswerRefused is wrapped by every AnswerError: an update answer that
// the verified metadata does not back.
var ErrAnswerRefused = errors.New("update answer refused by the signed metadata")

// AnswerQuery is the update check a client made: what it runs and asked
// for.
type AnswerQuery struct {
	TenantID      string
	Product       string
	Channel       string
	Platform      string
	Arch          string
	InstallerType string // optional: "" means any
	Version       string // the installed version, strict semver
}

// Answer is what an update-check answer offers (docs/api.md): the
// release and its artifact, with the artifact's TUF target path when the
// server gives it (`artifact.target`).
type Answer struct {
	ReleaseID  string // release.release_id
	ProductID  string // release.product_id
	Channel    string // release.channel
	Version    string // release.version
	ArtifactID string // artifact.artifact_id
	SHA256     string // artifact.sha256
	SizeBytes  int64  // artifact.size_bytes
	Target     string // artifact.target; "" to find it by release and artifact
}

// AnswerError names the field of an update answer that the verified
// metadata refuses.
type AnswerError struct {
	Field  string // the answer's or the query's field: "release.version", "platform", …
	Reason string
}

func (e *AnswerError) Error() string {
	return "update answer: " + e.Field + ": " + e.Reason
}

func (e *AnswerError) Unwrap() error { return ErrAnswerRefused }

func refuse(field, format string, args ...any) error {
	return &AnswerError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// CheckAnswer binds an update answer to the verified repository, the
// query and the installed version, and returns the artifact target to
// download (then VerifyArtifact). It refuses, with an *AnswerError naming
// the field, when:
//
//   - the repository is not fresh at now (Repository.Fresh) or is another
//     tenant's;
//   - the target is not in the verified metadata (not listed, or listed
//     by no role the product delegates);
//   - the answer disagrees with the target's signed fields (release,
//     artifact, sha256, size, version, product, channel);
//   - the target is not for the query's product, channel, platform, arch
//     (and installer type when the query names one);
//   - the release is not ACTIVE, or is revoked, in the current metadata,
//     or its version is blocked for the product (the blocked-versions
//     document);
//   - the version is not newer than the installed one. No signed policy
//     can allow a downgrade today (policies have no such setting,
//     docs/conditions.md), so every downgrade and every re-install of the
//     same version is refused.
func CheckAnswer(repo *Repository, q AnswerQuery, a Answer, now time.Time) (Target, error) {
	if repo == nil {
		return Target{}, refuse("repository", "no verified metadata")
	}
	if repo.TenantID != q.TenantID {
		return Target{}, refuse("tenant", "metadata is for tenant %q, the query for %q", repo.TenantID, q.TenantID)
	}
	if err := repo.Fresh(now); err != nil {
		return Target{}, &AnswerError{Field: "metadata", Reason: err.Error()}
	}
	installed, err := semver.StrictNewVersion(q.Version)
	if err != nil {
		return Target{}, refuse("version", "installed version %q is not strict semver", q.Version)
	}

	var t Target
	if a.Target != "" {
		if t, err = repo.Target(a.Target); err != nil {
			return Target{}, refuse("artifact.target", "%s is not in the verified metadata", a.Target)
		}
	} else if t, err = repo.findTarget(q.Product, a.ReleaseID, a.ArtifactID); err != nil {
		return Target{}, err
	}
	c := t.Custom

	// The answer must say what the signed target says.
	for _, f := range []struct{ field, got, want string }{
		{"release.release_id", a.ReleaseID, c.Release},
		{"release.product_id", a.ProductID, c.Product},
		{"release.channel", a.Channel, c.Channel},
		{"release.version", a.Version, c.Version},
		{"artifact.artifact_id", a.ArtifactID, c.Artifact},
		{"artifact.sha256", strings.ToLower(a.SHA256), t.SHA256},
		{"artifact.size_bytes", strconv.FormatInt(a.SizeBytes, 10), strconv.FormatInt(t.Length, 10)},
	} {
		if f.got != f.want {
			return Target{}, refuse(f.field, "answer says %q, the signed target %s says %q", f.got, t.Path, f.want)
		}
	}
	// The target must be what the query asked for.
	for _, f := range []struct{ field, asked, signed string }{
		{"product", q.Product, c.Product},
		{"channel", q.Channel, c.Channel},
		{"platform", q.Platform, c.Platform},
		{"arch", q.Arch, c.Arch},
	} {
		if f.asked != f.signed {
			return Target{}, refuse(f.field, "target %s is for %s %q, the query asked for %q", t.Path, f.field, f.signed, f.asked)
		}
	}
	if q.InstallerType != "" && q.InstallerType != c.InstallerType {
		return Target{}, refuse("installer_type", "target %s is a %q installer, the query asked for %q", t.Path, c.InstallerType, q.InstallerType)
	}
	// The release must be live in the current metadata.
	if c.Status != catalog.ReleaseActive {
		return Target{}, refuse("release.status", "release %s is %s in the current metadata", c.Release, c.Status)
	}
	if c.RevokedAt != nil {
		return Target{}, refuse("release.status", "release %s was revoked at %s", c.Release, c.RevokedAt.UTC().Format(time.RFC3339))
	}
	offered, err := semver.StrictNewVersion(c.Version)
	if err != nil {
		return Target{}, refuse("release.version", "signed version %q is not strict semver", c.Version)
	}
	if blocked, err := repo.blocked(c.Product, offered); err != nil {
		return Target{}, err
	} else if blocked {
		return Target{}, refuse("release.version", "version %s of %s is blocked", c.Version, c.Product)
	}
	if !offered.GreaterThan(installed) {
		return Target{}, refuse("release.version", "%s is not newer than the installed %s (no signed policy allows a downgrade)", c.Version, q.Version)
	}
	return t, nil
}

// findTarget looks for the target of release and artifact among the
// product's targets (its role and its bins).
func (r *Repository) findTarget(productID, releaseID, artifactID string) (Target, error) {
	role := ProductRole(productID)
	if r.Roles[role] == nil {
		return Target{}, refuse("product", "product %s is not in the verified metadata", productID)
	}
	errFound := errors.New("found")
	var path string
	for _, name := range productRoles(r.Roles, role) {
		err := eachArtifact(r.Roles, r.compact, name, func(e heldTarget) error {
			var c struct {
				Artifact string `json:"artifact"`
				Release  string `json:"release"`
			}
			if json.Unmarshal([]byte(e.custom), &c) == nil && c.Release == releaseID && c.Artifact == artifactID {
				path = e.path
				return errFound
			}
			return nil
		})
		if err != nil {
			return r.Target(path)
		}
	}
	return Target{}, refuse("artifact.target", "no target of product %s for release %s and artifact %s in the verified metadata", productID, releaseID, artifactID)
}

// blocked says whether the blocked-versions document blocks v of the
// product.
func (r *Repository) blocked(productID string, v *semver.Version) (bool, error) {
	data, ok := r.Docs[DocBlockedVersions]
	if !ok {
		return false, refuse("metadata", "document %s missing", DocBlockedVersions)
	}
	var list []snapshot.BlockedVersion
	if err := json.Unmarshal(data, &list); err != nil {
		return false, refuse("metadata", "document %s: %v", DocBlockedVersions, err)
	}
	for _, b := range list {
		if b.ProductID != productID {
			continue
		}
		if bv, err := semver.StrictNewVersion(b.BlockedVersion); err == nil && bv.Equal(v) || b.BlockedVersion == v.Original() {
			return true, nil
		}
	}
	return false, nil
}
