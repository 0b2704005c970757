package catalog_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

const (
	mirA = "mir_06h2895me8zm72cqj0s7d5e2b0"
	mirB = "mir_06h2895me8zm72cqj0s7d5e2b1"
	mirC = "mir_06h2895me8zm72cqj0s7d5e2b2"
)

func TestParseEntitlementPolicy_SeatArithmetic(t *testing.T) {
	max := fmt.Sprint(math.MaxInt64)
	cases := []struct {
		name       string
		raw        string
		wantOnline int // -1: refused
	}{
		{"exactly max", `{"max_seats":10,"mirror_seats":{"` + mirA + `":4,"` + mirB + `":6}}`, 0},
		{"below max", `{"max_seats":10,"mirror_seats":{"` + mirA + `":4,"` + mirB + `":5}}`, 1},
		{"zero seats for a mirror", `{"max_seats":10,"mirror_seats":{"` + mirA + `":0}}`, 10},
		{"one over", `{"max_seats":10,"mirror_seats":{"` + mirA + `":5,"` + mirB + `":6}}`, -1},
		// Two MaxInt64 wrap to -2 in an unchecked sum, which is under any cap.
		{"sum wraps negative", `{"max_seats":10,"mirror_seats":{"` + mirA + `":` + max + `,"` + mirB + `":` + max + `}}`, -1},
		{"sum wraps to small positive", `{"max_seats":10,"mirror_seats":{"` + mirA + `":` + max + `,"` + mirB + `":` + max + `,"` + mirC + `":3}}`, -1},
		{"single huge", `{"max_seats":10,"mirror_seats":{"` + mirA + `":` + max + `}}`, -1},
		{"negative", `{"max_seats":10,"mirror_seats":{"` + mirA + `":-1}}`, -1},
		{"min int", `{"max_seats":10,"mirror_seats":{"` + mirA + `":` + fmt.Sprint(math.MinInt64) + `,"` + mirB + `":5}}`, -1},
		{"beyond int64", `{"max_seats":10,"mirror_seats":{"` + mirA + `":9223372036854775808}}`, -1},
		{"max_seats beyond int64", `{"max_seats":9223372036854775808}`, -1},
		{"max_seats negative", `{"max_seats":-5}`, -1},
		{"max_seats float", `{"max_seats":1e3}`, -1},
		{"negative grace", `{"max_seats":1,"offline_grace":"-1h"}`, -1},
		{"huge ttl", `{"max_seats":1,"lease_ttl":"2562047h"}`, -1},
		{"ttl overflowing duration", `{"max_seats":1,"lease_ttl":"9999999999h"}`, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := catalog.ParseEntitlementPolicy(json.RawMessage(c.raw))
			if c.wantOnline < 0 {
				if catalog.ErrorCode(err) != catalog.EINVALID {
					t.Fatalf("got %+v, %v; want an invalid error", p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.OnlineSeats(); got != c.wantOnline {
				t.Fatalf("OnlineSeats = %d, want %d", got, c.wantOnline)
			}
		})
	}
}

func TestOnlineSeats_UnvalidatedPolicy(t *testing.T) {
	cases := []struct {
		name string
		p    catalog.EntitlementPolicy
		want int
	}{
		{"plain", catalog.EntitlementPolicy{MaxSeats: 5, MirrorSeats: map[string]int{mirA: 2}}, 3},
		{"wrapping sum", catalog.EntitlementPolicy{MaxSeats: 5, MirrorSeats: map[string]int{mirA: math.MaxInt, mirB: math.MaxInt}}, 0},
		{"negative mirror count does not add seats", catalog.EntitlementPolicy{MaxSeats: 5, MirrorSeats: map[string]int{mirA: math.MinInt}}, 5},
		{"over max", catalog.EntitlementPolicy{MaxSeats: 5, MirrorSeats: map[string]int{mirA: 6}}, 0},
		{"negative max", catalog.EntitlementPolicy{MaxSeats: -3}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.OnlineSeats(); got != c.want {
				t.Fatalf("OnlineSeats = %d, want %d", got, c.want)
			}
		})
	}
}

// FuzzPolicyJSON checks that whatever policy_json is accepted obeys the
// documented bounds, and that an accepted policy survives a round trip.
func FuzzPolicyJSON(f *testing.F) {
	max := fmt.Sprint(math.MaxInt64)
	for _, s := range []string{
		`{"max_seats":3}`,
		`{"max_seats":3,"seat_assignment_mode":"explicit","lease_ttl":"2h","features":["b","a"],"offline_grace":"24h","mirror_seats":{"` + mirA + `":2}}`,
		`{"max_seats":10,"mirror_seats":{"` + mirA + `":` + max + `,"` + mirB + `":` + max + `}}`,
		`{"max_seats":10,"mirror_seats":{"` + mirA + `":` + max + `,"` + mirB + `":` + max + `,"` + mirC + `":3}}`,
		`{"max_seats":10,"mirror_seats":{"` + mirA + `":-9223372036854775808,"` + mirB + `":5}}`,
		`{"max_seats":-1}`,
		`{"max_seats":1000001}`,
		`{"max_seats":9223372036854775808}`,
		`{"max_seats":1,"lease_ttl":"-1h","offline_grace":"-5m"}`,
		`{"max_seats":1,"lease_ttl":"9223372036854775807ns"}`,
		`{"max_seats":1,"features":["` + strings.Repeat("x", 129) + `"]}`,
		`{"max_seats":1}{}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := catalog.ParseEntitlementPolicy(json.RawMessage(raw))
		if err != nil {
			if catalog.ErrorCode(err) != catalog.EINVALID {
				t.Fatalf("error %v has code %q, want invalid", err, catalog.ErrorCode(err))
			}
			return
		}
		if p.MaxSeats < 1 || p.MaxSeats > 1_000_000 {
			t.Fatalf("accepted max_seats %d", p.MaxSeats)
		}
		sum := new(big.Int)
		for id, n := range p.MirrorSeats {
			if n < 0 {
				t.Fatalf("accepted negative seats %d for %s", n, id)
			}
			sum.Add(sum, big.NewInt(int64(n)))
		}
		if sum.Cmp(big.NewInt(int64(p.MaxSeats))) > 0 {
			t.Fatalf("accepted mirror seats summing to %s over max_seats %d", sum, p.MaxSeats)
		}
		if got, want := int64(p.OnlineSeats()), int64(p.MaxSeats)-sum.Int64(); got != want {
			t.Fatalf("OnlineSeats = %d, want %d", got, want)
		}
		ttl, grace := time.Duration(p.LeaseTTL), time.Duration(p.OfflineGrace)
		if ttl < time.Minute || ttl > 8760*time.Hour || grace < 0 || grace > 720*time.Hour {
			t.Fatalf("accepted lease_ttl %s, offline_grace %s", ttl, grace)
		}
		if !slices.IsSorted(p.Features) {
			t.Fatalf("features not sorted: %q", p.Features)
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal accepted policy: %v", err)
		}
		q, err := catalog.ParseEntitlementPolicy(out)
		if err != nil {
			t.Fatalf("round trip of %s: %v", out, err)
		}
		if again, _ := json.Marshal(q); string(again) != string(out) {
			t.Fatalf("round trip changed the policy:\n%s\n%s", out, again)
		}
	})
}
