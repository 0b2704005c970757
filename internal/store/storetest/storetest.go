// Package storetest is the suite every store.Store implementation must
// pass: each method, each data-model constraint (also under concurrency),
// pagination, not-found errors and the audit chain. An implementation's
// test calls Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// Opener returns a fresh, empty store. Run closes it when the test ends.
type Opener func(t *testing.T) store.Store

type testCase struct {
	name string
	fn   func(t *testing.T, f *fx)
}

// Run runs the whole suite, each test on a fresh store from open.
func Run(t *testing.T, open Opener) {
	var cases []testCase
	cases = append(cases, catalogCases...)
	cases = append(cases, policyCases...)
	cases = append(cases, licenseCases...)
	cases = append(cases, leaseCountCases...)
	cases = append(cases, snapshotCases...)
	cases = append(cases, auditCases...)
	cases = append(cases, tufCases...)
	cases = append(cases, historyCases...)
	for _, c := range Concurrent {
		cases = append(cases, testCase{c.Name, func(t *testing.T, f *fx) { c.Run(t, []store.Store{f.s}) }})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, newFx(t, s))
		})
	}
}

// testActor is the actor every suite mutation runs as.
var testActor = catalog.Actor{Type: catalog.ActorUser, ID: "usr_storetest"}

// fx builds fixtures on one store.
type fx struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
	now time.Time
	// mutations counts the successful mutation() calls.
	mutations int
}

func newFx(t *testing.T, s store.Store) *fx {
	return &fx{t: t, s: s, ctx: catalog.WithActor(context.Background(), testActor), now: time.Now().UTC().Truncate(time.Second)}
}

func randHash() string {
	var b [32]byte
	rand.Read(b[:])
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:])
}

// wantCode fails the test unless err carries the catalog error code want.
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := catalog.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fx) tenant() *catalog.Tenant {
	f.t.Helper()
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "Acme " + randHash()[:6], Status: catalog.TenantActive}
	must(f.t, f.s.CreateTenant(f.ctx, tn))
	return tn
}

func (f *fx) product(dist string) *catalog.Product {
	f.t.Helper()
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Widget", Distribution: dist, Metadata: json.RawMessage(`{"team":"core"}`)}
	must(f.t, f.s.CreateProduct(f.ctx, p))
	return p
}

func (f *fx) artifact(status string) *catalog.Artifact {
	f.t.Helper()
	a := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged, SHA256: randHash(), SizeBytes: 1234, StoragePath: "blobs/x", Status: status}
	if status == catalog.ArtifactVerified {
		at := f.now
		a.VerifiedAt = &at
	}
	must(f.t, f.s.CreateArtifact(f.ctx, a))
	return a
}

func (f *fx) release(productID, channel, version string) *catalog.Release {
	f.t.Helper()
	r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: channel, Version: version, PublishedAt: f.now}
	must(f.t, f.s.CreateRelease(f.ctx, r))
	return r
}

func (f *fx) attach(releaseID, artifactID, platform string) *catalog.ReleaseArtifact {
	f.t.Helper()
	ra := &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: releaseID, ArtifactID: artifactID, Platform: platform, Arch: "x64", InstallerType: "zip"}
	must(f.t, f.s.AttachArtifact(f.ctx, ra))
	return ra
}

func entPolicy(seats int, mode string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"max_seats":%d,"seat_assignment_mode":%q}`, seats, mode))
}

func (f *fx) newEntitlement(tenantID, productID string, policy json.RawMessage, start time.Time, end *time.Time) *catalog.Entitlement {
	return &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tenantID, ProductID: productID, Policy: policy, StartsAt: start, EndsAt: end}
}

func (f *fx) entitlement(tenantID, productID string, policy json.RawMessage) *catalog.Entitlement {
	f.t.Helper()
	e := f.newEntitlement(tenantID, productID, policy, f.now.Add(-time.Hour), nil)
	must(f.t, f.s.CreateEntitlement(f.ctx, e))
	return e
}

func (f *fx) lease(entitlementID, subject string, at time.Time) *catalog.Lease {
	return &catalog.Lease{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: entitlementID, SubjectType: catalog.SubjectMachine, SubjectID: subject, IssuedAt: at, ExpiresAt: at.Add(time.Hour), TokenHash: randHash()}
}

func (f *fx) seat(entitlementID, subject string) *catalog.SeatAssignment {
	return &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: entitlementID, SubjectType: catalog.SubjectUser, SubjectID: subject, AssignedBy: "usr_admin"}
}

// lastSeq is the sequence of the newest audit event (0 when none).
func (f *fx) lastSeq() int64 {
	f.t.Helper()
	var seq int64
	must(f.t, f.s.WalkAudit(f.ctx, func(ev *catalog.AuditEvent) error { seq = ev.Seq; return nil }))
	return seq
}

// eventsAfter returns the events with a sequence above seq.
func (f *fx) eventsAfter(seq int64) []*catalog.AuditEvent {
	f.t.Helper()
	var out []*catalog.AuditEvent
	must(f.t, f.s.WalkAudit(f.ctx, func(ev *catalog.AuditEvent) error {
		if ev.Seq > seq {
			out = append(out, ev)
		}
		return nil
	}))
	return out
}

// mutation runs op, which must succeed and append exactly one audit event
// of type eventType for tenantID, by the test actor.
func (f *fx) mutation(eventType, tenantID string, op func() error) {
	f.t.Helper()
	before := f.lastSeq()
	if err := op(); err != nil {
		f.t.Fatalf("%s: %v", eventType, err)
	}
	f.mutations++
	evs := f.eventsAfter(before)
	if len(evs) != 1 {
		f.t.Fatalf("%s appended %d audit events, want 1", eventType, len(evs))
	}
	ev := evs[0]
	if ev.EventType != eventType || ev.TenantID != tenantID || ev.ActorType != testActor.Type || ev.ActorID != testActor.ID {
		f.t.Fatalf("audit event = {type %q tenant %q actor %s/%s}, want {type %q tenant %q actor %s/%s}",
			ev.EventType, ev.TenantID, ev.ActorType, ev.ActorID, eventType, tenantID, testActor.Type, testActor.ID)
	}
	if !json.Valid(ev.Payload) || len(ev.Payload) < 2 || ev.Payload[0] != '{' {
		f.t.Fatalf("%s payload %q is not a JSON object", eventType, ev.Payload)
	}
}

// refused runs op, which must fail with code and append no audit event.
func (f *fx) refused(code string, op func() error) {
	f.t.Helper()
	before := f.lastSeq()
	wantCode(f.t, op(), code)
	if evs := f.eventsAfter(before); len(evs) != 0 {
		f.t.Fatalf("refused change appended %d audit events (first %q)", len(evs), evs[0].EventType)
	}
}

// walk pages through list with the given limit and returns every id seen,
// failing on a page larger than limit or an id seen twice.
func walk[T any](t *testing.T, limit int, list func(p store.Page) ([]T, string, error), id func(T) string) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
		items, next, err := list(store.Page{Limit: limit, Cursor: cursor})
		must(t, err)
		if len(items) > limit {
			t.Fatalf("page has %d items, limit %d", len(items), limit)
		}
		for _, it := range items {
			k := id(it)
			if seen[k] {
				t.Fatalf("id %s returned twice", k)
			}
			seen[k] = true
			ids = append(ids, k)
		}
		if next == "" {
			return ids
		}
		if len(items) == 0 {
			t.Fatal("empty page with a next cursor")
		}
		cursor = next
	}
}

func equalIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d ids, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: id %d = %s, want %s (order by id ascending)", what, i, got[i], want[i])
		}
	}
}
