package update

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/outpost/outpost/internal/catalog"
)

// Limits on a policy's conditions (hostile input: they are written over the
// API and carried in every snapshot).
const (
	maxConditionsBytes = 64 << 10
	maxClientIDs       = 10_000
	maxClientPrefixes  = 100
	maxClientIDLen     = 256
)

// Conditions is a policy's parsed `conditions` object (docs/conditions.md).
// Match keys decide whether the policy applies to a client; pin keys
// (MinVersion, MaxVersion, VersionPrefix) restrict which release the
// chosen policy may offer. A zero Conditions matches every client and pins
// nothing. Only a Conditions returned by ParseConditions is compiled: set
// fields by hand and they are ignored by Matches and Allows.
type Conditions struct {
	Platforms        []string `json:"platforms,omitempty"`
	Arches           []string `json:"arches,omitempty"`
	InstallerTypes   []string `json:"installer_types,omitempty"`
	ClientVersionMin string   `json:"client_version_min,omitempty"`
	ClientVersionMax string   `json:"client_version_max,omitempty"`
	ClientIDs        []string `json:"client_ids,omitempty"`
	ClientIDPrefixes []string `json:"client_id_prefixes,omitempty"`
	MinVersion       string   `json:"min_version,omitempty"`
	MaxVersion       string   `json:"max_version,omitempty"`
	VersionPrefix    string   `json:"version_prefix,omitempty"`

	platMask, archMask, instMask uint32
	cvMin, cvMax                 *version
	ids                          map[string]struct{}
	pin                          pin
}

// pin bounds the offered version: lo <= v <= hi (each optional) and, with
// a prefix, v's major (and minor) equal the prefix's.
type pin struct {
	lo, hi      *version
	prefixParts int // 0 none, 1 MAJOR, 2 MAJOR.MINOR
	major       uint64
	minor       uint64
}

func (p *pin) active() bool { return p.lo != nil || p.hi != nil || p.prefixParts > 0 }

// allows reports whether v satisfies the pin.
func (p *pin) allows(v *version) bool {
	if p.hi != nil && v.compare(*p.hi) > 0 {
		return false
	}
	if p.lo != nil && v.compare(*p.lo) < 0 {
		return false
	}
	switch p.prefixParts {
	case 1:
		return v.major == p.major
	case 2:
		return v.major == p.major && v.minor == p.minor
	}
	return true
}

// above reports whether v is newer than everything the pin allows.
func (p *pin) above(v *version) bool {
	if p.hi != nil && v.compare(*p.hi) > 0 {
		return true
	}
	switch p.prefixParts {
	case 1:
		return v.major > p.major
	case 2:
		return v.major > p.major || v.major == p.major && v.minor > p.minor
	}
	return false
}

// below reports whether v is older than everything the pin allows.
func (p *pin) below(v *version) bool {
	if p.lo != nil && v.compare(*p.lo) < 0 {
		return true
	}
	switch p.prefixParts {
	case 1:
		return v.major < p.major
	case 2:
		return v.major < p.major || v.major == p.major && v.minor < p.minor
	}
	return false
}

