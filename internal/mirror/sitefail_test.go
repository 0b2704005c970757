package mirror_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/sync/synctest"
)

// Two bundles checked on the status page, the newer committed first: the
// older one's commit is refused as a rollback, and the page shows that
// last import failed, with its error, in its result and its events,
// while the version held stays the newer one.
func TestSitePage_FailedImportShowsItsError(t *testing.T) {
	v := synctest.NewTUFVendor(t)
	base, _ := runMirror(t, v, nil)
	dry := func(seq int64) string {
		t.Helper()
		// Each bundle a new version: its release's bytes differ.
		arts := []synctest.Art{{ID: "art_a", Data: synctest.Random(16 << 10)}}
		code, page := upload(t, base, adminToken, signedBundle(t, v, seq, arts))
		if code != http.StatusOK {
			t.Fatalf("dry run of %d: got %d, want 200:\n%s", seq, code, page)
		}
		return page
	}
	commit := func(page string) (int, string) {
		t.Helper()
		res, err := http.PostForm(base+"/site/import/commit", hidden(t, page))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	older, newer := dry(2), dry(3) // repository versions 1 and 2
	if code, body := commit(newer); code != http.StatusOK {
		t.Fatalf("commit 3: got %d:\n%s", code, body)
	}
	code, body := commit(older)
	if code == http.StatusOK || !strings.Contains(body, "Import failed") {
		t.Fatalf("commit 2 after 3: got %d, want the import refused:\n%.1500s", code, body)
	}

	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	for _, c := range []struct{ what, re string }{
		{"the version held", `id="metadata-version">v2<`},
		{"the last import failed", `id="last-sync">\s*<dt>Result</dt><dd><span class="badge badge-expired">failed</span>`},
		{"its error", `id="last-error">bundle refused as a rollback[^<]*version 1 must be &gt;= 2<`},
		{"a failed import event", `<td>import</td><td><span class="badge badge-expired">failed</span></td><td>[^<]+</td>`},
		{"the successful import event", `<td>import</td><td><span class="badge badge-fresh">ok</span></td><td>now at version 2`},
	} {
		if !regexp.MustCompile(c.re).MatchString(page) {
			t.Errorf("the status page does not show %s (/%s/)", c.what, c.re)
		}
	}
}
