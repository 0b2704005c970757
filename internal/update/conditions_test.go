package update

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
)

func TestParseConditions_Rejects(t *testing.T) {
	long := `"` + strings.Repeat("a", 300) + `"`
	tests := []struct {
		name, raw, want string
	}{
		{"not an object", `[]`, "conditions: must be a JSON object"},
		{"malformed", `{"platforms":`, "conditions: malformed JSON"},
		{"trailing data", `{} {}`, "conditions: trailing data after the object"},
		{"unknown key", `{"platform":["linux"]}`, `conditions: unknown key "platform"`},
		{"repeated key", `{"arches":["x64"],"arches":["arm64"]}`, "conditions.arches: given more than once"},
		{"string for array", `{"platforms":"linux"}`, "conditions.platforms: must be an array of strings"},
		{"null for array", `{"arches":null}`, "conditions.arches: must be an array of strings"},
		{"number in array", `{"installer_types":["msi",3]}`, "conditions.installer_types: must be an array of strings"},
		{"empty array", `{"client_ids":[]}`, "conditions.client_ids: must not be empty"},
		{"bad platform", `{"platforms":["plan9"]}`, `conditions.platforms: "plan9" is not one of windows, linux, macos`},
		{"bad arch", `{"arches":["mips"]}`, `conditions.arches: "mips" is not one of`},
		{"bad installer", `{"installer_types":["apk"]}`, `conditions.installer_types: "apk" is not one of`},
		{"number for string", `{"max_version":2}`, "conditions.max_version: must be a string"},
		{"bad semver", `{"min_version":"1.2"}`, `conditions.min_version: "1.2" is not a semantic version`},
		{"v prefix", `{"client_version_min":"v1.2.3"}`, `conditions.client_version_min: "v1.2.3" is not a semantic version`},
		{"min above max", `{"min_version":"2.0.0","max_version":"1.0.0"}`, "conditions.min_version: must not be greater than max_version"},
		{"client min above max", `{"client_version_min":"2.0.0","client_version_max":"1.0.0"}`, "conditions.client_version_min: must not be greater than client_version_max"},
		{"bad prefix", `{"version_prefix":"2.x"}`, `conditions.version_prefix: "2.x" must be MAJOR or MAJOR.MINOR`},
		{"prefix with patch", `{"version_prefix":"2.3.4"}`, `conditions.version_prefix: "2.3.4" must be MAJOR or MAJOR.MINOR`},
		{"prefix leading zero", `{"version_prefix":"02"}`, `conditions.version_prefix`},
		{"huge client id", `{"client_ids":[` + long + `]}`, "conditions.client_ids: must be at most 256 bytes"},
		{"control char in client id", `{"client_ids":["a\u0001b"]}`, "conditions.client_ids: must be printable UTF-8"},
		{"empty prefix", `{"client_id_prefixes":[""]}`, "conditions.client_id_prefixes: must not be empty"},
		{"too large", `{"client_ids":["` + strings.Repeat("x", 70<<10) + `"]}`, "conditions: must be at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConditions(json.RawMessage(tc.raw))
			if err == nil {
				t.Fatalf("got nil error, want %q", tc.want)
			}
			if got := catalog.ErrorCode(err); got != catalog.EINVALID {
				t.Errorf("code = %q, want %q", got, catalog.EINVALID)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err.Error(), tc.want)
			}
		})
	}
}

func TestParseConditions_Accepts(t *testing.T) {
	tests := []struct {
		name, raw string
		want      Conditions
	}{
		{"absent", ``, Conditions{}},
		{"null", `null`, Conditions{}},
		{"empty", ` {} `, Conditions{}},
		{"everything", `{"platforms":["windows","linux"],"arches":["x64"],"installer_types":["msi"],
			"client_version_min":"1.0.0","client_version_max":"2.0.0-rc.1","client_ids":["a"],"client_id_prefixes":["lab-"],
			"min_version":"1.0.0","max_version":"3.0.0","version_prefix":"2.3"}`,
			Conditions{Platforms: []string{"windows", "linux"}, Arches: []string{"x64"}, InstallerTypes: []string{"msi"},
				ClientVersionMin: "1.0.0", ClientVersionMax: "2.0.0-rc.1", ClientIDs: []string{"a"}, ClientIDPrefixes: []string{"lab-"},
				MinVersion: "1.0.0", MaxVersion: "3.0.0", VersionPrefix: "2.3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConditions(json.RawMessage(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(c)
			w, _ := json.Marshal(&tc.want)
			if string(g) != string(w) {
				t.Errorf("got %s, want %s", g, w)
			}
		})
	}
}

func TestConditions_MatchesAndAllows(t *testing.T) {
	c, err := ParseConditions(json.RawMessage(`{"platforms":["linux"],"client_version_min":"1.2.0","client_version_max":"1.9.0","client_id_prefixes":["lab-"],"client_ids":["ops"],"version_prefix":"2","max_version":"2.5.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	base := Query{Product: "prd_a", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.5.0", ClientID: "lab-1"}
	matches := []struct {
		name  string
		query Query
		want  bool
	}{
		{"all keys match", base, true},
		{"exact client id", base.with(func(q *Query) { q.ClientID = "ops" }), true},
		{"other client", base.with(func(q *Query) { q.ClientID = "ops2" }), false},
		{"no client", base.with(func(q *Query) { q.ClientID = "" }), false},
		{"other platform", base.with(func(q *Query) { q.Platform = "macos" }), false},
		{"client at min (inclusive)", base.with(func(q *Query) { q.Version = "1.2.0" }), true},
		{"client below min", base.with(func(q *Query) { q.Version = "1.2.0-rc.1" }), false},
		{"client at max (inclusive)", base.with(func(q *Query) { q.Version = "1.9.0" }), true},
		{"client above max", base.with(func(q *Query) { q.Version = "1.9.1" }), false},
	}
	for _, tc := range matches {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Matches(&tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	allows := []struct {
		v    string
		want bool
	}{{"2.0.0", true}, {"2.5.0", true}, {"2.5.1", false}, {"3.0.0", false}, {"1.9.9", false}, {"2.5.0-rc.1", true}, {"junk", false}}
	for _, tc := range allows {
		t.Run("allows "+tc.v, func(t *testing.T) {
			if got := c.Allows(tc.v); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
