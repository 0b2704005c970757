package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
)

// firstRow is the first line under a table's header.
func firstRow(t *testing.T, table string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) < 2 {
		t.Fatalf("table has no rows:\n%s", table)
	}
	return lines[1]
}

// rows counts a table's lines under its header.
func rows(table string) int { return strings.Count(strings.TrimSpace(table), "\n") }

// TestControlplane_CLICoverage runs the commands for policies, rollouts,
// entitlements, seats, snapshots and blocked versions against a served
// control plane (through the typed API client).
func TestControlplane_CLICoverage(t *testing.T) {
	c := newCP(t)
	token := c.mustRun("init")
	c.start()
	c.env = []string{"OUTPOST_SERVER=" + c.url(), "OUTPOST_TOKEN=" + token}
	tenant := c.mustRun("tenant", "create", "acme")
	other := c.mustRun("tenant", "create", "globex")
	product := c.mustRun("product", "create", "app", "--distribution", "open")
	file := filepath.Join(t.TempDir(), "app.tar.gz")
	os.WriteFile(file, bytes.Repeat([]byte("x"), 10_000), 0o644)
	rel1 := c.mustRun("release", "create", "--product", product, "--version", "1.0.0", "--file", file)
	rel2 := c.mustRun("release", "create", "--product", product, "--channel", "beta", "--version", "1.1.0", "--file", file)

	t.Run("lists are newest first, --limit", func(t *testing.T) {
		list := c.mustRun("tenant", "list")
		if !strings.Contains(firstRow(t, list), other) || rows(list) != 2 {
			t.Fatalf("tenant list: got\n%s\nwant %s first of 2", list, other)
		}
		if list := c.mustRun("tenant", "list", "--limit", "1"); rows(list) != 1 || !strings.Contains(list, other) {
			t.Fatalf("tenant list --limit 1:\n%s", list)
		}
		if list := c.mustRun("release", "list", "--product", product); !strings.Contains(firstRow(t, list), rel2) {
			t.Fatalf("release list:\n%s\nwant %s first", list, rel2)
		}
	})

	t.Run("rollouts: channel and product from the release, list, show", func(t *testing.T) {
		ro := c.mustRun("rollout", "create", "--release", rel2, "--percentage", "20")
		if !catalog.ValidID(catalog.PrefixRollout, ro) {
			t.Fatalf("rollout create printed %q", ro)
		}
		show := c.mustRun("rollout", "show", ro)
		for _, want := range []string{"channel:     beta", "product:     " + product, "percentage:  20%", "status:      active"} {
			if !strings.Contains(show, want) {
				t.Errorf("rollout show:\n%s\nwant %q", show, want)
			}
		}
		if list := c.mustRun("rollout", "list", "--product", product); !strings.Contains(firstRow(t, list), ro) {
			t.Errorf("rollout list:\n%s", list)
		}
		if _, errs, err := c.run("rollout", "create", "--release", rel1, "--channel", "beta"); err == nil || !strings.Contains(errs, "not in product") {
			t.Errorf("a channel the release is not in: %v %q", err, errs)
		}
		staged := c.mustRun("rollout", "create", "--release", rel1, "--percentage", "5",
			"--schedule", `{"steps":[{"percentage":5,"min_dwell":"24h"},{"percentage":100,"min_dwell":"0s"}]}`,
			"--health-gate", `{"min_installs":50,"max_failure_rate":2.5}`)
		if show := c.mustRun("rollout", "show", staged); !strings.Contains(show, "schedule:    {") || !strings.Contains(show, "health gate: {") {
			t.Errorf("rollout show of a scheduled rollout:\n%s", show)
		}
		if _, errs, err := c.run("rollout", "create", "--release", rel1, "--schedule", "{nope"); err == nil || !strings.Contains(errs, "--schedule must be JSON") {
			t.Errorf("bad --schedule: %v %q", err, errs)
		}
		c.mustRun("rollout", "set", staged, "--health-gate", "null")
		if show := c.mustRun("rollout", "show", staged); strings.Contains(show, "health gate:") || !strings.Contains(show, "schedule:") {
			t.Errorf("rollout show after removing the gate:\n%s", show)
		}
	})

	t.Run("policies: create, update, versions, show", func(t *testing.T) {
		pol := c.mustRun("policy", "create", "--tenant", tenant, "--product", product, "--action", "NOTIFY")
		if got := c.mustRun("policy", "update", pol, "--priority", "7"); !strings.Contains(got, "version 2") {
			t.Fatalf("policy update: %q", got)
		}
		versions := c.mustRun("policy", "versions", pol)
		if rows(versions) != 2 || !strings.HasPrefix(firstRow(t, versions), "2 ") {
			t.Fatalf("policy versions:\n%s\nwant 2 rows, version 2 first", versions)
		}
		show := c.mustRun("policy", "show", pol)
		if !strings.Contains(show, "priority:   7") || !strings.Contains(show, "action:     NOTIFY") {
			t.Fatalf("policy show:\n%s", show)
		}
		if _, errs, err := c.run("policy", "update", pol); err == nil || !strings.Contains(errs, "give --action") {
			t.Fatalf("policy update with nothing to change: %v %q", err, errs)
		}
	})

	t.Run("blocked versions: add, list, remove", func(t *testing.T) {
		id := c.mustRun("blocked", "add", "1.0.0", "--tenant", tenant, "--product", product, "--reason", "crashes")
		if list := c.mustRun("blocked", "list", "--tenant", tenant); !strings.Contains(list, id) || !strings.Contains(list, "crashes") {
			t.Fatalf("blocked list:\n%s", list)
		}
		c.mustRun("blocked", "remove", id, "--tenant", tenant)
		if list := c.mustRun("blocked", "list", "--tenant", tenant); strings.Contains(list, id) {
			t.Fatalf("blocked list after remove:\n%s", list)
		}
	})

	t.Run("entitlements: list, update, delegate; seats", func(t *testing.T) {
		ent := c.mustRun("entitlement", "create", "--tenant", tenant, "--product", product, "--policy", `{"max_seats":50,"features":["pro"]}`)
		if list := c.mustRun("entitlement", "list", "--tenant", tenant); !strings.Contains(list, ent) {
			t.Fatalf("entitlement list:\n%s", list)
		}
		var m struct {
			MirrorID string `json:"mirror_id"`
		}
		json.Unmarshal([]byte(c.mustRun("mirror", "create", "--tenant", tenant, "-o", "json")), &m)
		got := c.mustRun("entitlement", "delegate", ent, "--mirror", m.MirrorID, "--seats", "20")
		if !strings.Contains(got, "50 in all, 30 leased online by the control plane, 20 by mirror "+m.MirrorID) {
			t.Fatalf("entitlement delegate:\n%s", got)
		}
		var e struct {
			Policy struct {
				MaxSeats    int            `json:"max_seats"`
				Features    []string       `json:"features"`
				MirrorSeats map[string]int `json:"mirror_seats"`
			} `json:"policy_json"`
		}
		json.Unmarshal([]byte(c.mustRun("entitlement", "show", ent, "-o", "json")), &e)
		if e.Policy.MaxSeats != 50 || len(e.Policy.Features) != 1 || e.Policy.MirrorSeats[m.MirrorID] != 20 {
			t.Fatalf("policy after delegate: %+v, want max 50, features kept, 20 seats for the mirror", e.Policy)
		}
		if _, errs, err := c.run("entitlement", "delegate", ent, "--mirror", m.MirrorID, "--seats", "51"); err == nil {
			t.Fatalf("more seats than sold accepted: %q", errs)
		}
		var om struct {
			MirrorID string `json:"mirror_id"`
		}
		json.Unmarshal([]byte(c.mustRun("mirror", "create", "--tenant", other, "-o", "json")), &om)
		if _, errs, err := c.run("entitlement", "delegate", ent, "--mirror", om.MirrorID, "--seats", "1"); err == nil || !strings.Contains(errs, "belongs to tenant "+other) {
			t.Fatalf("another tenant's mirror: %v %q", err, errs)
		}
		if got := c.mustRun("entitlement", "delegate", ent, "--mirror", m.MirrorID, "--seats", "0"); !strings.Contains(got, "50 leased online") {
			t.Fatalf("delegate --seats 0:\n%s", got)
		}
		if got := c.mustRun("entitlement", "update", ent, "--ends-at", "2099-01-01T00:00:00Z"); !strings.Contains(got, ent) {
			t.Fatalf("entitlement update: %q", got)
		}
		if got := c.mustRun("entitlement", "show", ent); !strings.Contains(got, "ends:        2099-01-01T00:00:00Z") {
			t.Fatalf("entitlement show after update:\n%s", got)
		}
		if seats := c.mustRun("seat", "list", "--entitlement", ent); !strings.HasPrefix(seats, "SEAT") || rows(seats) != 0 {
			t.Fatalf("seat list:\n%s", seats)
		}
		explicit := c.mustRun("entitlement", "create", "--tenant", other, "--product", product, "--policy", `{"max_seats":2,"seat_assignment_mode":"explicit"}`)
		seat := c.mustRun("seat", "assign", "--entitlement", explicit, "--subject-id", "host-1")
		if seats := c.mustRun("seat", "list", "--entitlement", explicit); rows(seats) != 1 || !strings.Contains(seats, seat) || !strings.Contains(seats, "host-1") {
			t.Fatalf("seat list after assign:\n%s", seats)
		}
		if got := c.mustRun("seat", "revoke", seat, "--entitlement", explicit); !strings.Contains(got, "revoked") {
			t.Fatalf("seat revoke: %q", got)
		}
		if row := firstRow(t, c.mustRun("seat", "list", "--entitlement", explicit)); strings.HasSuffix(strings.TrimSpace(row), " -") {
			t.Fatalf("seat list after revoke shows no revocation time: %q", row)
		}
	})

	t.Run("snapshots: list newest first, show", func(t *testing.T) {
		c.mustRun("snapshot", "build", "--tenant", tenant)
		c.mustRun("snapshot", "build", "--tenant", tenant)
		list := c.mustRun("snapshot", "list", "--tenant", tenant, "--limit", "1")
		if rows(list) != 1 {
			t.Fatalf("snapshot list --limit 1:\n%s", list)
		}
		id := strings.Fields(firstRow(t, list))[0]
		if f := strings.Fields(firstRow(t, list)); f[1] != "2" {
			t.Fatalf("snapshot list: newest is %v, want sequence 2", f)
		}
		if show := c.mustRun("snapshot", "show", id); !strings.Contains(show, "sequence: 2") {
			t.Fatalf("snapshot show:\n%s", show)
		}
		if env := c.mustRun("snapshot", "show", id, "--envelope"); !json.Valid([]byte(env)) || !strings.Contains(env, "build-record") || strings.Contains(env, "signatures") {
			t.Fatalf("snapshot show --envelope: %.200s, want the unsigned build record", env)
		}
	})
}

