package catalog

import (
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
)

// Enumerations accepted by the API. Kept small and explicit so that a typo
// is an error, not a new platform.
var (
	Platforms      = []string{"windows", "linux", "macos"}
	Arches         = []string{"x64", "x86", "arm64", "arm"}
	InstallerTypes = []string{"msi", "msix", "exe", "zip", "tar.gz", "dmg", "pkg", "deb", "rpm", "appimage"}
	SubjectTypes   = []string{SubjectUser, SubjectMachine, SubjectDevice}
	Actions        = []string{ActionNone, ActionNotify, ActionDownload, ActionInstall}
)

var (
	channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidateChannel checks a channel name: lowercase letters, digits and
// dashes, starting with a letter, at most 32 characters.
func ValidateChannel(field, ch string) error {
	if !channelRE.MatchString(ch) {
		return Invalid(field, "must match %s", channelRE)
	}
	return nil
}

// ValidateEnum checks that v is one of allowed.
func ValidateEnum(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return Invalid(field, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return nil
}

// ValidateName checks a display name: 1..200 bytes of valid UTF-8 without
// control characters.
func ValidateName(field, s string) error {
	if s == "" {
		return Invalid(field, "is required")
	}
	if len(s) > 200 || !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8 of at most 200 bytes")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// ValidateVersion checks a strict semantic version (no leading "v").
func ValidateVersion(field, v string) error {
	if v == "" {
		return Invalid(field, "is required")
	}
	if _, err := semver.StrictNewVersion(v); err != nil {
		return Invalid(field, "%q is not a semantic version (MAJOR.MINOR.PATCH)", v)
	}
	return nil
}

// ValidateSHA256 checks a lowercase hex sha256.
func ValidateSHA256(field, s string) error {
	if !sha256RE.MatchString(s) {
		return Invalid(field, "must be 64 lowercase hex characters")
	}
	return nil
}

// ValidSHA256 reports whether s is a lowercase hex sha256.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// NormalizeMetadata checks that raw is a JSON object (or empty, which
// becomes {}) of at most 64 KiB.
func NormalizeMetadata(field string, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) > 64<<10 {
		return nil, Invalid(field, "must be at most 64 KiB")
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, Invalid(field, "must be a JSON object")
	}
	out, err := json.Marshal(m) // canonical: sorted keys, no whitespace
	if err != nil {
		return nil, Invalid(field, "must be a JSON object")
	}
	return out, nil
}

// rolloutTransitions lists the legal status changes; nothing leaves killed
// or completed.
var rolloutTransitions = map[string][]string{
	RolloutActive: {RolloutActive, RolloutPaused, RolloutCompleted, RolloutKilled},
	RolloutPaused: {RolloutPaused, RolloutActive, RolloutCompleted, RolloutKilled},
}

// ValidateRolloutTransition checks a rollout status change.
func ValidateRolloutTransition(from, to string) error {
	if err := ValidateEnum("status", to, []string{RolloutActive, RolloutPaused, RolloutCompleted, RolloutKilled}); err != nil {
		return err
	}
	if !slices.Contains(rolloutTransitions[from], to) {
		return &Error{Code: ECONFLICT, Field: "status", Message: "status: a rollout cannot go from " + from + " to " + to}
	}
	return nil
}
