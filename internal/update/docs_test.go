package update

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/outpost/outpost/client"
)

// TestDocs_ExamplesParse keeps docs/conditions.md honest: the conditions
// of every policy example in it (`--conditions '…'`) are accepted by
// ParseConditions. cmd/controlplane's TestConditionsDoc_ExamplesRun runs
// the commands themselves.
func TestDocs_ExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../../docs/conditions.md")
	if err != nil {
		t.Fatal(err)
	}
	found := regexp.MustCompile(`--conditions '([^']*)'`).FindAllStringSubmatch(string(doc), -1)
	for i, m := range found {
		if !json.Valid([]byte(m[1])) {
			t.Errorf("example %d: %s is not JSON", i+1, m[1])
			continue
		}
		if _, err := ParseConditions(json.RawMessage(m[1])); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
	if len(found) < 4 {
		t.Errorf("found %d policy examples, want at least 4", len(found))
	}
}

// TestReasons_ClientAgrees: the public client names the engine's reasons
// with the same strings.
func TestReasons_ClientAgrees(t *testing.T) {
	pairs := [][2]string{
		{ReasonNoEntitlement, client.ReasonNoEntitlement},
		{ReasonPolicyNone, client.ReasonPolicyNone},
		{ReasonUpToDate, client.ReasonUpToDate},
		{ReasonNotInRollout, client.ReasonNotInRollout},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("engine %q, client %q", p[0], p[1])
		}
	}
}
