package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/webhook"
)

// The rollout every fleet test starts: 10%, then 50% and 100% with no
// dwell, so only the health gate's evidence holds it back; the gate
// halts above 5% failures over at least 10 installs.
const (
	fleetSchedule = `{"steps":[{"percentage":10,"min_dwell":"0s"},{"percentage":50,"min_dwell":"0s"},{"percentage":100,"min_dwell":"0s"}]}`
	fleetGate     = `{"min_installs":10,"max_failure_rate":5,"max_report_age":"72h"}`
)

// fleetSetup is a control plane whose housekeeping runs every second, a
// tenant, a product and release 1.1.0 under a gated, scheduled 10% rollout.
type fleetSetup struct {
	cp                         *controlPlane
	root, tenant, product, rel string // root: the tenant's root.json
	rollout                    string
}

func newFleetSetup(t *testing.T, tl tools, extraEnv ...string) *fleetSetup {
	t.Helper()
	cp := newControlPlane(t, tl, nil)
	cp.serve(append([]string{"OUTPOST_SNAPSHOT_REFRESH_INTERVAL=1s"}, extraEnv...)...)
	f := &fleetSetup{cp: cp}
	f.tenant = cp.cli("tenant", "create", "Fleet Corp")
	f.root = cp.rootFile(f.tenant)
	f.product = cp.cli("product", "create", "Fleet Demo", "--distribution", "open")
	file, _ := randomFile(t, t.TempDir(), "demo-1.1.0.tar.gz", 64<<10)
	f.rel, _ = cp.release(f.product, "1.1.0", file)
	var ro struct {
		RolloutID string `json:"rollout_id"`
	}
	cp.api("POST", "/v1/products/"+f.product+"/rollouts", cp.admin, map[string]any{
		"channel": "stable", "release_id": f.rel, "percentage": 10,
		"schedule": json.RawMessage(fleetSchedule), "health_gate": json.RawMessage(fleetGate),
	}, &ro, http.StatusCreated)
	f.rollout = ro.RolloutID
	return f
}

// reportInstalls has `failed` clients report install_failed and `ok`
// clients install_ok to the mirror through updatectl.
func (f *fleetSetup) reportInstalls(t *testing.T, tl tools, mirrorURL string, ok, failed int) {
	t.Helper()
	for i := range ok + failed {
		args := []string{"report", "install-ok", "--release", f.rel, "--product", f.product, "--from", "1.0.0", "--to", "1.1.0", "--duration", "3s"}
		if i >= ok {
			args[1] = "install-failed"
			args = append(args, "--error-code", "E_DISK_FULL")
		}
		r := run(t, baseEnv("OUTPOST_SERVER="+mirrorURL, "OUTPOST_STATE_DIR="+t.TempDir()), tl.updatectl, args...)
		if r.code != 0 {
			t.Fatalf("updatectl %s: exit %d: %s", args[1], r.code, r.stderr)
		}
	}
}

// waitHalted waits for housekeeping to halt the rollout and returns the
// rollout.halted audit event's payload.
func (f *fleetSetup) waitHalted(t *testing.T) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ro struct {
			Status     string  `json:"status"`
			Percentage float64 `json:"percentage"`
		}
		f.cp.api("GET", "/v1/rollouts/"+f.rollout, f.cp.admin, nil, &ro, http.StatusOK)
		if ro.Status == "paused" {
			if ro.Percentage != 10 {
				t.Fatalf("halted rollout at %v%%, want 10%% (it must not have advanced)", ro.Percentage)
			}
			break
		}
		if ro.Status != "active" || ro.Percentage != 10 {
			t.Fatalf("rollout is %s at %v%% before the reports arrived, want active at 10%%", ro.Status, ro.Percentage)
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not halted in 60s; control plane log:\n%s", f.cp.proc.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var evs struct {
		Items []struct {
			Payload map[string]any `json:"payload"`
		} `json:"items"`
	}
	f.cp.api("GET", "/v1/audit-events?event_type=rollout.halted", f.cp.admin, nil, &evs, http.StatusOK)
	if len(evs.Items) != 1 {
		t.Fatalf("rollout.halted audit events = %d, want 1", len(evs.Items))
	}
	p := evs.Items[0].Payload
	if r, _ := p["reason"].(string); !strings.Contains(r, "install failure rate") || !strings.Contains(r, "above 5.0%") {
		t.Fatalf("halt reason %q does not name the failure rate", r)
	}
	return p
}

