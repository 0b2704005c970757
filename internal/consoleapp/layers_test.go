package consoleapp_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// imports lists what the non-test Go files of the package in dir import.
func imports(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[p] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("no imports found in %s", dir)
	}
	return out
}

// The console reaches the catalog only through the control plane's App,
// as the API does: neither the console nor its backend imports a store
// implementation or a database driver, and the console's pages import
// neither the App nor the store (they see only console.Backend).
func TestLayers_NoSecondPathToTheStore(t *testing.T) {
	banned := []string{"internal/store/", "go.etcd.io/bbolt", "github.com/jackc/pgx", "database/sql", "internal/blob"}
	for _, dir := range []string{".", "../console"} {
		for p := range imports(t, dir) {
			for _, b := range banned {
				if strings.Contains(p, b) {
					t.Errorf("%s imports %s", dir, p)
				}
			}
		}
	}
	for p := range imports(t, "../console") {
		if strings.HasSuffix(p, "/internal/controlplane") || strings.HasSuffix(p, "/internal/store") {
			t.Errorf("the console's pages import %s; they should see only console.Backend", p)
		}
	}
	if !imports(t, ".")["github.com/outpost/outpost/internal/controlplane"] {
		t.Error("consoleapp does not import the control plane's App")
	}
}
