package update

import (
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/outpost/outpost/internal/snapshot"
)

// ArtifactPath is the relative download path of an artifact in an answer:
// ArtifactPath + artifact_id + "/download". It is relative so that the
// control plane and a mirror give byte-identical answers.
const ArtifactPath = "/v1/artifacts/"

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
	SnapshotID      string
	Sequence        int64

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
		dst = append(dst, '}')
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

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Control characters, quotes and
// backslashes are escaped, U+2028/U+2029 too (JavaScript), invalid UTF-8
// becomes U+FFFD, as encoding/json does (without its HTML escaping).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendContent(dst, s)
	return append(dst, '"')
}

// appendContent appends s escaped for a JSON string, without the quotes.
func appendContent(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	return append(dst, s[start:]...)
}
