package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var auditCases = []testCase{
	{"AuditChain", testAuditChain},
	{"AppendAudit", testAppendAudit},
	{"AuditOrder", testAuditOrder},
	{"AuditEvents", testAuditEvents},
	{"Idempotency", testIdempotency},
	{"IdempotencyReserve", testIdempotencyReserve},
}

// verifyChain walks the chain with audit.Verifier and returns the events.
func (f *fx) verifyChain() []*catalog.AuditEvent {
	f.t.Helper()
	var v audit.Verifier
	var evs []*catalog.AuditEvent
	must(f.t, f.s.WalkAudit(f.ctx, func(ev *catalog.AuditEvent) error {
		evs = append(evs, ev)
		return v.Next(ev)
	}))
	if v.Count() != int64(len(evs)) {
		f.t.Fatalf("verified %d of %d events", v.Count(), len(evs))
	}
	return evs
}

// testAuditChain makes one of every kind of change, each checked for its
// single event, then verifies the whole chain.
func testAuditChain(t *testing.T, f *fx) {
	ctx, now := f.ctx, f.now
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "Chain"}
	f.mutation("tenant.created", tn.TenantID, func() error { return f.s.CreateTenant(ctx, tn) })
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "P"}
	f.mutation("product.created", "", func() error { return f.s.CreateProduct(ctx, p) })
	a := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged, SHA256: randHash(), SizeBytes: 1}
	f.mutation("artifact.created", "", func() error { return f.s.CreateArtifact(ctx, a) })
	f.mutation("artifact.verified", "", func() error {
		_, err := f.s.SetArtifactStatus(ctx, a.ArtifactID, catalog.ArtifactVerified, &now)
		return err
	})
	r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: "1.0.0"}
	f.mutation("release.created", "", func() error { return f.s.CreateRelease(ctx, r) })
	f.mutation("release.artifact_attached", "", func() error {
		return f.s.AttachArtifact(ctx, &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: r.ReleaseID, ArtifactID: a.ArtifactID, Platform: "linux", Arch: "arm64", InstallerType: "deb"})
	})
	pol := &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: tn.TenantID, ProductID: p.ProductID, Channel: "stable", Action: catalog.ActionNotify}
	f.mutation("policy.created", tn.TenantID, func() error { return f.s.CreatePolicy(ctx, pol) })
	f.mutation("policy.updated", tn.TenantID, func() error {
		_, err := f.s.UpdatePolicy(ctx, pol.PolicyID, func(x *catalog.Policy) error { x.Priority = 3; return nil })
		return err
	})
	blk := &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID, BlockedVersion: "0.9.0"}
	f.mutation("blocked_version.created", tn.TenantID, func() error { return f.s.CreateBlockedVersion(ctx, blk) })
	ro := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: p.ProductID, Channel: "stable", ReleaseID: r.ReleaseID, Percentage: 1}
	f.mutation("rollout.created", "", func() error { return f.s.CreateRollout(ctx, ro) })
	f.mutation("rollout.updated", "", func() error {
		_, err := f.s.UpdateRollout(ctx, ro.RolloutID, func(x *catalog.Rollout) error { x.Status = catalog.RolloutCompleted; return nil })
		return err
	})
	ent := f.newEntitlement(tn.TenantID, p.ProductID, entPolicy(2, catalog.SeatsExplicit), now.Add(-time.Hour), nil)
	f.mutation("entitlement.created", tn.TenantID, func() error { return f.s.CreateEntitlement(ctx, ent) })
	f.mutation("entitlement.updated", tn.TenantID, func() error {
		_, err := f.s.UpdateEntitlement(ctx, ent.EntitlementID, func(x *catalog.Entitlement) error { x.Policy = entPolicy(3, catalog.SeatsExplicit); return nil })
		return err
	})
	st := &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: ent.EntitlementID, SubjectType: catalog.SubjectMachine, SubjectID: "m1"}
	f.mutation("seat.assigned", tn.TenantID, func() error { return f.s.AssignSeat(ctx, st) })
	l := f.lease(ent.EntitlementID, "m1", now)
	f.mutation("lease.issued", tn.TenantID, func() error { _, err := f.s.AcquireLease(ctx, l); return err })
	f.mutation("lease.renewed", tn.TenantID, func() error {
		_, err := f.s.AcquireLease(ctx, f.lease(ent.EntitlementID, "m1", now.Add(time.Minute)))
		return err
	})
	f.mutation("lease.released", tn.TenantID, func() error { _, err := f.s.ReleaseLease(ctx, l.LeaseID, "", false, now); return err })
	f.mutation("seat.revoked", tn.TenantID, func() error {
		_, err := f.s.RevokeSeat(ctx, ent.EntitlementID, st.SeatAssignmentID, "", now)
		return err
	})
	m := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, CredentialHash: randHash()}
	f.mutation("mirror.created", tn.TenantID, func() error { return f.s.CreateMirror(ctx, m) })
	f.mutation("mirror.updated", tn.TenantID, func() error {
		_, err := f.s.UpdateMirror(ctx, m.MirrorID, func(x *catalog.Mirror) error { x.Status = catalog.MirrorInactive; return nil })
		return err
	})
	f.mutation("snapshot.created", tn.TenantID, func() error { _, err := f.s.CreateSnapshot(ctx, tn.TenantID, fakeBuild(nil)); return err })
	f.mutation("token.created", tn.TenantID, func() error {
		return f.s.CreateToken(ctx, &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleTenant, TenantID: tn.TenantID, Hash: randHash()})
	})
	f.mutation("blocked_version.deleted", tn.TenantID, func() error { return f.s.DeleteBlockedVersion(ctx, tn.TenantID, blk.BlocklistID) })
	f.mutation("release.revoked", "", func() error { _, err := f.s.RevokeRelease(ctx, r.ReleaseID, now); return err })
	f.mutation("tenant.updated", tn.TenantID, func() error {
		_, err := f.s.UpdateTenant(ctx, tn.TenantID, func(x *catalog.Tenant) error { x.Name = "Chain 2"; return nil })
		return err
	})
	// Reads and idempotency records are not audited.
	_, _ = f.s.Tenant(ctx, tn.TenantID)
	must(t, f.s.PutIdempotency(ctx, "k", &store.IdempotencyRecord{RequestHash: "h", Status: 201, Body: []byte("{}")}))

	evs := f.verifyChain()
	if len(evs) != f.mutations || len(evs) < 25 {
		t.Fatalf("chain has %d events, want one per mutation (%d)", len(evs), f.mutations)
	}
	ids := map[string]bool{}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		if ids[ev.EventID] || ev.EventID == "" {
			t.Fatalf("event id %q empty or repeated", ev.EventID)
		}
		ids[ev.EventID] = true
		if ev.CreatedAt.IsZero() {
			t.Fatalf("event %d has no created_at", ev.Seq)
		}
	}
	t.Run("system actor without one in the context", func(t *testing.T) {
		bg := newFx(t, f.s)
		bg.ctx = t.Context()
		before := bg.lastSeq()
		must(t, f.s.CreateProduct(bg.ctx, &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Q"}))
		ev := bg.eventsAfter(before)[0]
		if ev.ActorType != catalog.ActorSystem || ev.ActorID != "system" {
			t.Fatalf("actor = %s/%s, want system/system", ev.ActorType, ev.ActorID)
		}
		bg.verifyChain()
	})
}

func testAppendAudit(t *testing.T, f *fx) {
	tn := f.tenant()
	ev := &catalog.AuditEvent{TenantID: tn.TenantID, ActorType: catalog.ActorMirror, ActorID: "mir_1", EventType: "mirror.lease.issued", Payload: json.RawMessage(`{ "subject": "m1" }`), CreatedAt: f.now.Add(-time.Hour)}
	ok, err := f.s.AppendAudit(f.ctx, ev, "mir_1:7")
	must(t, err)
	if !ok {
		t.Fatal("first AppendAudit reported not appended")
	}
	dup := *ev
	dup.EventID = ""
	ok, err = f.s.AppendAudit(f.ctx, &dup, "mir_1:7")
	must(t, err)
	if ok {
		t.Fatal("AppendAudit with a used dedup key appended")
	}
	ok, err = f.s.AppendAudit(f.ctx, &catalog.AuditEvent{EventType: "note"}, "")
	must(t, err)
	if !ok {
		t.Fatal("AppendAudit without dedup key did not append")
	}
	evs := f.verifyChain()
	if len(evs) != 3 {
		t.Fatalf("chain has %d events, want 3 (tenant, uploaded, note)", len(evs))
	}
	got := evs[1]
	if got.ActorType != catalog.ActorMirror || got.ActorID != "mir_1" || got.TenantID != tn.TenantID || !got.CreatedAt.Equal(ev.CreatedAt) || string(got.Payload) != `{"subject":"m1"}` {
		t.Fatalf("appended event = %+v payload %s", got, got.Payload)
	}
	if evs[2].ActorID != testActor.ID {
		t.Fatalf("event without actor got %s, want the context's %s", evs[2].ActorID, testActor.ID)
	}
	t.Run("refused", func(t *testing.T) {
		for name, bad := range map[string]*catalog.AuditEvent{
			"no type":     {Payload: json.RawMessage(`{}`)},
			"bad payload": {EventType: "x", Payload: json.RawMessage(`{nope`)},
		} {
			t.Run(name, func(t *testing.T) {
				f.refused(catalog.EINVALID, func() error { _, err := f.s.AppendAudit(f.ctx, bad, ""); return err })
			})
		}
	})
}

// testAuditOrder: one caller's writes reach the chain in the order it
// made them, whatever path their events take (on PostgreSQL a new
// release's event waits in the pending queue and an exclusive write must
// chain it before its own), and each is listed as soon as its write
// returned.
func testAuditOrder(t *testing.T, f *fx) {
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Order"}
	must(t, f.s.CreateProduct(f.ctx, p))
	var want []string
	release := func(v string) {
		must(t, f.s.CreateRelease(f.ctx, &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: v}))
		want = append(want, "release.created")
	}
	note := func() {
		_, err := f.s.AppendAudit(f.ctx, &catalog.AuditEvent{EventType: "note"}, "")
		must(t, err)
		want = append(want, "note")
	}
	for round := range 3 {
		release(fmt.Sprintf("1.%d.0", round))
		release(fmt.Sprintf("1.%d.1", round))
		note()
		release(fmt.Sprintf("1.%d.2", round))
		evs, _, err := f.s.AuditEvents(f.ctx, store.AuditFilter{EventType: "release.created"}, store.Page{Limit: 100})
		must(t, err)
		if got, want := len(evs), 3*(round+1); got != want {
			t.Fatalf("round %d: %d release events listed, want %d", round, got, want)
		}
	}
	evs := f.verifyChain()
	var got []string
	for _, ev := range evs {
		if ev.EventType != "product.created" {
			got = append(got, ev.EventType)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("chain order = %v, want %v", got, want)
	}
}

func testAuditEvents(t *testing.T, f *fx) {
	t1, t2 := f.tenant(), f.tenant()
	const n = 7
	for i := range n {
		for _, tn := range []*catalog.Tenant{t1, t2} {
			_, err := f.s.UpdateTenant(f.ctx, tn.TenantID, func(x *catalog.Tenant) error { x.Name = fmt.Sprint("name ", i); return nil })
			must(t, err)
		}
		f.product("")
	}
	all := f.verifyChain()
	cases := []struct {
		name   string
		filter store.AuditFilter
		want   func(*catalog.AuditEvent) bool
	}{
		{"all", store.AuditFilter{}, func(*catalog.AuditEvent) bool { return true }},
		{"tenant", store.AuditFilter{TenantID: t1.TenantID}, func(e *catalog.AuditEvent) bool { return e.TenantID == t1.TenantID }},
		{"type", store.AuditFilter{EventType: "product.created"}, func(e *catalog.AuditEvent) bool { return e.EventType == "product.created" }},
		{"tenant and type", store.AuditFilter{TenantID: t2.TenantID, EventType: "tenant.updated"}, func(e *catalog.AuditEvent) bool {
			return e.TenantID == t2.TenantID && e.EventType == "tenant.updated"
		}},
		{"no match", store.AuditFilter{TenantID: "ten_nope"}, func(*catalog.AuditEvent) bool { return false }},
	}
	for _, tc := range cases {
		for _, limit := range []int{1, 3, 1000} {
			t.Run(fmt.Sprintf("%s limit %d", tc.name, limit), func(t *testing.T) {
				var want []string
				for _, e := range all {
					if tc.want(e) {
						want = append(want, e.EventID)
					}
				}
				got := walk(t, limit, func(p store.Page) ([]*catalog.AuditEvent, string, error) {
					return f.s.AuditEvents(f.ctx, tc.filter, p)
				}, func(e *catalog.AuditEvent) string { return e.EventID })
				equalIDs(t, "events", got, want)
			})
		}
	}
}

func testIdempotency(t *testing.T, f *fx) {
	_, err := f.s.Idempotency(f.ctx, "key-1")
	wantCode(t, err, catalog.ENOTFOUND)
	rec := &store.IdempotencyRecord{RequestHash: randHash(), Status: 201, Body: []byte(`{"tenant_id":"ten_1"}`), CreatedAt: f.now}
	must(t, f.s.PutIdempotency(f.ctx, "key-1", rec))
	got, err := f.s.Idempotency(f.ctx, "key-1")
	must(t, err)
	if got.RequestHash != rec.RequestHash || got.Status != 201 || string(got.Body) != string(rec.Body) || !got.CreatedAt.Equal(f.now) {
		t.Fatalf("Idempotency = %+v, want %+v", got, rec)
	}
	err = f.s.PutIdempotency(f.ctx, "key-1", &store.IdempotencyRecord{RequestHash: "other", Status: 200})
	wantCode(t, err, catalog.ECONFLICT)
	got, err = f.s.Idempotency(f.ctx, "key-1")
	must(t, err)
	if got.RequestHash != rec.RequestHash {
		t.Fatal("a refused PutIdempotency overwrote the first record")
	}
	t.Run("expiry", func(t *testing.T) {
		must(t, f.s.PutIdempotency(f.ctx, "key-2", &store.IdempotencyRecord{RequestHash: randHash(), Status: 201, CreatedAt: f.now.Add(time.Hour)}))
		n, err := f.s.ExpireIdempotency(f.ctx, f.now.Add(time.Minute))
		must(t, err)
		if n != 1 {
			t.Fatalf("expired %d records, want 1", n)
		}
		_, err = f.s.Idempotency(f.ctx, "key-1")
		wantCode(t, err, catalog.ENOTFOUND)
		if _, err := f.s.Idempotency(f.ctx, "key-2"); err != nil {
			t.Fatalf("a newer record was expired: %v", err)
		}
		must(t, f.s.PutIdempotency(f.ctx, "key-1", &store.IdempotencyRecord{RequestHash: "again", Status: 201}))
	})
}

func testIdempotencyReserve(t *testing.T, f *fx) {
	h1, h2 := randHash(), randHash()
	att := func(h string) string {
		if h == "" {
			return ""
		}
		return "att-" + h[:8]
	}
	stale := time.Now().Add(-time.Hour) // reservations are stamped with the wall clock: fresh

	held, err := f.s.ReserveIdempotency(f.ctx, "r-1", h1, att(h1), stale)
	must(t, err)
	if held != nil {
		t.Fatalf("first ReserveIdempotency = %+v, want nil (reserved)", held)
	}
	t.Run("a second attempt sees the reservation", func(t *testing.T) {
		for _, h := range []string{h1, h2} {
			held, err := f.s.ReserveIdempotency(f.ctx, "r-1", h, att(h)+"-2", stale)
			must(t, err)
			if held == nil || !held.Pending() || held.RequestHash != h1 {
				t.Fatalf("ReserveIdempotency of a reserved key = %+v, want the pending reservation for %s", held, h1)
			}
		}
	})
	t.Run("complete for another request is refused", func(t *testing.T) {
		err := f.s.CompleteIdempotency(f.ctx, "r-1", &store.IdempotencyRecord{RequestHash: h2, Attempt: att(h2), Status: 201})
		wantCode(t, err, catalog.ECONFLICT)
		err = f.s.CompleteIdempotency(f.ctx, "r-none", &store.IdempotencyRecord{RequestHash: h1, Attempt: att(h1), Status: 201})
		wantCode(t, err, catalog.ECONFLICT)
	})
	t.Run("complete then replay", func(t *testing.T) {
		must(t, f.s.CompleteIdempotency(f.ctx, "r-1", &store.IdempotencyRecord{RequestHash: h1, Attempt: att(h1), Status: 201, Body: []byte(`{"a":1}`)}))
		held, err := f.s.ReserveIdempotency(f.ctx, "r-1", h1, att(h1), time.Now().Add(time.Hour))
		must(t, err)
		if held == nil || held.Pending() || held.Status != 201 || string(held.Body) != `{"a":1}` {
			t.Fatalf("ReserveIdempotency of a completed key = %+v, want the answer (even when old)", held)
		}
		err = f.s.CompleteIdempotency(f.ctx, "r-1", &store.IdempotencyRecord{RequestHash: h1, Attempt: att(h1), Status: 200})
		wantCode(t, err, catalog.ECONFLICT)
		must(t, f.s.ReleaseIdempotency(f.ctx, "r-1", att(h1)))
		if got, err := f.s.Idempotency(f.ctx, "r-1"); err != nil || got.Status != 201 {
			t.Fatalf("Release removed an answer: %+v, %v", got, err)
		}
	})
	t.Run("release frees the key", func(t *testing.T) {
		_, err := f.s.ReserveIdempotency(f.ctx, "r-2", h1, att(h1), stale)
		must(t, err)
		must(t, f.s.ReleaseIdempotency(f.ctx, "r-2", att(h2))) // another request's: kept
		if held, _ := f.s.ReserveIdempotency(f.ctx, "r-2", h2, att(h2), stale); held == nil {
			t.Fatal("a release for another request hash removed the reservation")
		}
		must(t, f.s.ReleaseIdempotency(f.ctx, "r-2", att(h1)))
		must(t, f.s.ReleaseIdempotency(f.ctx, "r-2", att(h1))) // missing: fine
		held, err := f.s.ReserveIdempotency(f.ctx, "r-2", h2, att(h2), stale)
		must(t, err)
		if held != nil {
			t.Fatalf("ReserveIdempotency after release = %+v, want nil", held)
		}
	})
	t.Run("a stale reservation is taken over", func(t *testing.T) {
		_, err := f.s.ReserveIdempotency(f.ctx, "r-3", h1, att(h1), stale)
		must(t, err)
		// Every reservation made so far is older than an hour from now.
		held, err := f.s.ReserveIdempotency(f.ctx, "r-3", h2, att(h2), time.Now().Add(time.Hour))
		must(t, err)
		if held != nil {
			t.Fatalf("ReserveIdempotency over a stale reservation = %+v, want nil (taken over)", held)
		}
		err = f.s.CompleteIdempotency(f.ctx, "r-3", &store.IdempotencyRecord{RequestHash: h1, Attempt: att(h1), Status: 201})
		wantCode(t, err, catalog.ECONFLICT) // the crashed attempt lost the key
		must(t, f.s.CompleteIdempotency(f.ctx, "r-3", &store.IdempotencyRecord{RequestHash: h2, Attempt: att(h2), Status: 201}))
	})
	t.Run("bad input", func(t *testing.T) {
		_, err := f.s.ReserveIdempotency(f.ctx, "", h1, att(h1), stale)
		wantCode(t, err, catalog.EINVALID)
		_, err = f.s.ReserveIdempotency(f.ctx, "r-4", "", att(""), stale)
		wantCode(t, err, catalog.EINVALID)
		err = f.s.CompleteIdempotency(f.ctx, "r-4", &store.IdempotencyRecord{RequestHash: h1, Attempt: att(h1)})
		wantCode(t, err, catalog.EINVALID)
	})
	t.Run("a committed reservation is never taken over", func(t *testing.T) {
		_, err := f.s.ReserveIdempotency(f.ctx, "r-5", h1, att(h1), stale)
		must(t, err)
		// A write under another attempt's name fails and writes nothing.
		wrong := store.WithIdempotencyAttempt(f.ctx, "r-5", "att-other")
		err = f.s.PutIdempotency(wrong, "r-5-side", &store.IdempotencyRecord{RequestHash: h2, Status: 201})
		wantCode(t, err, catalog.ECONFLICT)
		_, err = f.s.Idempotency(f.ctx, "r-5-side")
		wantCode(t, err, catalog.ENOTFOUND)
		// The holder's write commits, and marks the reservation.
		mine := store.WithIdempotencyAttempt(f.ctx, "r-5", att(h1))
		must(t, f.s.PutIdempotency(mine, "r-5-side", &store.IdempotencyRecord{RequestHash: h2, Status: 201}))
		held, err := f.s.ReserveIdempotency(f.ctx, "r-5", h1, att(h2), time.Now().Add(time.Hour))
		must(t, err)
		if held == nil || !held.Pending() || !held.Committed {
			t.Fatalf("ReserveIdempotency over a stale committed reservation = %+v, want it held (committed)", held)
		}
		must(t, f.s.ReleaseIdempotency(f.ctx, "r-5", att(h1)))
		if got, err := f.s.Idempotency(f.ctx, "r-5"); err != nil || !got.Committed {
			t.Fatalf("Release removed a committed reservation: %+v, %v", got, err)
		}
		must(t, f.s.CompleteIdempotency(f.ctx, "r-5", &store.IdempotencyRecord{RequestHash: h1, Attempt: att(h1), Status: 201}))
		if got, err := f.s.Idempotency(f.ctx, "r-5"); err != nil || got.Status != 201 {
			t.Fatalf("Complete of a committed reservation: %+v, %v", got, err)
		}
	})
}
