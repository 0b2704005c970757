package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/webhook"
)

var t0 = time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

func TestSubscription_Validate(t *testing.T) {
	cases := []struct {
		name      string
		url       string
		types     []string
		tenant    string
		allowHTTP bool
		wantField string
	}{
		{"ok", "https://hooks.example.com/outpost", []string{webhook.ReleasePublished}, "", false, ""},
		{"all types", "https://hooks.example.com/x", []string{"*"}, "", false, ""},
		{"http refused", "http://hooks.example.com/x", []string{"*"}, "", false, "url"},
		{"http allowed", "http://127.0.0.1:9/x", []string{"*"}, "", true, ""},
		{"ftp", "ftp://hooks.example.com/x", []string{"*"}, "", true, "url"},
		{"relative", "/hook", []string{"*"}, "", false, "url"},
		{"credentials", "https://u:p@hooks.example.com/x", []string{"*"}, "", false, "url"},
		{"fragment", "https://hooks.example.com/x#y", []string{"*"}, "", false, "url"},
		{"long", "https://hooks.example.com/" + strings.Repeat("a", 2048), []string{"*"}, "", false, "url"},
		{"no types", "https://hooks.example.com/x", nil, "", false, "event_types"},
		{"unknown type", "https://hooks.example.com/x", []string{webhook.ReleasePublished, "release.exploded"}, "", false, "event_types[1]"},
		{"bad tenant", "https://hooks.example.com/x", []string{"*"}, "acme", false, "tenant_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.NewSubscription(tc.url, tc.types, tc.tenant, tc.allowHTTP, t0)
			var ce *catalog.Error
			switch {
			case tc.wantField == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tc.wantField != "" && (!errors.As(err, &ce) || ce.Field != tc.wantField):
				t.Errorf("err = %v, want EINVALID on %s", err, tc.wantField)
			}
		})
	}
}

func TestMatches_Rules(t *testing.T) {
	const ten1, ten2 = "ten_01jdk0000000000000000000aa", "ten_01jdk0000000000000000000bb"
	sub := webhook.Subscription{EventTypes: []string{webhook.RolloutHalted}, TenantID: ten1}
	cases := []struct {
		name string
		mut  func(s *webhook.Subscription, e *webhook.Event)
		want bool
	}{
		{"type and tenant", func(s *webhook.Subscription, e *webhook.Event) {}, true},
		{"other type", func(s *webhook.Subscription, e *webhook.Event) { e.Type = webhook.ReleasePublished }, false},
		{"star", func(s *webhook.Subscription, e *webhook.Event) {
			s.EventTypes = []string{"*"}
			e.Type = webhook.ReleasePublished
		}, true},
		{"other tenant", func(s *webhook.Subscription, e *webhook.Event) { e.TenantID = ten2 }, false},
		{"event without tenant", func(s *webhook.Subscription, e *webhook.Event) { e.TenantID = "" }, true},
		{"subscription for every tenant", func(s *webhook.Subscription, e *webhook.Event) { s.TenantID = ""; e.TenantID = ten2 }, true},
		{"disabled", func(s *webhook.Subscription, e *webhook.Event) { s.Disabled = true }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := sub
			s.EventTypes = append([]string(nil), sub.EventTypes...)
			e := webhook.Event{Type: webhook.RolloutHalted, TenantID: ten1}
			tc.mut(&s, &e)
			if got := webhook.Matches(&s, &e); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEvent_Validate(t *testing.T) {
	ev, err := webhook.NewEvent(webhook.RolloutHalted, "", map[string]string{"rollout_id": "rol_x"}, t0)
	if err != nil || !strings.HasPrefix(ev.ID, "evt_") {
		t.Fatalf("NewEvent = %+v, %v", ev, err)
	}
	if _, err := webhook.NewEvent("rollout.exploded", "", nil, t0); err == nil {
		t.Errorf("NewEvent with an unknown type = nil error")
	}
	if _, err := webhook.NewEvent(webhook.Ping, "", strings.Repeat("x", webhook.MaxDataBytes), t0); err == nil {
		t.Errorf("NewEvent with oversized data = nil error")
	}
}
