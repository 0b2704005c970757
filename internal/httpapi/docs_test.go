package httpapi

import (
	"os"
	"strings"
	"testing"
)

// TestRoutes_Documented keeps docs/architecture.md's route table whole: a
// reader finds where any route is handled in one hop.
func TestRoutes_Documented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range (&Server{}).routes() {
		if !strings.Contains(string(doc), "| `"+rt.pattern+"` |") {
			t.Errorf("route %s is not in docs/architecture.md's route table", rt.pattern)
		}
	}
}
