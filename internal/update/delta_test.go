package update

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
)

func TestHandle_Delta(t *testing.T) {
	f := newFixture().product("prd_a", "open").
		release("rel_1", "prd_a", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
		release("rel_2", "prd_a", "stable", "1.1.0", "ACTIVE", "linux/x64/deb")
	from, to := f.m.Artifacts[0], f.m.Artifacts[1]
	sum := strings.Repeat("ab", 32)
	f.m.Deltas = []snapshot.Delta{
		{DeltaID: "dlt_big", FromArtifactID: from.ArtifactID, ToArtifactID: to.ArtifactID, FromSHA256: from.SHA256, ToSHA256: to.SHA256, SHA256: sum, SizeBytes: 90},
		{DeltaID: "dlt_1", FromArtifactID: from.ArtifactID, ToArtifactID: to.ArtifactID, FromSHA256: from.SHA256, ToSHA256: to.SHA256, SHA256: sum, SizeBytes: 42},
	}
	raw, err := json.Marshal(f.m)
	if err != nil {
		t.Fatal(err)
	}
	load := func() *Engine {
		var m snapshot.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		e, err := New(&m)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := load(), load()
	q := "product=prd_a&channel=stable&platform=linux&arch=x64&version=1.0.0"
	want := `,"delta":{"delta_id":"dlt_1","from_sha256":"` + from.SHA256 + `","to_sha256":"` + to.SHA256 +
		`","sha256":"` + sum + `","size_bytes":42,"url":"/v1/deltas/dlt_1/download"}`
	tests := []struct {
		name   string
		query  string
		status int
		delta  bool
	}{
		{"the smallest delta from the installed artifact", q + "&installed_sha256=" + from.SHA256, 200, true},
		{"no installed artifact: no delta", q, 200, false},
		{"another installed artifact: no delta", q + "&installed_sha256=" + strings.Repeat("0", 64), 200, false},
		{"installed is the offered one: no delta", q + "&installed_sha256=" + to.SHA256, 200, false},
		{"malformed sha256", q + "&installed_sha256=XYZ", 400, false},
		{"uppercase sha256", q + "&installed_sha256=" + strings.ToUpper(from.SHA256), 400, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/updates/check?"+tc.query, nil)
			wa, wb := httptest.NewRecorder(), httptest.NewRecorder()
			Handle(wa, r, a, now)
			Handle(wb, r, b, now)
			if !bytes.Equal(wa.Body.Bytes(), wb.Body.Bytes()) {
				t.Fatalf("answers differ:\n%s\n%s", wa.Body, wb.Body)
			}
			if wa.Code != tc.status || !json.Valid(wa.Body.Bytes()) {
				t.Fatalf("status %d body %s, want %d", wa.Code, wa.Body, tc.status)
			}
			if got := bytes.Contains(wa.Body.Bytes(), []byte(want)); got != tc.delta {
				t.Errorf("body %s: delta offered %v, want %v", wa.Body, got, tc.delta)
			}
			if tc.status == 400 && !bytes.Contains(wa.Body.Bytes(), []byte(`"field":"installed_sha256"`)) {
				t.Errorf("body %s does not name installed_sha256", wa.Body)
			}
		})
	}
}
