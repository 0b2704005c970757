package main_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The status page of a running mirror: the metadata version it holds, the
// last sync, its cache, the seats leased here per entitlement and the
// recent events.
func TestMirror_StatusPageShowsSeatsAndEvents(t *testing.T) {
	bin := buildOnce(t)
	cp := startControlPlane(t)
	lm := newLeasingMirror(t, bin, cp, 3, 2)
	d := startDaemon(t, bin, lm.config)
	waitReady(t, d.base)
	if a := putLease(t, d.base, "s1", lm.ent); a.status != http.StatusOK {
		t.Fatalf("PUT s1 = %d %s, want 200", a.status, a.body)
	}

	page := func(t *testing.T) string {
		t.Helper()
		res, err := http.Get(d.base + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /: %d %q, want 200 HTML", res.StatusCode, res.Header.Get("Content-Type"))
		}
		return string(b)
	}
	body := page(t)
	checks := []struct{ what, re string }{
		{"fresh", `id="freshness"[^>]*>fresh<`},
		{"the held version", `id="metadata-version">v\d+<`},
		{"the expiry countdown", `id="expires"[^>]*>in `},
		{"the last sync, ok", `id="last-sync">\s*<dt>Result</dt><dd><span class="badge badge-fresh">ok</span>`},
		{"the seats leased here", `<code class="small">` + lm.ent + `</code></td><td><meter min="0" max="2" high="2" value="1"`},
		{"a recent sync event", `<td>sync</td><td><span class="badge badge-fresh">ok</span></td><td>now at version \d+`},
		{"the cache", `<span class="tile-l">Cache</span>`},
	}
	for _, c := range checks {
		if !regexp.MustCompile(c.re).MatchString(body) {
			t.Errorf("the status page does not show %s (/%s/)", c.what, c.re)
		}
	}

	t.Run("a second seat shows at the next look", func(t *testing.T) {
		if a := putLease(t, d.base, "s2", lm.ent); a.status != http.StatusOK {
			t.Fatalf("PUT s2 = %d %s, want 200", a.status, a.body)
		}
		// The ledger commits the lease before it answers.
		if !strings.Contains(page(t), `value="2" aria-label="Seats in use">2</meter> 2 / 2`) {
			t.Errorf("the status page does not show 2 / 2 seats")
		}
	})
}
