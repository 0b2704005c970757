package mirror

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/testenv"
)

// TestMirrorRoutes_Documented keeps docs/architecture.md's mirror route
// table whole and true: every pattern the server registers (server.go,
// and the lease API's own mux in leases.go) has a row, every row's
// routes are registered, and every handler it names in this package
// exists, so a reader finds where any mirror route is handled in one hop.
func TestMirrorRoutes_Documented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "\n### Mirror route table\n")
	if !ok {
		t.Fatal("docs/architecture.md has no \"### Mirror route table\"")
	}
	table, _, _ = strings.Cut(table, "\n### ")

	registered := map[string]bool{}
	pat := regexp.MustCompile(`mux\.Handle(?:Func)?\("([^"]+)"`)
	for _, f := range []string{"server.go", "leases.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pat.FindAllStringSubmatch(string(src), -1) {
			registered[m[1]] = true
		}
	}
	if len(registered) < 10 {
		t.Fatalf("found %d registered patterns; the scan of server.go is broken", len(registered))
	}
	// The update check is dispatched before the router; it is registered
	// too, so the router answers it the same way.
	decls := map[string]bool{}
	for _, names := range testenv.Declared(t, ".") {
		for n := range names {
			decls[n] = true
		}
	}
	foreign := map[string]bool{"tufhttp": true, "fleethttp": true, "wire": true, "update": true, "state": true, "cache": true, "license": true, "fleet": true, "Server": true}

	documented := map[string]bool{}
	rowRE := regexp.MustCompile("^\\| (`[^|]*) \\| ([^|]*) \\| ([^|]*) \\|$")
	for _, line := range strings.Split(table, "\n") {
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, p := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(m[1], -1) {
			documented[p[1]] = true
			if !registered[p[1]] {
				t.Errorf("the table lists %s, which the mirror does not register", p[1])
			}
		}
		for _, h := range regexp.MustCompile("`([A-Za-z.]+)`").FindAllStringSubmatch(m[2], -1) {
			name := h[1]
			if first, _, ok := strings.Cut(name, "."); ok && foreign[first] {
				continue // another package's, or a method named on its type below
			}
			if !decls[name] {
				t.Errorf("%s: handler %s is declared nowhere in internal/mirror", m[1], name)
			}
		}
	}
	for p := range registered {
		if !documented[p] {
			t.Errorf("route %s is not in docs/architecture.md's mirror route table", p)
		}
	}
}
