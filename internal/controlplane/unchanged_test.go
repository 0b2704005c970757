package controlplane

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

func TestDecodeUpdate_Behaviour(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		action    string
		unchanged string // sorted member names
		invalid   bool
	}{
		{"writable only", `{"action":"NOTIFY","priority":2}`, "NOTIFY", "", false},
		{"read-only members kept", `{"action":"NOTIFY","policy_id":"pol_x","version":3}`, "NOTIFY", "policy_id,version", false},
		{"wrong type on a writable field", `{"action":7}`, "", "", true},
		{"not an object", `[1]`, "", "", true},
		{"trailing data", `{"action":"NOTIFY"} {}`, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in PolicyUpdate
			err := DecodeUpdate(strings.NewReader(c.body), &in)
			if c.invalid {
				if catalog.ErrorCode(err) != catalog.EINVALID {
					t.Fatalf("err %v, want invalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for k := range in.Unchanged {
				names = append(names, k)
			}
			sort.Strings(names)
			if in.Action != c.action || strings.Join(names, ",") != c.unchanged {
				t.Fatalf("got action %q, unchanged %v; want %q, %s", in.Action, names, c.action, c.unchanged)
			}
		})
	}
	t.Run("a struct without Unchanged refuses other members", func(t *testing.T) {
		var in struct {
			Name string `json:"name"`
		}
		err := DecodeUpdate(strings.NewReader(`{"name":"a","extra":1}`), &in)
		var de *catalog.Error
		if !errors.As(err, &de) || de.Field != "extra" {
			t.Fatalf("err %v, want invalid naming extra", err)
		}
	})
}

func TestUnchanged_Check(t *testing.T) {
	created := time.Date(2026, 11, 30, 7, 0, 0, 123_000_000, time.UTC)
	stored := &catalog.Policy{PolicyID: "pol_a", TenantID: "ten_a", Channel: "stable", Version: 2, CreatedAt: created,
		Conditions: json.RawMessage(`{"platforms":["linux"]}`)}
	cases := []struct {
		name  string
		u     Unchanged
		field string // "" when accepted
	}{
		{"nothing echoed", nil, ""},
		{"equal values", Unchanged{"policy_id": json.RawMessage(`"pol_a"`), "version": json.RawMessage(`2`)}, ""},
		{"equal time in another offset", Unchanged{"created_at": json.RawMessage(`"2026-11-30T08:00:00.123+01:00"`)}, ""},
		{"changed id", Unchanged{"policy_id": json.RawMessage(`"pol_b"`)}, "policy_id"},
		{"changed number", Unchanged{"version": json.RawMessage(`3`)}, "version"},
		{"changed time", Unchanged{"created_at": json.RawMessage(`"2026-11-30T07:00:01Z"`)}, "created_at"},
		{"changed type", Unchanged{"channel": json.RawMessage(`1`)}, "channel"},
		{"unknown member", Unchanged{"owner": json.RawMessage(`"x"`)}, "owner"},
		{"first of two, by name", Unchanged{"version": json.RawMessage(`9`), "channel": json.RawMessage(`"beta"`)}, "channel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.u.check(stored)
			var de *catalog.Error
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field != "" && (!errors.As(err, &de) || de.Code != catalog.EINVALID || de.Field != c.field):
				t.Fatalf("err %v, want invalid naming %s", err, c.field)
			}
		})
	}
}