// offered counts the clients of 200 the mirror offers 1.1.0.
func (f *fleetSetup) offered(t *testing.T, mirrorURL string) int {
	t.Helper()
	n := 0
	for i := range 200 {
		d := checkHTTP(t, mirrorURL, "", url.Values{
			"product": {f.product}, "channel": {"stable"}, "platform": {"linux"}, "arch": {"x64"},
			"version": {"1.0.0"}, "client_id": {fmt.Sprintf("fleet-client-%04d", i)},
		})
		if d.UpdateAvailable {
			n++
		}
	}
	return n
}

// latestSequence is the tenant's newest snapshot sequence.
// waitSequenceAbove waits up to 30 s for a snapshot newer than seq.
func (f *fleetSetup) waitSequenceAbove(t *testing.T, seq int64) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := f.latestSequence(t)
		if got > seq {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot built after %d in 30s (latest %d); control plane log:\n%s", seq, got, f.cp.proc.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// latestSequence is the tenant's newest TUF snapshot version (what a
// mirror holding it reports).
func (f *fleetSetup) latestSequence(t *testing.T) int64 {
	t.Helper()
	return tufSnapshotVersion(t, f.cp, f.tenant)
}

// TestE2E_FleetOnlineHaltsRollout: clients at an online mirror report
// install failures above the gate's threshold; the mirror ships them with
// its sync; the control plane's housekeeping halts the rollout at 10%
// (its schedule would otherwise take it to 100%), audits why, rebuilds
// the snapshot, and the mirror keeps offering 1.1.0 only to the 10%.
func TestE2E_FleetOnlineHaltsRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	f := newFleetSetup(t, tl)
	_, seq := f.cp.snapshot(f.tenant)

	m := newMirror(t, tl, "fleet-online", mirrorConfig{tenant: f.tenant, root: f.root, source: "none"})
	_, cred := f.cp.registerMirror(f.tenant, "site-online", m.publicKey)
	m.configure(mirrorConfig{tenant: f.tenant, root: f.root, source: "controlplane", vendorURL: f.cp.url, credential: cred})
	m.serve()
	m.waitSequence(seq)
	before := f.offered(t, m.url)
	if before == 0 || before > 40 {
		t.Fatalf("1.1.0 offered to %d of 200 clients at 10%%, want about 20", before)
	}

	f.reportInstalls(t, tl, m.url, 4, 8) // 67% failed over 12 installs
	p := f.waitHalted(t)
	if n, _ := p["installs"].(float64); n != 12 {
		t.Errorf("halt counted %v installs, want 12", p["installs"])
	}
	m.waitSequence(f.latestSequence(t))
	time.Sleep(3 * time.Second) // housekeeping rounds after the halt must not move it
	m.waitSequence(f.latestSequence(t))
	if after := f.offered(t, m.url); after != before {
		t.Errorf("after the halt 1.1.0 is offered to %d of 200 clients, want the same %d as at 10%%", after, before)
	}
	st := m.status()
	if st.Events == nil {
		t.Fatal("mirror status has no events part")
	}
}

