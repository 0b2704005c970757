package controlplane_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/webhook"
)

func TestWebhookEvent_Mapping(t *testing.T) {
	now := time.Now().UTC()
	big := `"` + strings.Repeat("x", 5000) + `"`
	cases := []struct {
		audit, want string
		payload     string
		ok          bool
	}{
		{"release.created", webhook.ReleasePublished, `{"release_id":"rel_x"}`, true},
		{"release.revoked", webhook.ReleaseRevoked, `{}`, true},
		{"snapshot.created", webhook.SnapshotBuilt, `{"sequence":2,"huge":` + big + `}`, true},
		{"rollout.halted", webhook.RolloutHalted, `{"reason":"r"}`, true},
		{"mirror.snapshot.synced", webhook.MirrorSynced, `{}`, true},
		{"lease.seats_exhausted", webhook.LeaseSeatsExhausted, `{}`, true},
		{"mirror.fork_detected", webhook.MirrorForkDetected, `{"mirror_id":"mir_x"}`, true},
		{"policy.updated", "", `{}`, false},
	}
	for _, c := range cases {
		t.Run(c.audit, func(t *testing.T) {
			ev := &catalog.AuditEvent{EventID: catalog.NewID(catalog.PrefixEvent), EventType: c.audit, Payload: json.RawMessage(c.payload), CreatedAt: now}
			got, ok := controlplane.WebhookEvent(ev)
			if ok != c.ok || got.Type != c.want {
				t.Fatalf("got %q, %v; want %q, %v", got.Type, ok, c.want, c.ok)
			}
			if !ok {
				return
			}
			if got.ID != ev.EventID {
				t.Errorf("id = %s, want the audit event's %s", got.ID, ev.EventID)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid event: %v", err)
			}
			if strings.Contains(string(got.Data), "xxxx") || !strings.Contains(string(got.Data), `"audit_event_type":"`+c.audit+`"`) {
				t.Errorf("data = %.200s: want large members dropped and the audit type named", got.Data)
			}
		})
	}
}

func TestAcquireLease_SeatsExhaustedIsAudited(t *testing.T) {
	a := newApp(t)
	op := operator()
	ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := a.CreateProduct(op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionLicensed})
	if err != nil {
		t.Fatal(err)
	}
	ent, err := a.CreateEntitlement(op, ten.TenantID, controlplane.EntitlementInput{ProductID: prod.ProductID, Policy: json.RawMessage(`{"max_seats":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AcquireLease(op, ent.EntitlementID, controlplane.Subject{SubjectType: "device", SubjectID: "a"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := a.AcquireLease(op, ent.EntitlementID, controlplane.Subject{SubjectType: "device", SubjectID: "b"})
		if catalog.ErrorCode(err) != catalog.ECONFLICT {
			t.Fatalf("second subject: %v, want conflict", err)
		}
	}
	evs, _, err := a.AuditEvents(op, store.AuditFilter{EventType: controlplane.EventSeatsExhausted}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || !strings.Contains(string(evs[0].Payload), ent.EntitlementID) {
		t.Fatalf("lease.seats_exhausted events = %d (%s), want 1 (repeats in the same minute deduplicated)", len(evs), payloadOf(evs))
	}
}