// ParseConditions decodes and validates a policy's conditions strictly:
// an unknown or repeated key, an ill-typed value or an invalid value is an
// EINVALID error whose message names the key ("conditions.platforms: must
// be an array of strings"). Absent, null or {} conditions match everything.
func ParseConditions(raw json.RawMessage) (*Conditions, error) {
	c := &Conditions{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	if len(raw) > maxConditionsBytes {
		return nil, catalog.Invalid("conditions", "must be at most %d bytes", maxConditionsBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, catalog.Invalid("conditions", "must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, catalog.Invalid("conditions", "malformed JSON")
		}
		key, _ := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, catalog.Invalid("conditions", "malformed JSON")
		}
		field := "conditions." + key
		if !conditionKeys[key] {
			return nil, catalog.Invalid("conditions", "unknown key %q", truncate(key, 64))
		}
		if seen[key] {
			return nil, catalog.Invalid(field, "given more than once")
		}
		seen[key] = true
		if err := c.set(field, key, val); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, catalog.Invalid("conditions", "malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, catalog.Invalid("conditions", "trailing data after the object")
	}
	if err := c.compile(); err != nil {
		return nil, err
	}
	return c, nil
}

var conditionKeys = map[string]bool{
	"platforms": true, "arches": true, "installer_types": true,
	"client_version_min": true, "client_version_max": true,
	"client_ids": true, "client_id_prefixes": true,
	"min_version": true, "max_version": true, "version_prefix": true,
}

func (c *Conditions) set(field, key string, val json.RawMessage) error {
	switch key {
	case "platforms":
		return decodeStrings(field, val, &c.Platforms)
	case "arches":
		return decodeStrings(field, val, &c.Arches)
	case "installer_types":
		return decodeStrings(field, val, &c.InstallerTypes)
	case "client_ids":
		return decodeStrings(field, val, &c.ClientIDs)
	case "client_id_prefixes":
		return decodeStrings(field, val, &c.ClientIDPrefixes)
	case "client_version_min":
		return decodeString(field, val, &c.ClientVersionMin)
	case "client_version_max":
		return decodeString(field, val, &c.ClientVersionMax)
	case "min_version":
		return decodeString(field, val, &c.MinVersion)
	case "max_version":
		return decodeString(field, val, &c.MaxVersion)
	case "version_prefix":
		return decodeString(field, val, &c.VersionPrefix)
	}
	return catalog.Invalid("conditions", "unknown key %q", key)
}

func decodeStrings(field string, val json.RawMessage, dst *[]string) error {
	if len(val) == 0 || val[0] != '[' || json.Unmarshal(val, dst) != nil {
		return catalog.Invalid(field, "must be an array of strings")
	}
	if len(*dst) == 0 {
		return catalog.Invalid(field, "must not be empty (leave the key out to match any)")
	}
	return nil
}

func decodeString(field string, val json.RawMessage, dst *string) error {
	if len(val) == 0 || val[0] != '"' || json.Unmarshal(val, dst) != nil {
		return catalog.Invalid(field, "must be a string")
	}
	return nil
}

// compile validates the values and builds the matching form.
func (c *Conditions) compile() error {
	var err error
	if c.platMask, err = enumMask("conditions.platforms", c.Platforms, catalog.Platforms); err != nil {
		return err
	}
	if c.archMask, err = enumMask("conditions.arches", c.Arches, catalog.Arches); err != nil {
		return err
	}
	if c.instMask, err = enumMask("conditions.installer_types", c.InstallerTypes, catalog.InstallerTypes); err != nil {
		return err
	}
	if c.cvMin, err = optVersion("conditions.client_version_min", c.ClientVersionMin); err != nil {
		return err
	}
	if c.cvMax, err = optVersion("conditions.client_version_max", c.ClientVersionMax); err != nil {
		return err
	}
	if c.cvMin != nil && c.cvMax != nil && c.cvMin.compare(*c.cvMax) > 0 {
		return catalog.Invalid("conditions.client_version_min", "must not be greater than client_version_max")
	}
	if c.pin.lo, err = optVersion("conditions.min_version", c.MinVersion); err != nil {
		return err
	}
	if c.pin.hi, err = optVersion("conditions.max_version", c.MaxVersion); err != nil {
		return err
	}
	if c.pin.lo != nil && c.pin.hi != nil && c.pin.lo.compare(*c.pin.hi) > 0 {
		return catalog.Invalid("conditions.min_version", "must not be greater than max_version")
	}
	if c.VersionPrefix != "" {
		if err := c.pin.setPrefix(c.VersionPrefix); err != nil {
			return err
		}
	}
	if len(c.ClientIDs) > maxClientIDs {
		return catalog.Invalid("conditions.client_ids", "at most %d ids", maxClientIDs)
	}
	if len(c.ClientIDs) > 0 {
		c.ids = make(map[string]struct{}, len(c.ClientIDs))
		for _, id := range c.ClientIDs {
			if err := validateClientID("conditions.client_ids", id); err != nil {
				return err
			}
			c.ids[id] = struct{}{}
		}
	}
	if len(c.ClientIDPrefixes) > maxClientPrefixes {
		return catalog.Invalid("conditions.client_id_prefixes", "at most %d prefixes", maxClientPrefixes)
	}
	for _, p := range c.ClientIDPrefixes {
		if err := validateClientID("conditions.client_id_prefixes", p); err != nil {
			return err
		}
	}
	return nil
}

func (p *pin) setPrefix(s string) error {
	bad := catalog.Invalid("conditions.version_prefix", "%q must be MAJOR or MAJOR.MINOR, such as \"2\" or \"2.3\"", truncate(s, 64))
	major, minor, two := strings.Cut(s, ".")
	var ok bool
	if p.major, ok = parseNum(major); !ok {
		return bad
	}
	p.prefixParts = 1
	if two {
		if p.minor, ok = parseNum(minor); !ok {
			return bad
		}
		p.prefixParts = 2
	}
	return nil
}

func enumMask(field string, vals, allowed []string) (uint32, error) {
	var m uint32
	for _, v := range vals {
		i := indexOf(allowed, v)
		if i < 0 {
			return 0, catalog.Invalid(field, "%q is not one of %s", truncate(v, 64), strings.Join(allowed, ", "))
		}
		m |= 1 << i
	}
	return m, nil
}

func indexOf(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return -1
}

func optVersion(field, s string) (*version, error) {
	if s == "" {
		return nil, nil
	}
	v, ok := parseVersion(s)
	if !ok {
		return nil, catalog.Invalid(field, "%q is not a semantic version (MAJOR.MINOR.PATCH)", truncate(s, 64))
	}
	return &v, nil
}

// validateClientID checks a client id: 1..256 bytes of valid UTF-8 without
// control characters.
func validateClientID(field, s string) error {
	if s == "" {
		return catalog.Invalid(field, "must not be empty")
	}
	if len(s) > maxClientIDLen {
		return catalog.Invalid(field, "must be at most %d bytes", maxClientIDLen)
	}
	if !printable(s) {
		return catalog.Invalid(field, "must be printable UTF-8")
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
			return false
		}
		i += n
	}
	return true
}

// truncate shortens hostile values quoted in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// matches reports whether the conditions' match keys accept the client.
func (c *Conditions) matches(q *prepared) bool {
	if c.platMask != 0 && c.platMask&(1<<q.plat) == 0 {
		return false
	}
	if c.archMask != 0 && c.archMask&(1<<q.arch) == 0 {
		return false
	}
	if c.instMask != 0 && (q.inst < 0 || c.instMask&(1<<q.inst) == 0) {
		return false
	}
	if c.cvMin != nil && q.ver.compare(*c.cvMin) < 0 {
		return false
	}
	if c.cvMax != nil && q.ver.compare(*c.cvMax) > 0 {
		return false
	}
	if c.ids != nil || len(c.ClientIDPrefixes) > 0 {
		if q.clientID == "" {
			return false
		}
		_, in := c.ids[q.clientID]
		for _, p := range c.ClientIDPrefixes {
			if in {
				break
			}
			in = strings.HasPrefix(q.clientID, p)
		}
		if !in {
			return false
		}
	}
	return true
}

// Matches reports whether the conditions' match keys accept the query
// (which must be valid: see Query.Validate).
func (c *Conditions) Matches(q *Query) (bool, error) {
	p, err := q.prepare()
	if err != nil {
		return false, err
	}
	return c.matches(&p), nil
}

// Allows reports whether the conditions' pin keys allow offering version v.
// An invalid v is never allowed.
func (c *Conditions) Allows(v string) bool {
	pv, ok := parseVersion(v)
	return ok && c.pin.allows(&pv)
}