// TestE2E_FleetAirGapHaltsRollout: the same through an air-gapped mirror:
// the snapshot arrives as a bundle, the clients' reports leave as a signed
// return file (`mirror report export` → `controlplane report import`),
// the halt's audit event gives the report's age, and the next bundle
// carries the halted rollout.
func TestE2E_FleetAirGapHaltsRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	f := newFleetSetup(t, tl)
	_, seq := f.cp.snapshot(f.tenant)

	m := newMirror(t, tl, "fleet-airgap", mirrorConfig{tenant: f.tenant, root: f.root, source: "none"})
	mirrorID, _ := f.cp.registerMirror(f.tenant, "site-airgap", m.publicKey)
	f2 := mirrorConfig{tenant: f.tenant, root: f.root, source: "none"}
	m.configure(f2)
	appendConfig(t, m.config, "mirror_id: "+mirrorID+"\n")
	m.importBundle(f.cp.exportBundle(f.tenant, 0))
	m.serve()
	m.waitSequence(seq)
	before := f.offered(t, m.url)

	f.reportInstalls(t, tl, m.url, 4, 8)
	m.stop()
	report := filepath.Join(t.TempDir(), "fleet-report.jsonl")
	if r := m.cmd("report", "export", "--out", report); r.code != 0 {
		t.Fatalf("mirror report export: exit %d: %s", r.code, r.stderr)
	}

	t.Run("a tampered file is refused and changes nothing", func(t *testing.T) {
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.jsonl")
		os.WriteFile(bad, []byte(strings.Replace(string(b), "E_DISK_FULL", "E_DISK_FULX", 1)), 0o600)
		env := append(append([]string{}, f.cp.env...), "OUTPOST_SERVER="+f.cp.url, "OUTPOST_TOKEN="+f.cp.admin)
		if r := run(t, env, tl.controlplane, "report", "import", bad); r.code == 0 || !strings.Contains(r.stderr, "refused") {
			t.Fatalf("import of a tampered file: exit %d, stderr %q; want a refusal", r.code, r.stderr)
		}
	})
	// One file carries both: the client events and the mirror's audit
	// chain (its bundle import so far).
	out := f.cp.cli("report", "import", report)
	if !strings.Contains(out, "12 events (12 new)") || !strings.Contains(out, "acknowledged through 12") {
		t.Fatalf("report import printed %q", out)
	}
	var auditNew, auditHead int
	if sm := auditImported.FindStringSubmatch(out); sm == nil {
		t.Fatalf("report import printed %q: want the audit part ingested", out)
	} else {
		auditNew, _ = strconv.Atoi(sm[1])
		auditHead, _ = strconv.Atoi(sm[2])
	}
	if auditNew == 0 || auditHead != auditNew {
		t.Fatalf("report import printed %q: want the whole chain ingested, at least one event", out)
	}
	if again := f.cp.cli("report", "import", report); !strings.Contains(again, "12 events (0 new)") ||
		!strings.Contains(again, "imported 0 new audit event(s)") {
		t.Fatalf("second import printed %q, want nothing new", again)
	}
	var mirrorEvents struct {
		Events []json.RawMessage `json:"items"`
	}
	f.cp.api("GET", "/v1/audit-events?event_type=mirror.snapshot.imported", f.cp.admin, nil, &mirrorEvents, http.StatusOK)
	if len(mirrorEvents.Events) != auditNew {
		t.Errorf("mirror.snapshot.imported events at the vendor = %d, want %d", len(mirrorEvents.Events), auditNew)
	}
	p := f.waitHalted(t)
	if _, ok := p["oldest_report_age"].(string); !ok {
		t.Errorf("halt payload %v does not give the report's age", p)
	}

	// The halt is stored before the snapshots are rebuilt: wait for the build.
	seq2 := f.waitSequenceAbove(t, seq)
	// The bundle for this mirror carries the vendor's acknowledgement.
	bundle := filepath.Join(t.TempDir(), "for-mirror.tar")
	f.cp.cli("bundle", "export", "--tenant", f.tenant, "--since", fmt.Sprint(seq), "--mirror", mirrorID, "--out", bundle)
	r := m.cmd("import", bundle)
	wantAck := fmt.Sprintf("the vendor acknowledges audit events through %d and client events through 12", auditHead)
	if r.code != 0 || !strings.Contains(r.stdout, wantAck) {
		t.Fatalf("mirror import of the bundle for the mirror: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, wantAck)
	}
	m.serve()
	m.waitSequence(seq2)
	if after := f.offered(t, m.url); after != before {
		t.Errorf("after the halt 1.1.0 is offered to %d of 200 clients, want the same %d as at 10%%", after, before)
	}

	// The next return file holds only what is new: two installs and the
	// audit events after the acknowledged head.
	f.reportInstalls(t, tl, m.url, 1, 1)
	m.stop()
	report2 := filepath.Join(t.TempDir(), "fleet-report-2.jsonl")
	if r := m.cmd("report", "export", "--out", report2); r.code != 0 {
		t.Fatalf("mirror report export: exit %d: %s", r.code, r.stderr)
	}
	st1, _ := os.Stat(report)
	st2, _ := os.Stat(report2)
	if st2.Size() >= st1.Size() {
		t.Errorf("the second return file is %d bytes, want fewer than the first's %d", st2.Size(), st1.Size())
	}
	out2 := f.cp.cli("report", "import", report2)
	if !strings.Contains(out2, "2 events (2 new)") || !strings.Contains(out2, "acknowledged through 14") ||
		!strings.Contains(out2, "imported 1 new audit event(s)") {
		t.Fatalf("import of the second return file printed %q; want 2 new events and 1 new audit event (the bundle import)", out2)
	}
}

