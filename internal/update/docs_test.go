package update

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestDocs_ExamplesParse keeps docs/conditions.md honest: every policy
// example in it is accepted by ParseConditions.
func TestDocs_ExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../../docs/conditions.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, block := range strings.Split(string(doc), "```json\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		var p struct {
			Action     string          `json:"action"`
			Conditions json.RawMessage `json:"conditions"`
		}
		if err := json.Unmarshal([]byte(block), &p); err != nil {
			t.Fatalf("block %d is not JSON: %v", i, err)
		}
		if p.Action == "" {
			continue
		}
		n++
		if _, err := ParseConditions(p.Conditions); err != nil {
			t.Errorf("block %d: %v", i, err)
		}
	}
	if n < 4 {
		t.Errorf("found %d policy examples, want at least 4", n)
	}
}
