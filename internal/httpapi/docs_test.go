package httpapi

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/testenv"
)

// TestRoutes_Documented keeps docs/architecture.md's route table whole
// and true, so a reader finds where any route is handled in one hop:
// every route has a row and every row is a route, with its access, a
// handler that exists in the file the row names, and service methods
// that exist.
func TestRoutes_Documented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	// The control plane's table: from "## Route table" to the mirror half.
	_, table, _ := strings.Cut(string(doc), "\n## Route table\n")
	table, _, _ = strings.Cut(table, "\n# The mirror side")
	rows := map[string][]string{} // pattern -> cells
	rowRE := regexp.MustCompile("^\\| `([A-Z]+ /[^`]*)` \\|(.*)\\|$")
	for _, line := range strings.Split(table, "\n") {
		if m := rowRE.FindStringSubmatch(line); m != nil {
			var cells []string
			for _, c := range strings.Split(m[2], "|") {
				cells = append(cells, strings.TrimSpace(c))
			}
			rows[m[1]] = cells
		}
	}
	funcs := testenv.Declared(t, ".")
	service := reflect.TypeOf((*controlplane.Service)(nil)).Elem()
	app := reflect.TypeOf(&controlplane.App{})
	who := map[string]string{"admin": "admin", "tenant": "admin, tenant", "mirror": "mirror"}
	routes := map[string]bool{}
	for _, rt := range Routes() {
		routes[rt.Pattern] = true
		cells, ok := rows[rt.Pattern]
		if !ok {
			t.Errorf("route %s is not in docs/architecture.md's route table", rt.Pattern)
			continue
		}
		if len(cells) != 3 {
			t.Errorf("%s: row has %d cells after the route, want who, handler, service method", rt.Pattern, len(cells))
			continue
		}
		if cells[0] != who[rt.Access] {
			t.Errorf("%s: who = %q, the route table says %q", rt.Pattern, cells[0], who[rt.Access])
		}
		if cells[1] != "inline" {
			name, file := handlerCell(cells[1])
			if name == "" || !funcs[file][name] {
				t.Errorf("%s: handler %q: no func %s in internal/httpapi/%s", rt.Pattern, cells[1], name, file)
			}
		}
		for _, m := range regexp.MustCompile("`([A-Za-z.]+)`").FindAllStringSubmatch(cells[2], -1) {
			if strings.Contains(m[1], ".") {
				continue // another package's function, named for the reader
			}
			if _, ok := service.MethodByName(m[1]); !ok {
				if _, ok := app.MethodByName(m[1]); !ok || !strings.Contains(cells[2], "(App only)") {
					t.Errorf("%s: %s is not a method of controlplane.Service (nor marked App only)", rt.Pattern, m[1])
				}
			}
		}
	}
	for p := range rows {
		if !routes[p] {
			t.Errorf("docs/architecture.md lists %s, which is no route of the API", p)
		}
	}
}

// handlerCell reads "`name` (file.go)" or "`name` builder (file.go)".
func handlerCell(c string) (name, file string) {
	m := regexp.MustCompile("^`([A-Za-z]+)`(?: builder)? \\(([a-z]+\\.go)\\)$").FindStringSubmatch(c)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}