// TestControlplane_UploadProgress: uploads report bytes done, the total
// and the rate on stderr (log lines off a terminal; the interval is
// shortened through OUTPOST_PROGRESS_INTERVAL so every read reports).
func TestControlplane_UploadProgress(t *testing.T) {
	c := newCP(t)
	c.mustRun("init")
	file := filepath.Join(t.TempDir(), "app.bin")
	os.WriteFile(file, bytes.Repeat([]byte("x"), 3<<20), 0o644)
	c.env = []string{"OUTPOST_PROGRESS_INTERVAL=1ns"}
	out, errs, err := c.run("artifact", "upload", file)
	if err != nil || !catalog.ValidID(catalog.PrefixArtifact, strings.TrimSpace(out)) {
		t.Fatalf("artifact upload: %v %q %q", err, out, errs)
	}
	for _, want := range []string{"hash app.bin: ", "upload app.bin: 3.0 MiB / 3.0 MiB (100%), "} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q, want %q", errs, want)
		}
	}
	if strings.Contains(errs, "\r") {
		t.Errorf("carriage returns off a terminal: %q", errs)
	}
	tenant := c.mustRun("tenant", "create", "acme")
	c.mustRun("snapshot", "build", "--tenant", tenant)
	for _, args := range [][]string{
		{"bundle", "export", "--tenant", tenant, "--out", filepath.Join(t.TempDir(), "b.tar")},
		{"backup", "--out", filepath.Join(t.TempDir(), "catalog.db")},
	} {
		if _, errs, err := c.run(args...); err != nil || !strings.Contains(errs, args[0]+" export: ") && !strings.Contains(errs, args[0]+": ") {
			t.Errorf("%s: %v, stderr %q; want its progress", args[0], err, errs)
		}
	}
}
