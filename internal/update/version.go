package update

import (
	"math"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// version is a parsed semantic version. It mirrors semver.Version's
// precedence (build metadata ignored) but parses and compares without
// allocating, so a check costs no garbage.
type version struct {
	major, minor, patch uint64
	pre                 string
}

// maxVersionLen matches semver.MaxVersionLen.
const maxVersionLen = semver.MaxVersionLen

// parseVersion parses a strict semantic version (MAJOR.MINOR.PATCH with
// optional -PRERELEASE and +BUILD, no leading "v"), accepting exactly what
// semver.StrictNewVersion accepts.
func parseVersion(s string) (version, bool) {
	var v version
	if len(s) == 0 || len(s) > maxVersionLen {
		return v, false
	}
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return v, false
	}
	major, rest := s[:i], s[i+1:]
	i = strings.IndexByte(rest, '.')
	if i < 0 {
		return v, false
	}
	minor, rest := rest[:i], rest[i+1:]
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		if !validIdents(rest[i+1:], false) {
			return v, false
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.pre = rest[i+1:]
		if !validIdents(v.pre, true) {
			return v, false
		}
		rest = rest[:i]
	}
	var ok bool
	if v.major, ok = parseNum(major); !ok {
		return v, false
	}
	if v.minor, ok = parseNum(minor); !ok {
		return v, false
	}
	if v.patch, ok = parseNum(rest); !ok {
		return v, false
	}
	return v, true
}

// parseNum parses a version core number: digits, no leading zero, fits
// in uint64.
func parseNum(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	// By hand rather than strconv.ParseUint: indexing parses every
	// release's version, and this is several times faster.
	var n uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if d > 9 || n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// validIdents checks dot-separated pre-release (pre) or build identifiers:
// non-empty, [0-9A-Za-z-], and for pre-releases numeric ones without
// leading zeros.
func validIdents(s string, pre bool) bool {
	for {
		id := s
		i := strings.IndexByte(s, '.')
		if i >= 0 {
			id = s[:i]
		}
		if id == "" {
			return false
		}
		numeric := true
		for j := 0; j < len(id); j++ {
			c := id[j]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
		if i < 0 {
			return true
		}
		s = s[i+1:]
	}
}

// compare returns -1, 0 or 1 by semver precedence, exactly as
// semver.Version.Compare does.
func (v version) compare(o version) int {
	switch {
	case v.major != o.major:
		return cmpUint(v.major, o.major)
	case v.minor != o.minor:
		return cmpUint(v.minor, o.minor)
	case v.patch != o.patch:
		return cmpUint(v.patch, o.patch)
	}
	switch {
	case v.pre == o.pre:
		return 0
	case v.pre == "":
		return 1
	case o.pre == "":
		return -1
	}
	return comparePre(v.pre, o.pre)
}

func cmpUint(a, b uint64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// comparePre compares two non-empty pre-release strings identifier by
// identifier without splitting them into a slice.
func comparePre(a, b string) int {
	for a != "" || b != "" {
		var x, y string
		x, a = nextIdent(a)
		y, b = nextIdent(b)
		if d := comparePrePart(x, y); d != 0 {
			return d
		}
	}
	return 0
}

func nextIdent(s string) (id, rest string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// comparePrePart follows semver's comparePrePart: a missing identifier is
// lower, numbers (that fit in uint64) are lower than strings.
func comparePrePart(s, o string) int {
	if s == o {
		return 0
	}
	if s == "" {
		return -1
	}
	if o == "" {
		return 1
	}
	oi, oerr := strconv.ParseUint(o, 10, 64)
	si, serr := strconv.ParseUint(s, 10, 64)
	switch {
	case oerr != nil && serr != nil:
		if s > o {
			return 1
		}
		return -1
	case oerr != nil:
		return -1
	case serr != nil:
		return 1
	}
	if si > oi {
		return 1
	}
	return -1
}
