package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var (
	controlRe = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRe      = regexp.MustCompile(`\bid="([^"]+)"`)
	typeRe    = regexp.MustCompile(`\btype="([^"]+)"`)
)

// labelled checks that every visible form control on a page has a
// <label for> naming its id, and that ids are unique.
func labelled(t *testing.T, page string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range idRe.FindAllStringSubmatch(page, -1) {
		if seen[m[1]] {
			t.Errorf("id %q is used twice", m[1])
		}
		seen[m[1]] = true
	}
	for _, c := range controlRe.FindAllString(page, -1) {
		if m := typeRe.FindStringSubmatch(c); m != nil && (m[1] == "hidden" || m[1] == "submit") {
			continue
		}
		id := idRe.FindStringSubmatch(c)
		if id == nil {
			t.Errorf("control without an id: %s", c)
			continue
		}
		if !strings.Contains(page, `<label for="`+id[1]+`"`) {
			t.Errorf("control %q has no <label for>", id[1])
		}
	}
}

func TestConsole_FormsAreLabelled(t *testing.T) {
	e := newEnv(t)
	t.Run("sign in", func(t *testing.T) { labelled(t, e.get(nil, "/console/signin").Body.String()) })
	s := e.signIn(e.seed.AdminToken)
	for _, pat := range e.s.RoutePatterns() {
		method, path := e.fill(pat, e.seed.Acme.TenantID)
		if method != "GET" {
			continue
		}
		t.Run(path, func(t *testing.T) {
			w := e.get(s, path)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			page := w.Body.String()
			labelled(t, page)
			if !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, `class="skip" href="#main"`) {
				t.Error("no language or skip link")
			}
		})
	}
}
