package update

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

func TestDecision_AppendJSON(t *testing.T) {
	f := newFixture().product("prd_a", "open").
		release("rel_1", "prd_a", "stable", "1.0.0", "ACTIVE", "windows/x64/msi").
		release("rel_2", "prd_a", "stable", "1.1.0", "ACTIVE", "windows/x64/msi")
	f.m.Releases[1].Metadata = json.RawMessage(" {\"notes\": \"a \\\"b\\\"\",\n \"n\": 1} ")
	e := f.engine(t)
	tests := []struct {
		name  string
		query Query
		want  string
	}{
		{"offered", q("prd_a", "stable", "windows", "x64", "1.0.0"),
			`{"update_available":true,"action":"NOTIFY","release":{"release_id":"rel_2","product_id":"prd_a","channel":"stable","version":"1.1.0","published_at":"2026-11-28T11:00:00Z","metadata":{"notes":"a \"b\"","n":1}},` +
				`"artifact":{"artifact_id":"rel_2-art-windows/x64/msi","sha256":"` + f.m.Artifacts[1].SHA256 + `","size_bytes":102,"url":"/v1/artifacts/rel_2-art-windows%2Fx64%2Fmsi/download","installer_type":"msi","requires_admin":true,"target":"prd_a/rel_2-art-windows/x64/msi-rla"},` +
				`"snapshot":{"snapshot_id":"snp_1","sequence":7}}`},
		{"not offered", q("prd_a", "stable", "windows", "x64", "1.1.0"),
			`{"update_available":false,"action":"NONE","reason":"no newer release","snapshot":{"snapshot_id":"snp_1","sequence":7}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Check(&tc.query, now)
			if err != nil {
				t.Fatal(err)
			}
			got := string(d.AppendJSON(nil))
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Error("not valid JSON")
			}
			// A decision built by hand (no index entry) encodes the same.
			d.rel = nil
			if again := string(d.AppendJSON(nil)); again != tc.want {
				t.Errorf("without index entry got\n%s", again)
			}
		})
	}
}

func TestAppendString_MatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", `q"b\s`, "\n\r\t\x00\x1f\x7f", "<&>", "é€😀", "\u2028\u2029", "bad\xffutf8\xc3", "\xed\xa0\x80"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, rng.IntN(20))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		enc := appendString(nil, s)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: invalid JSON: %v", s, enc, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // invalid bytes become U+FFFD, as encoding/json does
		}
		if back != want {
			t.Fatalf("appendString(%q) decodes to %q, want %q", s, back, want)
		}
	}
}
