package update

import (
	"net/url"
	"strconv"
	"time"

	"github.com/outpost/outpost/internal/jsonx"
	"github.com/outpost/outpost/internal/snapshot"
)

// ArtifactPath is the relative download path of an artifact in an answer:
// ArtifactPath + artifact_id + "/download". It is relative so that the
// control plane and a mirror give byte-identical answers.
const ArtifactPath = "/v1/artifacts/"

// DeltaPath is the relative download path of a delta in an answer:
// DeltaPath + delta_id + "/download".
const DeltaPath = "/v1/deltas/"

// Decision is the engine's answer to one check. The pointers point into
// the indexed manifest and must not be modified.
type Decision struct {
	UpdateAvailable bool
	Action          string // NONE when no update is available
	Reason          string // why not, when no update is available
	PolicyID        string // the policy that decided, "" for the default
	Release         *snapshot.Release
	ReleaseArtifact *snapshot.ReleaseArtifact
	Artifact        *snapshot.Artifact
	// Delta, when the query named the installed artifact's sha256 and the
	// snapshot lists a delta from it to Artifact.
	Delta      *snapshot.Delta
	SnapshotID string
	Sequence   int64

	rel *releaseEntry
}

// AppendJSON appends the response document (docs/conditions.md) to dst.
// The bytes depend only on the decision, so every daemon holding the same
// snapshot answers the same query with the same bytes.
func (d *Decision) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"update_available":`...)
	dst = strconv.AppendBool(dst, d.UpdateAvailable && d.Release != nil && d.ReleaseArtifact != nil && d.Artifact != nil)
	dst = append(dst, `,"action":`...)
	dst = appendString(dst, d.Action)
	if d.UpdateAvailable && d.Release != nil && d.ReleaseArtifact != nil && d.Artifact != nil {
		r := d.Release
		dst = append(dst, `,"release":{"release_id":`...)
		dst = appendString(dst, r.ReleaseID)
		dst = append(dst, `,"product_id":`...)
		dst = appendString(dst, r.ProductID)
		dst = append(dst, `,"channel":`...)
		dst = appendString(dst, r.Channel)
		dst = append(dst, `,"version":`...)
		dst = appendString(dst, r.Version)
		dst = append(dst, `,"published_at":"`...)
		// Formatted here rather than when indexing: it allocates nothing and
		// most releases are never offered.
		dst = r.PublishedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, `","metadata":`...)
		if d.rel != nil {
			dst = append(dst, d.rel.metadata...)
		} else {
			dst = append(dst, compactObject(r.Metadata)...)
		}
		ra, a := d.ReleaseArtifact, d.Artifact
		dst = append(dst, `},"artifact":{"artifact_id":`...)
		dst = appendString(dst, a.ArtifactID)
		dst = append(dst, `,"sha256":`...)
		dst = appendString(dst, a.SHA256)
		dst = append(dst, `,"size_bytes":`...)
		dst = strconv.AppendInt(dst, a.SizeBytes, 10)
		dst = append(dst, `,"url":`...)
		dst = append(dst, '"')
		dst = appendContent(dst, ArtifactPath)
		if idChars(a.ArtifactID) {
			dst = appendContent(dst, a.ArtifactID)
		} else {
			dst = appendContent(dst, url.PathEscape(a.ArtifactID))
		}
		dst = append(dst, `/download"`...)
		dst = append(dst, `,"installer_type":`...)
		dst = appendString(dst, ra.InstallerType)
		dst = append(dst, `,"requires_admin":`...)
		dst = strconv.AppendBool(dst, ra.RequiresAdmin)
		// The TUF target path (internal/tuf.ArtifactTarget), so a TUF
		// client fetches and verifies exactly the signed target.
		dst = append(dst, `,"target":"`...)
		dst = appendContent(dst, r.ProductID)
		dst = append(dst, '/')
		dst = appendContent(dst, ra.ReleaseArtifactID)
		dst = append(dst, `"}`...)
		if dl := d.Delta; dl != nil {
			dst = append(dst, `,"delta":{"delta_id":`...)
			dst = appendString(dst, dl.DeltaID)
			dst = append(dst, `,"from_sha256":`...)
			dst = appendString(dst, dl.FromSHA256)
			dst = append(dst, `,"to_sha256":`...)
			dst = appendString(dst, dl.ToSHA256)
			dst = append(dst, `,"sha256":`...)
			dst = appendString(dst, dl.SHA256)
			dst = append(dst, `,"size_bytes":`...)
			dst = strconv.AppendInt(dst, dl.SizeBytes, 10)
			dst = append(dst, `,"url":"`...)
			dst = appendContent(dst, DeltaPath)
			dst = appendContent(dst, url.PathEscape(dl.DeltaID))
			dst = append(dst, `/download"}`...)
		}
	} else {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, d.Reason)
	}
	dst = append(dst, `,"snapshot":{"snapshot_id":`...)
	dst = appendString(dst, d.SnapshotID)
	dst = append(dst, `,"sequence":`...)
	dst = strconv.AppendInt(dst, d.Sequence, 10)
	dst = append(dst, "}}"...)
	return dst
}

// appendString appends s as a JSON string (the rules of internal/jsonx).
func appendString(dst []byte, s string) []byte { return jsonx.AppendString(dst, s) }

// appendContent appends s escaped for a JSON string, without the quotes.
func appendContent(dst []byte, s string) []byte { return jsonx.AppendContent(dst, s) }
