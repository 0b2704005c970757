package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// TestSeats_DatabaseEnforcesLimit: migration 8 makes the database refuse,
// whoever writes, a seat assignment past the entitlement's limit
// (max_seats less the mirrors' seats, in explicit mode; none in automatic
// mode), and a seat moved to another entitlement or subject. A revoked
// seat gives its place back, and a policy may lower the limit below what
// is assigned. Each case runs on the state the ones before it left.
func TestSeats_DatabaseEnforcesLimit(t *testing.T) {
	ctx, db, tn := openWithTenant(t)
	prods := createProducts(t, ctx, db, "one", "two", "three")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entitlement := func(product, policy string) *catalog.Entitlement {
		return createEntitlement(t, ctx, db, tn.TenantID, product, policy, t0)
	}
	mirror := catalog.NewID(catalog.PrefixMirror)
	// 3 seats, 1 of them the mirror's: 2 for the control plane.
	explicit := entitlement(prods[0], fmt.Sprintf(`{"max_seats":3,"seat_assignment_mode":"explicit","mirror_seats":{%q:1}}`, mirror))
	automatic := entitlement(prods[1], `{"max_seats":5}`)

	type seatRow struct {
		id, ent, subject string
		revoked          bool
	}
	raw := func(r seatRow) []byte {
		s := &catalog.SeatAssignment{SeatAssignmentID: r.id, EntitlementID: r.ent, SubjectType: catalog.SubjectUser, SubjectID: r.subject,
			AssignedAt: t0, AssignedBy: "usr_test"}
		if r.revoked {
			s.RevokedAt, s.RevokedBy = &t0, "usr_test"
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// together writes rows in one transaction, in order.
	together := func(rows ...seatRow) func() string {
		return func() string {
			return behindAll(t, db.pool, func(ctx context.Context, tx pgx.Tx) error {
				for _, r := range rows {
					if _, err := tx.Exec(ctx, putRow, "seats", []byte(r.id), raw(r)); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	seat := func(id, ent, subject string, revoked bool) func() string {
		return together(seatRow{id, ent, subject, revoked})
	}
	policy := func(p string) func() string {
		return func() string {
			_, err := db.UpdateEntitlement(ctx, explicit.EntitlementID, func(e *catalog.Entitlement) error {
				e.Policy = json.RawMessage(p)
				return nil
			})
			if err != nil {
				t.Fatalf("update the policy: %v", err)
			}
			return ok
		}
	}
	e := explicit.EntitlementID
	for _, c := range []struct {
		name string
		do   func() string
		want string
	}{
		{"a seat", seat("sea_1", e, "u1", false), ok},
		{"a second seat", seat("sea_2", e, "u2", false), ok},
		{"a third, past max_seats less the mirror's", seat("sea_3", e, "u3", false), rule},
		{"a revoked seat past the limit", seat("sea_3", e, "u3", true), ok},
		{"a seat revoked", seat("sea_1", e, "u1", true), ok},
		{"another in its place", seat("sea_4", e, "u4", false), ok},
		// What counts is the state a transaction commits: a seat taken
		// before another is given back, at the limit, in one transaction.
		{"one taken, then one given back, at the limit", together(seatRow{"sea_10", e, "u10", false}, seatRow{"sea_4", e, "u4", true}), ok},
		{"one given back, then one taken", together(seatRow{"sea_10", e, "u10", true}, seatRow{"sea_4b", e, "u4", false}), ok},
		{"two taken, one given back, past the limit", together(seatRow{"sea_11", e, "u11", false}, seatRow{"sea_12", e, "u12", false},
			seatRow{"sea_4b", e, "u4", true}), rule},
		{"a seat moved to another subject", seat("sea_2", e, "u9", false), rule},
		{"a seat moved to another entitlement", seat("sea_2", automatic.EntitlementID, "u2", false), rule},
		{"a seat of an entitlement in automatic mode", seat("sea_5", automatic.EntitlementID, "u5", false), rule},
		{"a seat of an entitlement not stored", seat("sea_6", "ent_nosuchentitlement", "u6", false), fk},
		{"the mirror's seat given back", policy(`{"max_seats":3,"seat_assignment_mode":"explicit"}`), ok},
		{"a third seat now", seat("sea_7", e, "u7", false), ok},
		{"the limit lowered below the seats assigned", policy(`{"max_seats":1,"seat_assignment_mode":"explicit"}`), ok},
		{"no seat fits", seat("sea_8", e, "u8", false), rule},
		{"two revoked", func() string {
			if got := seat("sea_2", e, "u2", true)(); got != ok {
				return got
			}
			return seat("sea_4b", e, "u4", true)()
		}, ok},
		{"still none fits (one assigned, one allowed)", seat("sea_8", e, "u8", false), rule},
		{"the last revoked", seat("sea_7", e, "u7", true), ok},
		{"then one fits", seat("sea_8", e, "u8", false), ok},
		{"the mode made automatic", policy(`{"max_seats":3}`), ok},
		{"no seat in automatic mode", seat("sea_9", e, "u9", false), rule},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.do(); got != c.want {
				t.Fatalf("SQLSTATE = %q, want %q", got, c.want)
			}
		})
	}
	if n, lim := seatCount(t, db, e); n != 1 || lim != 0 {
		t.Fatalf("seat count = %d of %d, want 1 of 0 (sea_8, assigned before the mode changed)", n, lim)
	}

	// The store's own writes keep the count, and a write that gets past
	// the store's counter is refused by the database with a conflict.
	t.Run("the store's writes", func(t *testing.T) {
		ent := entitlement(prods[2], `{"max_seats":2,"seat_assignment_mode":"explicit"}`)
		assign := func(subject string) (*catalog.SeatAssignment, error) {
			s := &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: ent.EntitlementID,
				SubjectType: catalog.SubjectUser, SubjectID: subject}
			return s, db.AssignSeat(ctx, s)
		}
		s1, err := assign("a")
		if err != nil {
			t.Fatal(err)
		}
		if n, lim := seatCount(t, db, ent.EntitlementID); n != 1 || lim != 2 {
			t.Fatalf("after one assignment: %d of %d, want 1 of 2", n, lim)
		}
		// A seat behind the store's back: its counter says 1, the
		// database 2, so the store lets the next one through and the
		// database refuses it.
		if got := seat(catalog.NewID(catalog.PrefixSeat), ent.EntitlementID, "behind", false)(); got != ok {
			t.Fatalf("a seat behind the store's back: SQLSTATE %q, want it committed", got)
		}
		_, err = assign("b")
		if catalog.ErrorCode(err) != catalog.ECONFLICT || !strings.Contains(err.Error(), "the database refused the write: outpost: no free seat") {
			t.Fatalf("AssignSeat past the database's count: %v, want the database's conflict", err)
		}
		if _, err := db.RevokeSeat(ctx, ent.EntitlementID, s1.SeatAssignmentID, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if n, _ := seatCount(t, db, ent.EntitlementID); n != 1 {
			t.Fatalf("after a revocation: %d seats counted, want 1", n)
		}
		if _, err := assign("b"); err != nil {
			t.Fatalf("AssignSeat into the place given back: %v", err)
		}
	})
}

// seatCount returns the database's count of active seats of an
// entitlement and its limit (migration 8).
func seatCount(t *testing.T, db *DB, entitlementID string) (active, limit int) {
	t.Helper()
	err := db.pool.QueryRow(context.Background(), "SELECT active, seat_limit FROM outpost_seat_count WHERE entitlement_id = $1",
		entitlementID).Scan(&active, &limit)
	if err != nil {
		t.Fatalf("seat count of %s: %v", entitlementID, err)
	}
	return active, limit
}

// checkSeatCounts fails t unless the database's counts are the active
// seats and leases it holds, for every entitlement.
func checkSeatCounts(t *testing.T, db *DB) {
	t.Helper()
	for what, q := range map[string]string{
		"seats": `SELECT c.entitlement_id, c.active, count(s.seat_assignment_id)
			FROM outpost_seat_count c LEFT JOIN outpost_seat_ref s ON s.entitlement_id = c.entitlement_id AND s.active
			GROUP BY c.entitlement_id, c.active HAVING c.active <> count(s.seat_assignment_id)`,
		"leases": `SELECT c.entitlement_id, c.active, count(a.k)
			FROM outpost_lease_count c LEFT JOIN outpost_kv a ON a.bucket = 'idx_lease_active'
				AND substring(a.k FROM 1 FOR octet_length(c.entitlement_id) + 1) = convert_to(c.entitlement_id, 'UTF8') || '\x00'::bytea
			GROUP BY c.entitlement_id, c.active HAVING c.active <> count(a.k)`,
	} {
		rows, err := db.pool.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var counted, held int
			if err := rows.Scan(&id, &counted, &held); err != nil {
				t.Fatal(err)
			}
			t.Errorf("entitlement %s: %d %s counted, %d active", id, counted, what, held)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeases_DatabaseEnforcesLimit: migration 8 makes the database
// refuse, whoever writes, a transaction that commits more active leases
// of an entitlement than its policy's seats (max_seats less the
// mirrors'), counting store/kv's active set: a subject that leaves it
// gives its seat back, the state committed is what counts, and a policy
// may lower the limit below what is out. Each case runs on the state the
// ones before it left.
func TestLeases_DatabaseEnforcesLimit(t *testing.T) {
	ctx, db, tn := openWithTenant(t)
	prods := createProducts(t, ctx, db, "one", "two")
	entitlement := func(product, policy string) *catalog.Entitlement {
		return createEntitlement(t, ctx, db, tn.TenantID, product, policy, time.Now().Add(-time.Hour))
	}
	// 3 seats, 1 of them the mirror's: 2 for the control plane.
	e := entitlement(prods[0], fmt.Sprintf(`{"max_seats":3,"mirror_seats":{%q:1}}`, catalog.NewID(catalog.PrefixMirror))).EntitlementID
	type op struct {
		subject string
		out     bool // leaves the active set
	}
	// together enters and leaves store/kv's active set in one
	// transaction, in order.
	together := func(ent string, ops ...op) func() string {
		return func() string {
			return behindAll(t, db.pool, func(ctx context.Context, tx pgx.Tx) error {
				for _, o := range ops {
					k := license.SubjectKey(ent, catalog.SubjectMachine, o.subject)
					var err error
					if o.out {
						_, err = tx.Exec(ctx, "DELETE FROM outpost_kv WHERE bucket = 'idx_lease_active' AND k = $1", k)
					} else {
						_, err = tx.Exec(ctx, putRow, "idx_lease_active", k, []byte(catalog.NewID(catalog.PrefixLease)))
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	in := func(subject string) func() string { return together(e, op{subject, false}) }
	out := func(subject string) func() string { return together(e, op{subject, true}) }
	policy := func(p string) func() string {
		return func() string {
			if _, err := db.UpdateEntitlement(ctx, e, func(x *catalog.Entitlement) error { x.Policy = json.RawMessage(p); return nil }); err != nil {
				t.Fatalf("update the policy: %v", err)
			}
			return ok
		}
	}
	for _, c := range []struct {
		name string
		do   func() string
		want string
	}{
		{"a lease", in("m1"), ok},
		{"a second", in("m2"), ok},
		{"a third, past max_seats less the mirror's", in("m3"), rule},
		{"a lease renewed or replaced (its row updated)", in("m2"), ok},
		{"one given back", out("m1"), ok},
		{"another in its place", in("m3"), ok},
		{"one taken, then one given back, at the limit", together(e, op{"m4", false}, op{"m3", true}), ok},
		{"two taken, one given back", together(e, op{"m5", false}, op{"m6", false}, op{"m4", true}), rule},
		{"an active lease of an entitlement not stored", together("ent_nosuchentitlement", op{"m1", false}), fk},
		{"the limit lowered below the leases out", policy(`{"max_seats":1}`), ok},
		{"no lease fits", in("m7"), rule},
		{"one given back, still none fits", together(e, op{"m2", true}, op{"m7", false}), rule},
		{"two given back", together(e, op{"m2", true}, op{"m4", true}), ok},
		{"then one fits", in("m7"), ok},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.do(); got != c.want {
				t.Fatalf("SQLSTATE = %q, want %q", got, c.want)
			}
		})
	}
	checkSeatCounts(t, db)

	// The store's own leases keep the count, and a lease that gets past
	// the store's counter is refused by the database with a conflict.
	t.Run("the store's writes", func(t *testing.T) {
		ent := entitlement(prods[1], `{"max_seats":2}`).EntitlementID
		acquire := func(subject string) (*catalog.Lease, error) {
			return db.AcquireLease(ctx, &catalog.Lease{EntitlementID: ent, SubjectType: catalog.SubjectMachine, SubjectID: subject,
				IssuedAt: time.Now().UTC(), TokenHash: fmt.Sprintf("%064x", len(subject))})
		}
		l, err := acquire("a")
		if err != nil {
			t.Fatal(err)
		}
		if got := together(ent, op{"behind", false})(); got != ok {
			t.Fatalf("a lease behind the store's back: SQLSTATE %q, want it committed", got)
		}
		_, err = acquire("b")
		if catalog.ErrorCode(err) != catalog.ECONFLICT || !strings.Contains(err.Error(), "the database refused the write: outpost: no free seat") {
			t.Fatalf("AcquireLease past the database's count: %v, want the database's conflict", err)
		}
		if _, err := db.ReleaseLease(ctx, l.LeaseID, "", true, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := acquire("b"); err != nil {
			t.Fatalf("AcquireLease into the seat given back: %v", err)
		}
		checkSeatCounts(t, db)
	})
}

// TestMigrate_SeatLimitBackfill: migration 8 counts the seats already
// assigned and the leases already active, refuses none of them (a limit
// may have been lowered below them), and refuses a new one past the
// limit.
func TestMigrate_SeatLimitBackfill(t *testing.T) {
	ctx := context.Background()
	name, pool, conn := schemaAt(t, testURL(t), 7)
	ent := func(id, product, policy string) [3]string {
		return [3]string{"entitlements", id, `{"entitlement_id":"` + id + `","tenant_id":"ten_a","product_id":"` + product +
			`","policy_json":` + policy + `,"starts_at":"2026-01-01T00:00:00Z","ends_at":null}`}
	}
	seat := func(id, ent, subject, revokedAt string) [3]string {
		return [3]string{"seats", id, `{"seat_assignment_id":"` + id + `","entitlement_id":"` + ent + `","subject_type":"user","subject_id":"` +
			subject + `","revoked_at":` + revokedAt + `}`}
	}
	rows := [][3]string{
		{"tenants", "ten_a", `{"tenant_id":"ten_a","name":"a"}`},
		{"products", "prd_a", `{"product_id":"prd_a","name":"a"}`},
		{"products", "prd_b", `{"product_id":"prd_b","name":"b"}`},
		{"products", "prd_c", `{"product_id":"prd_c","name":"c"}`},
		// Two seats assigned, then the limit lowered to one.
		ent("ent_a", "prd_a", `{"max_seats":1,"seat_assignment_mode":"explicit"}`),
		seat("sea_1", "ent_a", "u1", "null"),
		seat("sea_2", "ent_a", "u2", "null"),
		seat("sea_3", "ent_a", "u3", `"2026-02-01T00:00:00Z"`),
		// 5 seats, 3 of them mirrors': 2 for the control plane.
		ent("ent_b", "prd_b", `{"max_seats":5,"seat_assignment_mode":"explicit","mirror_seats":{"mir_a":2,"mir_b":1}}`),
		ent("ent_c", "prd_c", `{"max_seats":5}`),
		// Active leases: three of ent_a (over its lowered limit), two of
		// ent_c.
		{"idx_lease_active", "ent_a\x00machine\x00m1", "lea_1"},
		{"idx_lease_active", "ent_a\x00machine\x00m2", "lea_2"},
		{"idx_lease_active", "ent_a\x00user\x00m2", "lea_3"},
		{"idx_lease_active", "ent_c\x00machine\x00m1", "lea_4"},
		{"idx_lease_active", "ent_c\x00machine\x00m2", "lea_5"},
		// Rows of other buckets are no JSON: never parsed.
		{"seat_counts", "ent_a", "\x00\x00\x00\x00\x00\x00\x00\x02"},
	}
	for _, r := range rows {
		if _, err := conn.Exec(ctx, putRow, r[0], []byte(r[1]), []byte(r[2])); err != nil {
			t.Fatalf("%s %s: %v", r[0], r[1], err)
		}
	}
	if err := migrateTo(ctx, pool, name, migrations); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table, ent   string
		active, want int
	}{
		{"outpost_seat_count", "ent_a", 2, 1}, {"outpost_seat_count", "ent_b", 0, 2}, {"outpost_seat_count", "ent_c", 0, 0},
		{"outpost_lease_count", "ent_a", 3, 1}, {"outpost_lease_count", "ent_b", 0, 2}, {"outpost_lease_count", "ent_c", 2, 5},
	} {
		var active, limit int
		q := "SELECT active, seat_limit FROM outpost_seat_count WHERE entitlement_id = $1"
		if c.table == "outpost_lease_count" {
			q = "SELECT active, lease_limit FROM outpost_lease_count WHERE entitlement_id = $1"
		}
		if err := conn.QueryRow(ctx, q, c.ent).Scan(&active, &limit); err != nil {
			t.Fatalf("%s %s: %v", c.table, c.ent, err)
		}
		if active != c.active || limit != c.want {
			t.Errorf("%s %s: %d active of %d, want %d of %d", c.table, c.ent, active, limit, c.active, c.want)
		}
	}
	for _, c := range []struct {
		name string
		row  [3]string
		want string
	}{
		{"a seat past a limit lowered before the migration", seat("sea_4", "ent_a", "u4", "null"), "23000"},
		{"a seat within the mirrors' share", seat("sea_5", "ent_b", "u5", "null"), ""},
		{"another", seat("sea_6", "ent_b", "u6", "null"), ""},
		{"one past it", seat("sea_7", "ent_b", "u7", "null"), "23000"},
		{"a seat in automatic mode", seat("sea_8", "ent_c", "u8", "null"), "23000"},
		{"a lease past a limit lowered before the migration", [3]string{"idx_lease_active", "ent_a\x00machine\x00m9", "lea_9"}, "23000"},
		{"a lease within the limit", [3]string{"idx_lease_active", "ent_c\x00machine\x00m9", "lea_9"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := behind(t, pool, putRow, c.row[0], []byte(c.row[1]), []byte(c.row[2])); got != c.want {
				t.Fatalf("SQLSTATE = %q, want %q", got, c.want)
			}
		})
	}
}