// auditImported is what `report import` prints of a return file's audit part.
var auditImported = regexp.MustCompile(`imported (\d+) new audit event\(s\); the mirror's accepted chain now ends at event (\d+)`)

func appendConfig(t *testing.T, path, text string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// hookReceiver is a plain-HTTP receiver on 127.0.0.1 that verifies every
// signature and can fail or hang its next requests.
type hookReceiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	secret  string
	fail    int
	hang    chan struct{}
	got     map[string]int // event id → accepted deliveries
	badSigs int
	entered chan struct{}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{got: map[string]int{}, entered: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		select {
		case r.entered <- struct{}{}:
		default:
		}
		r.mu.Lock()
		hang, secret := r.hang, r.secret
		fail := r.fail > 0
		if fail {
			r.fail--
		}
		r.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-req.Context().Done():
			}
			http.Error(w, "hung", http.StatusServiceUnavailable)
			return
		}
		if fail {
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		if err := webhook.Verify(secret, req.Header.Get(webhook.SignatureHeader), body, time.Now(), webhook.DefaultWindow); err != nil {
			r.mu.Lock()
			r.badSigs++
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev struct {
			ID string `json:"id"`
		}
		json.Unmarshal(body, &ev)
		r.mu.Lock()
		r.got[ev.ID]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() {
		r.mu.Lock()
		if r.hang != nil {
			close(r.hang)
			r.hang = nil
		}
		r.mu.Unlock()
		r.srv.Close()
	})
	return r
}

