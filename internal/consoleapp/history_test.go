package consoleapp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fleet"
)

// reportingSite is a mirror registered with a key and its fleet
// aggregator, as the mirror keeps it.
type reportingSite struct {
	mirror *controlplane.MirrorCreated
	key    ed25519.PrivateKey
	agg    *fleet.Aggregator
	n      int
}

func newReportingSite(t *testing.T, w *world) *reportingSite {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	m, err := w.app.CreateMirror(w.op, w.tMine, controlplane.MirrorInput{Name: "reporting", AllowedChannels: []string{"stable"}, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	if err != nil {
		t.Fatal(err)
	}
	agg, err := fleet.NewAggregator(context.Background(), fleet.NewMemStore(), fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &reportingSite{mirror: m, key: key, agg: agg}
}

// send has ok and failed new clients install release and imports the
// site's report (written by the fleet package's writer) into the App.
func (s *reportingSite) send(t *testing.T, w *world, productID, releaseID string, ok, failed int) {
	t.Helper()
	now := time.Now().UTC()
	var evs []fleet.Event
	for i := range ok + failed {
		s.n++
		ev := fleet.Event{Type: fleet.TypeInstallOK, ClientID: fmt.Sprintf("client-%05d", s.n), ProductID: productID, ReleaseID: releaseID, ToVersion: "1.0.0", Time: now}
		if i >= ok {
			ev.Type, ev.ErrorCode = fleet.TypeInstallFailed, "E_POSTINST"
		}
		evs = append(evs, ev)
	}
	if _, _, err := s.agg.Ingest(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	id := fleet.ExportIdentity{MirrorID: s.mirror.MirrorID, TenantID: s.mirror.TenantID, Key: s.key}
	if _, err := s.agg.ExportReport(context.Background(), &b, id, now); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.ImportReport(w.op, &b); err != nil {
		t.Fatal(err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestBackend_RolloutSeriesFollowsImportedReports(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	other, err := w.app.CreateRelease(w.op, w.product, controlplane.ReleaseInput{Channel: "stable", Version: "0.9.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("no reports, no points", func(t *testing.T) {
		if _, err := w.app.RecordHistory(w.op); err != nil {
			t.Fatal(err)
		}
		s, err := w.b.RolloutSeries(admin, w.rollout)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Adoption) != 0 || len(s.FailureRate) != 0 {
			t.Errorf("got %+v, want empty series before any install report", s)
		}
	})
	site := newReportingSite(t, w)
	site.send(t, w, w.product, w.release, 30, 10)
	site.send(t, w, w.product, other.ReleaseID, 40, 0)
	w.clk.t = w.clk.t.Add(time.Hour)
	if _, err := w.app.RecordHistory(w.op); err != nil {
		t.Fatal(err)
	}
	site.send(t, w, w.product, w.release, 10, 0)
	w.clk.t = w.clk.t.Add(time.Hour)
	if _, err := w.app.RecordHistory(w.op); err != nil {
		t.Fatal(err)
	}
	s, err := w.b.RolloutSeries(admin, w.rollout)
	if err != nil {
		t.Fatal(err)
	}
	// Round 1: 30 of the product's 70 successful installs are of the
	// release (42.9%), 10 of its 40 installs failed (25%). Round 2: 40 of
	// 80 (50%), 10 of 50 failed (20%).
	wantAdopt := []float64{100 * 30.0 / 70, 50}
	wantFail := []float64{25, 20}
	if len(s.Adoption) != 2 || len(s.FailureRate) != 2 {
		t.Fatalf("got %d adoption and %d failure points, want 2 and 2", len(s.Adoption), len(s.FailureRate))
	}
	for i := range 2 {
		if got := s.Adoption[i].V; !near(got, wantAdopt[i]) {
			t.Errorf("adoption[%d] = %v, want %v", i, got, wantAdopt[i])
		}
		if got := s.FailureRate[i].V; !near(got, wantFail[i]) {
			t.Errorf("failure rate[%d] = %v, want %v", i, got, wantFail[i])
		}
	}
	if !s.Adoption[1].T.After(s.Adoption[0].T) {
		t.Errorf("points at %v and %v, want oldest first", s.Adoption[0].T, s.Adoption[1].T)
	}
}

func TestBackend_EntitlementSeriesFollowsSeats(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	e, err := w.app.CreateEntitlement(w.op, w.tMine, controlplane.EntitlementInput{ProductID: w.product, Policy: json.RawMessage(`{"max_seats":3,"seat_assignment_mode":"explicit"}`)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		sub := controlplane.Subject{SubjectType: "device", SubjectID: fmt.Sprintf("d%d", i)}
		if _, err := w.app.AssignSeat(w.op, e.EntitlementID, sub); err != nil {
			t.Fatal(err)
		}
		if i == 1 { // one lease, taken before the second point
			if _, err := w.app.AcquireLease(w.op, e.EntitlementID, sub); err != nil {
				t.Fatal(err)
			}
		}
		w.clk.t = w.clk.t.Add(time.Hour)
		if _, err := w.app.RecordHistory(w.op); err != nil {
			t.Fatal(err)
		}
	}
	s, err := w.b.EntitlementSeries(admin, e.EntitlementID)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Seats) != 2 || s.Seats[0].V != 1 || s.Seats[1].V != 2 {
		t.Errorf("seats = %+v, want 1 then 2", s.Seats)
	}
	if len(s.Leases) != 2 || s.Leases[0].V != 0 || s.Leases[1].V != 1 {
		t.Errorf("leases = %+v, want 0 then 1", s.Leases)
	}
	t.Run("a foreign tenant cannot read it", func(t *testing.T) {
		if _, err := w.b.EntitlementSeries(console.WithPrincipal(context.Background(), w.theirs), e.EntitlementID); err == nil {
			t.Error("got the series, want a refusal")
		}
	})
}

func TestRecordHistory_SkipsLongFinishedRollouts(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	site := newReportingSite(t, w)
	site.send(t, w, w.product, w.release, 3, 1)
	if _, err := w.b.UpdateRollout(admin, w.rollout, console.RolloutUpdate{Status: "killed"}); err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for i, step := range []time.Duration{time.Hour, 91 * 24 * time.Hour} {
		w.clk.t = w.clk.t.Add(step)
		if i == 0 {
			first = w.clk.t
		}
		if _, err := w.app.RecordHistory(w.op); err != nil {
			t.Fatal(err)
		}
	}
	s, err := w.b.RolloutSeries(admin, w.rollout)
	if err != nil {
		t.Fatal(err)
	}
	// A point 91 days on would also have pruned the first one.
	if len(s.FailureRate) != 1 || !s.FailureRate[0].T.Equal(first) {
		t.Errorf("points = %+v, want only the one at %v (none 91 days after it was killed)", s.FailureRate, first)
	}
}
