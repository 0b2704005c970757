package update

import (
	"net/url"
	"strings"

	"github.com/outpost/outpost/internal/catalog"
)

// Query is one update check: the client's product, channel, platform,
// arch, current version and (optionally) installer type and client id.
type Query struct {
	Product       string
	Channel       string
	Platform      string
	Arch          string
	InstallerType string // optional: "" means any
	Version       string // the client's current version, strict semver
	ClientID      string // optional: "" means not in any rollout
	// InstalledSHA256 is optional: the sha256 of the artifact the client
	// has installed, so the answer can offer a delta from it.
	InstalledSHA256 string
}

// maxQueryLen caps the raw query string of a check.
const maxQueryLen = 4096

// maxIDLen caps product ids in a query.
const maxIDLen = 128

// prepared is a validated query with its enums and version parsed.
type prepared struct {
	product, channel, clientID string
	installed                  string // sha256 of the installed artifact, "" when not given
	plat, arch                 int
	inst                       int // -1 for any
	ver                        version
}

// Validate checks every field of q; errors are EINVALID and name the field.
func (q *Query) Validate() error {
	_, err := q.prepare()
	return err
}

func (q *Query) prepare() (prepared, error) {
	p := prepared{product: q.Product, channel: q.Channel, clientID: q.ClientID, installed: q.InstalledSHA256, inst: -1}
	if q.InstalledSHA256 != "" && !hex64(q.InstalledSHA256) {
		return p, catalog.Invalid("installed_sha256", "must be 64 lowercase hex characters")
	}
	if q.Product == "" {
		return p, catalog.Invalid("product", "is required")
	}
	if len(q.Product) > maxIDLen || !idChars(q.Product) {
		return p, catalog.Invalid("product", "must be a product id")
	}
	if q.Channel == "" {
		return p, catalog.Invalid("channel", "is required")
	}
	if !validChannel(q.Channel) {
		return p, catalog.Invalid("channel", "must be lowercase letters, digits and dashes, starting with a letter, at most 32 characters")
	}
	if q.Platform == "" {
		return p, catalog.Invalid("platform", "is required")
	}
	if p.plat = indexOf(catalog.Platforms, q.Platform); p.plat < 0 {
		return p, catalog.Invalid("platform", "%q is not one of %s", truncate(q.Platform, 64), strings.Join(catalog.Platforms, ", "))
	}
	if q.Arch == "" {
		return p, catalog.Invalid("arch", "is required")
	}
	if p.arch = indexOf(catalog.Arches, q.Arch); p.arch < 0 {
		return p, catalog.Invalid("arch", "%q is not one of %s", truncate(q.Arch, 64), strings.Join(catalog.Arches, ", "))
	}
	if q.InstallerType != "" {
		if p.inst = indexOf(catalog.InstallerTypes, q.InstallerType); p.inst < 0 {
			return p, catalog.Invalid("installer_type", "%q is not one of %s", truncate(q.InstallerType, 64), strings.Join(catalog.InstallerTypes, ", "))
		}
	}
	if q.Version == "" {
		return p, catalog.Invalid("version", "is required")
	}
	var ok bool
	if p.ver, ok = parseVersion(q.Version); !ok {
		return p, catalog.Invalid("version", "%q is not a semantic version (MAJOR.MINOR.PATCH)", truncate(q.Version, 64))
	}
	if q.ClientID != "" {
		if err := validateClientID("client_id", q.ClientID); err != nil {
			return p, err
		}
	}
	return p, nil
}

// idChars reports whether s holds only [A-Za-z0-9_-].
func idChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validChannel is catalog.ValidateChannel's rule without the regexp:
// ^[a-z][a-z0-9-]{0,31}$.
func validChannel(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ParseQuery reads a check from decoded URL parameters. Unknown or
// repeated parameters are rejected, naming the parameter.
func ParseQuery(v url.Values) (*Query, error) {
	q := &Query{}
	for k, vals := range v {
		if len(vals) != 1 {
			return nil, catalog.Invalid(paramName(k), "given more than once")
		}
		if err := q.set(k, vals[0]); err != nil {
			return nil, err
		}
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

// ParseRawQuery reads a check from a raw (still escaped) query string into
// q without building a map; it allocates only to unescape values that hold
// escapes. Unknown or repeated parameters are rejected, naming the
// parameter.
func ParseRawQuery(raw string, q *Query) error {
	if err := parseRaw(raw, q); err != nil {
		return err
	}
	return q.Validate()
}

func parseRaw(raw string, q *Query) error {
	*q = Query{}
	if len(raw) > maxQueryLen {
		return catalog.Invalid("query", "must be at most %d bytes", maxQueryLen)
	}
	var seen uint8
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		k, err := unescape(k)
		if err != nil {
			return catalog.Invalid("query", "malformed percent-encoding")
		}
		bit := paramBit(k)
		if bit == 0 {
			return catalog.Invalid(paramName(k), "unknown parameter")
		}
		if seen&bit != 0 {
			return catalog.Invalid(k, "given more than once")
		}
		seen |= bit
		if val, err = unescape(val); err != nil {
			return catalog.Invalid(k, "malformed percent-encoding")
		}
		if err := q.set(k, val); err != nil {
			return err
		}
	}
	return nil
}

func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

func paramBit(k string) uint8 {
	switch k {
	case "product":
		return 1
	case "channel":
		return 2
	case "platform":
		return 4
	case "arch":
		return 8
	case "installer_type":
		return 16
	case "version":
		return 32
	case "client_id":
		return 64
	case "installed_sha256":
		return 128
	}
	return 0
}

// paramName makes an unknown parameter name safe to quote in a message.
func paramName(k string) string {
	if paramBit(k) != 0 {
		return k
	}
	if !printable(k) {
		return "query"
	}
	return "query parameter " + truncate(k, 64)
}

func (q *Query) set(k, v string) error {
	switch k {
	case "product":
		q.Product = v
	case "channel":
		q.Channel = v
	case "platform":
		q.Platform = v
	case "arch":
		q.Arch = v
	case "installer_type":
		q.InstallerType = v
	case "version":
		q.Version = v
	case "client_id":
		q.ClientID = v
	case "installed_sha256":
		q.InstalledSHA256 = v
	default:
		return catalog.Invalid(paramName(k), "unknown parameter")
	}
	return nil
}

// hex64 reports whether s is a sha256 in lowercase hex.
func hex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
