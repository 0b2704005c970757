package fleet_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
)

const (
	relA = "rel_01jdk0000000000000000000aa"
	relB = "rel_01jdk0000000000000000000bb"
	prdA = "prd_01jdk0000000000000000000aa"
	artA = "art_01jdk0000000000000000000aa"
)

var now = time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

func validEvent() fleet.Event {
	return fleet.Event{Type: fleet.TypeInstallFailed, ClientID: "c-7f3a9b21", ProductID: prdA, ReleaseID: relA, ArtifactID: artA,
		FromVersion: "1.0.0", ToVersion: "1.1.0+build.7", ErrorCode: "E_DISK_FULL", DurationMS: 1200, Time: now.Add(-time.Minute)}
}

func TestEvent_Validate(t *testing.T) {
	clock := fleet.Clock{Now: now, MaxFuture: time.Hour, MaxAge: 24 * time.Hour}
	cases := []struct {
		name      string
		mut       func(e *fleet.Event)
		wantField string // "" = valid
	}{
		{"valid", func(e *fleet.Event) {}, ""},
		{"check without release", func(e *fleet.Event) { *e = fleet.Event{Type: fleet.TypeCheck, ClientID: "abcdefgh", Time: now} }, ""},
		{"unknown type", func(e *fleet.Event) { e.Type = "install_maybe" }, "type"},
		{"client id short", func(e *fleet.Event) { e.ClientID = "abc" }, "client_id"},
		{"client id long", func(e *fleet.Event) { e.ClientID = strings.Repeat("a", 65) }, "client_id"},
		{"client id is an email", func(e *fleet.Event) { e.ClientID = "alice@example.com" }, "client_id"},
		{"client id unicode", func(e *fleet.Event) { e.ClientID = "clïent-0001" }, "client_id"},
		{"bad product", func(e *fleet.Event) { e.ProductID = "prd_x" }, "product_id"},
		{"bad release", func(e *fleet.Event) { e.ReleaseID = "rel_../../etc" }, "release_id"},
		{"release artifact id ok", func(e *fleet.Event) { e.ArtifactID = "rla_01jdk0000000000000000000aa" }, ""},
		{"bad artifact", func(e *fleet.Event) { e.ArtifactID = relA }, "artifact_id"},
		{"install without release", func(e *fleet.Event) { e.ReleaseID = "" }, "release_id"},
		{"install without to_version", func(e *fleet.Event) { e.ToVersion = "" }, "to_version"},
		{"version with space", func(e *fleet.Event) { e.FromVersion = "1.0 beta" }, "from_version"},
		{"version too long", func(e *fleet.Event) { e.ToVersion = strings.Repeat("1", 65) }, "to_version"},
		{"error code on success", func(e *fleet.Event) { e.Type = fleet.TypeInstallOK }, "error_code"},
		{"error code with newline", func(e *fleet.Event) { e.ErrorCode = "E\nX" }, "error_code"},
		{"negative duration", func(e *fleet.Event) { e.DurationMS = -1 }, "duration_ms"},
		{"huge duration", func(e *fleet.Event) { e.DurationMS = 1 << 50 }, "duration_ms"},
		{"no time", func(e *fleet.Event) { e.Time = time.Time{} }, "time"},
		{"future", func(e *fleet.Event) { e.Time = now.Add(2 * time.Hour) }, "time"},
		{"too old", func(e *fleet.Event) { e.Time = now.Add(-48 * time.Hour) }, "time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := validEvent()
			tc.mut(&e)
			err := e.Validate(clock)
			var fe *fleet.FieldError
			switch {
			case tc.wantField == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.wantField != "" && !errors.As(err, &fe):
				t.Errorf("Validate = %v, want a FieldError on %s", err, tc.wantField)
			case tc.wantField != "" && fe.Field != tc.wantField:
				t.Errorf("Validate field = %s (%v), want %s", fe.Field, err, tc.wantField)
			}
		})
	}
}

func TestDecodeBatch_Caps(t *testing.T) {
	ev := `{"type":"check","client_id":"abcdefgh","time":"2026-11-30T06:59:00Z"}`
	cases := []struct {
		name         string
		body         string
		limits       fleet.BatchLimits
		wantErr      string
		wantEvents   int
		wantRejected []int
	}{
		{"ok", `{"events":[` + ev + `,` + ev + `]}`, fleet.BatchLimits{}, "", 2, nil},
		{"too big", `{"events":[` + ev + `]}`, fleet.BatchLimits{MaxBytes: 20}, "too large: body is larger than 20 bytes", 0, nil},
		{"too many", `{"events":[` + ev + `,` + ev + `,` + ev + `]}`, fleet.BatchLimits{MaxEvents: 2}, "too large: events: 3 events, at most 2", 0, nil},
		{"not json", `{"events":[`, fleet.BatchLimits{}, "invalid event batch", 0, nil},
		{"unknown top field", `{"events":[],"x":1}`, fleet.BatchLimits{}, "unknown field", 0, nil},
		{"missing events", `{}`, fleet.BatchLimits{}, "events: is required", 0, nil},
		{"trailing data", `{"events":[]} {}`, fleet.BatchLimits{}, "after the JSON object", 0, nil},
		{"one bad event kept apart", `{"events":[` + ev + `,{"type":"check","client_id":"x","time":"2026-11-30T06:59:00Z"},{"type":"check","extra":1}]}`, fleet.BatchLimits{}, "", 1, []int{1, 2}},
		{"event not an object", `{"events":[1]}`, fleet.BatchLimits{}, "", 0, []int{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := fleet.DecodeBatch(strings.NewReader(tc.body), tc.limits, now)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, fleet.ErrBatch) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("DecodeBatch = %v, want ErrBatch containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if len(b.Events) != tc.wantEvents {
				t.Errorf("events = %d, want %d", len(b.Events), tc.wantEvents)
			}
			var got []int
			for _, r := range b.Rejected {
				got = append(got, r.Index)
				if !strings.HasPrefix(r.Error, "events[") {
					t.Errorf("rejection %q does not name the event", r.Error)
				}
			}
			if len(got) != len(tc.wantRejected) {
				t.Fatalf("rejected = %v, want %v", got, tc.wantRejected)
			}
			for i := range got {
				if got[i] != tc.wantRejected[i] {
					t.Errorf("rejected = %v, want %v", got, tc.wantRejected)
				}
			}
		})
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"events":[{"type":"check","client_id":"abcdefgh","time":"2026-11-30T06:59:00Z"}]}`))
	f.Add([]byte(`{"events":[{"type":"install_failed","client_id":"abcdefgh","release_id":"rel_01jdk0000000000000000000aa","to_version":"1","error_code":"E","time":"2026-11-30T06:59:00Z"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := fleet.DecodeBatch(strings.NewReader(string(body)), fleet.BatchLimits{MaxBytes: 4096, MaxEvents: 16}, now)
		if err != nil {
			return
		}
		for i := range b.Events {
			if err := b.Events[i].Validate(fleet.Clock{}); err != nil {
				t.Fatalf("accepted event %d fails validation: %v", i, err)
			}
		}
	})
}