func (r *hookReceiver) accepted(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

// waitAll waits until every id was accepted at least once.
func (r *hookReceiver) waitAll(t *testing.T, ids []string, logTail func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		for _, id := range ids {
			if r.accepted(id) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never accepted; log:\n%s", missing, len(ids), logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// auditIDs is the ids of the audit events of the given types.
func auditIDs(t *testing.T, cp *controlPlane, types ...string) []string {
	t.Helper()
	var ids []string
	for _, typ := range types {
		var page struct {
			Items []struct {
				EventID string `json:"event_id"`
			} `json:"items"`
		}
		cp.api("GET", "/v1/audit-events?limit=500&event_type="+typ, cp.admin, nil, &page, http.StatusOK)
		for _, it := range page.Items {
			ids = append(ids, it.EventID)
		}
	}
	return ids
}

// TestE2E_WebhooksSurviveFailuresAndKill9: a subscription made with the
// CLI; the receiver fails its first requests, then recovers, and gets
// every event signed; then the control plane is killed with SIGKILL while
// deliveries hang in flight, restarted, and still delivers every event.
func TestE2E_WebhooksSurviveFailuresAndKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	env := []string{"OUTPOST_ALLOW_PRIVATE_WEBHOOKS=true", "OUTPOST_WEBHOOK_RETRY_BASE=100ms", "OUTPOST_WEBHOOK_RETRY_MAX=500ms"}
	cp.serve(env...)
	recv := newHookReceiver(t)
	var sub struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	out := cp.cli("webhook", "create", "--url", recv.srv.URL+"/hook", "--events", "release.published,snapshot.built", "--output", "json")
	if err := json.Unmarshal([]byte(out), &sub); err != nil || !strings.HasPrefix(sub.Secret, "whsec_") {
		t.Fatalf("webhook create printed %q: %v", out, err)
	}
	if list := cp.cli("webhook", "list"); strings.Contains(list, sub.Secret) || !strings.Contains(list, sub.ID) {
		t.Fatalf("webhook list shows %q: want the subscription without its secret", list)
	}
	recv.mu.Lock()
	recv.secret, recv.fail = sub.Secret, 5
	recv.mu.Unlock()

	tenant := cp.cli("tenant", "create", "Hooked Inc")
	product := cp.cli("product", "create", "Hook Demo", "--distribution", "open")
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		cp.cli("release", "create", "--product", product, "--channel", "stable", "--version", v)
	}
	cp.snapshot(tenant)

	t.Run("a receiver failing 5 times then recovering gets every event", func(t *testing.T) {
		ids := auditIDs(t, cp, "release.created", "snapshot.created")
		if len(ids) != 4 {
			t.Fatalf("audit events = %d, want 4", len(ids))
		}
		recv.waitAll(t, ids, cp.proc.logTail)
		recv.mu.Lock()
		bad := recv.badSigs
		recv.mu.Unlock()
		if bad != 0 {
			t.Errorf("bad signatures: %d", bad)
		}
		dels := cp.cli("webhook", "deliveries", sub.ID, "--output", "json")
		if !strings.Contains(dels, `"delivered"`) {
			t.Errorf("deliveries: %s", dels)
		}
	})

	t.Run("kill -9 mid-delivery loses no event", func(t *testing.T) {
		recv.mu.Lock()
		recv.hang = make(chan struct{})
		recv.mu.Unlock()
		for len(recv.entered) > 0 {
			<-recv.entered
		}
		for _, v := range []string{"2.0.0", "2.1.0"} {
			cp.cli("release", "create", "--product", product, "--channel", "stable", "--version", v)
		}
		select {
		case <-recv.entered: // a delivery is in flight, hanging
		case <-time.After(30 * time.Second):
			t.Fatalf("no delivery started; log:\n%s", cp.proc.logTail())
		}
		cp.proc.kill() // SIGKILL
		recv.mu.Lock()
		close(recv.hang)
		recv.hang = nil
		recv.mu.Unlock()
		cp.serve(env...)
		ids := auditIDs(t, cp, "release.created", "snapshot.created")
		if len(ids) != 6 {
			t.Fatalf("audit events = %d, want 6", len(ids))
		}
		recv.waitAll(t, ids, cp.proc.logTail)
	})

	t.Run("manual redelivery", func(t *testing.T) {
		var dels []struct {
			ID      string `json:"id"`
			EventID string `json:"event_id"`
		}
		out := cp.cli("webhook", "deliveries", sub.ID, "--output", "json")
		var page struct {
			Items json.RawMessage `json:"items"`
		}
		if json.Unmarshal([]byte(out), &page) == nil && len(page.Items) > 0 {
			json.Unmarshal(page.Items, &dels)
		} else if err := json.Unmarshal([]byte(out), &dels); err != nil {
			t.Fatalf("deliveries printed %q: %v", out, err)
		}
		if len(dels) == 0 {
			t.Fatal("no deliveries listed")
		}
		n := recv.accepted(dels[0].EventID)
		cp.cli("webhook", "redeliver", dels[0].ID)
		deadline := time.Now().Add(30 * time.Second)
		for recv.accepted(dels[0].EventID) == n {
			if time.Now().After(deadline) {
				t.Fatal("redelivery never arrived")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
