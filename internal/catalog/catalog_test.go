package catalog_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

func TestNewID_SortsByCreation(t *testing.T) {
	var ids []string
	for range 1000 {
		ids = append(ids, catalog.NewID(catalog.PrefixTenant))
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids made one after another do not sort in creation order")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] || !catalog.ValidID(catalog.PrefixTenant, id) {
			t.Fatalf("bad or duplicate id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "ten_", "prd_" + ids[0][4:], ids[0] + "x", strings.ToUpper(ids[0]), "ten_../../../../etc/passwd00000"} {
		if catalog.ValidID(catalog.PrefixTenant, bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestValidateRolloutTransition(t *testing.T) {
	cases := []struct {
		from, to string
		code     string
	}{
		{"active", "paused", ""},
		{"paused", "active", ""},
		{"active", "completed", ""},
		{"paused", "killed", ""},
		{"killed", "active", catalog.ECONFLICT},
		{"completed", "paused", catalog.ECONFLICT},
		{"completed", "completed", catalog.ECONFLICT},
		{"active", "bogus", catalog.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.from+"->"+c.to, func(t *testing.T) {
			if got := catalog.ErrorCode(catalog.ValidateRolloutTransition(c.from, c.to)); got != c.code {
				t.Fatalf("got %q, want %q", got, c.code)
			}
		})
	}
}

func TestEntitlement_Overlaps(t *testing.T) {
	at := func(d int) *time.Time { v := time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC); return &v }
	ent := func(from int, to *time.Time) *catalog.Entitlement {
		return &catalog.Entitlement{StartsAt: *at(from), EndsAt: to}
	}
	cases := []struct {
		name string
		a, b *catalog.Entitlement
		want bool
	}{
		{"disjoint", ent(1, at(5)), ent(5, at(9)), false}, // [1,5) and [5,9) touch, do not overlap
		{"overlap", ent(1, at(6)), ent(5, at(9)), true},
		{"open end runs forever", ent(1, nil), ent(20, at(25)), true},
		{"both open", ent(1, nil), ent(2, nil), true},
		{"before an open one", ent(1, at(3)), ent(3, nil), false},
		{"contained", ent(1, at(20)), ent(5, at(6)), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.a.Overlaps(c.b); got != c.want {
				t.Fatalf("a.Overlaps(b) = %v, want %v", got, c.want)
			}
			if got := c.b.Overlaps(c.a); got != c.want {
				t.Fatalf("b.Overlaps(a) = %v, want %v", got, c.want)
			}
		})
	}
	e := ent(1, at(5))
	if !e.Current(*at(1)) || e.Current(*at(5)) || !e.Ended(*at(5)) {
		t.Fatal("Current/Ended do not follow [starts_at, ends_at)")
	}
}

func TestParseEntitlementPolicy(t *testing.T) {
	cases := []struct {
		name, raw, mentions string
	}{
		{"minimal", `{"max_seats":3}`, ""},
		{"full", `{"max_seats":3,"seat_assignment_mode":"explicit","lease_ttl":"2h","features":["b","a"],"offline_grace":"24h","mirror_seats":{"mir_06h2895me8zm72cqj0s7d5e2b0":2}}`, ""},
		{"unknown key", `{"max_seats":3,"maxseats":4}`, "maxseats"},
		{"wrong type", `{"max_seats":"3"}`, "max_seats"},
		{"zero seats", `{"max_seats":0}`, "max_seats"},
		{"bad mode", `{"max_seats":1,"seat_assignment_mode":"manual"}`, "seat_assignment_mode"},
		{"bad ttl", `{"max_seats":1,"lease_ttl":"forever"}`, "forever"},
		{"short ttl", `{"max_seats":1,"lease_ttl":"1s"}`, "lease_ttl"},
		{"mirror seats over max", `{"max_seats":1,"mirror_seats":{"mir_06h2895me8zm72cqj0s7d5e2b0":2}}`, "mirror_seats"},
		{"bad mirror id", `{"max_seats":1,"mirror_seats":{"x":1}}`, "mirror_seats"},
		{"trailing", `{"max_seats":1} {}`, "trailing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := catalog.ParseEntitlementPolicy(json.RawMessage(c.raw))
			if c.mentions == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.SeatAssignmentMode == "" || p.LeaseTTL == 0 {
					t.Fatalf("defaults not filled: %+v", p)
				}
				return
			}
			if catalog.ErrorCode(err) != catalog.EINVALID || !strings.Contains(err.Error(), c.mentions) {
				t.Fatalf("got %v, want invalid naming %q", err, c.mentions)
			}
		})
	}
	p, _ := catalog.ParseEntitlementPolicy(json.RawMessage(`{"max_seats":10,"mirror_seats":{"mir_06h2895me8zm72cqj0s7d5e2b0":4}}`))
	if got := p.OnlineSeats(); got != 6 {
		t.Fatalf("OnlineSeats = %d, want 6", got)
	}
}
