package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/testenv"
)

// TestConditionsDoc_ExamplesRun runs every example of docs/conditions.md
// as written (its placeholders replaced by real ids) against a served
// control plane, then checks that the policies they wrote are there.
func TestConditionsDoc_ExamplesRun(t *testing.T) {
	c := newCP(t)
	token := c.mustRun("init")
	c.start()
	c.env = []string{"OUTPOST_SERVER=" + c.url(), "OUTPOST_TOKEN=" + token}
	tenant := c.mustRun("tenant", "create", "acme")
	product := c.mustRun("product", "create", "app")
	first := c.mustRun("policy", "create", "--tenant", tenant, "--product", product, "--action", "NOTIFY")
	path := testenv.PathWith(t, map[string]string{"controlplane": c.bin})
	blocks := testenv.DocBlocks(t, "docs/conditions.md", "conditions-example")
	for i, block := range blocks {
		t.Run(fmt.Sprint("example ", i+1), func(t *testing.T) {
			script := strings.NewReplacer("ten_…", tenant, "prd_…", product, "pol_…", first).Replace(block)
			cmd := exec.Command("sh", "-e", "-c", script)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "PATH="+path, "OUTPOST_SERVER="+c.url(), "OUTPOST_TOKEN="+token)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("example %d:\n%s\nfailed: %v\n%s", i+1, block, err, out)
			}
		})
	}
	var list struct {
		Items []struct {
			Action     string          `json:"action"`
			Conditions json.RawMessage `json:"conditions"`
		}
	}
	if err := json.Unmarshal([]byte(c.mustRun("policy", "list", "--tenant", tenant, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range list.Items {
		got[p.Action] = true
	}
	for _, want := range []string{"INSTALL", "NONE", "DOWNLOAD", "NOTIFY"} {
		if !got[want] {
			t.Errorf("no %s policy after the examples: %+v", want, list.Items)
		}
	}
	if blocked := c.mustRun("blocked", "list", "--tenant", tenant); !strings.Contains(blocked, "2.4.0") {
		t.Errorf("blocked list after the examples:\n%s", blocked)
	}
}
