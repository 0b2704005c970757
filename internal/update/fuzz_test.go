package update

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/outpost/outpost/internal/update/updatetest"
)

// FuzzCheck drives the query parser, the engine and the handler with
// arbitrary raw queries: nothing panics, every answer is 200, 400 or 404
// with a valid JSON body.
func FuzzCheck(f *testing.F) {
	opts := updatetest.Options{Products: 4, Releases: 60, Policies: 8}
	e, err := New(updatetest.Manifest(opts))
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range updatetest.Queries(opts, 50, 1) {
		f.Add(q)
	}
	f.Add("product=prd_00000000000000000000000000&channel=stable&platform=linux&arch=x64&version=1.0.0-%ff&client_id=%00")
	f.Add("&&=&product=&%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		var q Query
		if err := ParseRawQuery(raw, &q); err == nil {
			d, err := e.Check(&q, now)
			if err == nil && !json.Valid(d.AppendJSON(nil)) {
				t.Fatalf("invalid JSON for %q", raw)
			}
		}
		r := httptest.NewRequest("GET", "/v1/updates/check", nil)
		r.URL.RawQuery = raw
		w := httptest.NewRecorder()
		Handle(w, r, e, now)
		switch w.Code {
		case 200, 400, 404:
		default:
			t.Fatalf("%q: status %d %s", raw, w.Code, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%q: invalid JSON body %q", raw, w.Body)
		}
	})
}
