package fleet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/fleet"
)

const mirA = "mir_01jdk0000000000000000000aa"

func keys(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// exported returns an aggregator with a few events and its report.
func exported(t *testing.T, priv ed25519.PrivateKey) (*fleet.Aggregator, []byte, fleet.ReportTrailer) {
	t.Helper()
	ctx := context.Background()
	a := newAgg(t, fleet.NewMemStore(), fleet.Options{})
	if _, _, err := a.Ingest(ctx, []fleet.Event{ev(fleet.TypeInstallOK, relA, ""), ev(fleet.TypeInstallFailed, relA, "E1"), ev(fleet.TypeCheck, "", "")}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tr, err := a.ExportReport(ctx, &buf, fleet.ExportIdentity{MirrorID: mirA, Key: priv}, now)
	if err != nil {
		t.Fatalf("ExportReport: %v", err)
	}
	return a, buf.Bytes(), tr
}

func TestReport_RoundTrip(t *testing.T) {
	pub, priv := keys(t)
	a, file, tr := exported(t, priv)
	if tr.Count != 6 || tr.Through != 3 {
		t.Errorf("trailer = count %d through %d, want 6 (3 aggregates + 3 events), 3", tr.Count, tr.Through)
	}
	sum, err := fleet.VerifyReport(bytes.NewReader(file), pub, fleet.ReadOptions{MirrorID: mirA})
	if err != nil {
		t.Fatalf("VerifyReport: %v", err)
	}
	if sum.Aggregates != 3 || sum.Events != 3 || sum.Header.Since != 0 || sum.Header.MirrorID != mirA {
		t.Errorf("summary = %+v, want 3 aggregates, 3 events since 0 from %s", sum, mirA)
	}
	// After acknowledging, the next report carries only what is new.
	ctx := context.Background()
	if err := a.Ack(ctx, tr.Through); err != nil {
		t.Fatal(err)
	}
	_, _, _ = a.Ingest(ctx, []fleet.Event{ev(fleet.TypeInstallOK, relA, "")})
	var buf bytes.Buffer
	if _, err := a.ExportReport(ctx, &buf, fleet.ExportIdentity{MirrorID: mirA, Key: priv}, now); err != nil {
		t.Fatal(err)
	}
	sum, err = fleet.VerifyReport(&buf, pub, fleet.ReadOptions{})
	if err != nil || sum.Events != 1 || sum.Header.Since != 3 || sum.Trailer.Through != 4 {
		t.Errorf("second report = %+v, %v; want 1 event since 3 through 4", sum, err)
	}
}

func TestReport_Refused(t *testing.T) {
	pub, priv := keys(t)
	otherPub, _ := keys(t)
	_, file, _ := exported(t, priv)
	lines := strings.SplitAfter(string(file), "\n")
	lines = lines[:len(lines)-1] // SplitAfter leaves a trailing ""
	join := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	last := len(lines) - 1
	cases := []struct {
		name string
		file []byte
		pub  ed25519.PublicKey
		opts fleet.ReadOptions
		want string
	}{
		{"other key", file, otherPub, fleet.ReadOptions{}, "signature does not verify"},
		{"other mirror", file, pub, fleet.ReadOptions{MirrorID: "mir_01jdk0000000000000000000zz"}, "not \"mir_01jdk0000000000000000000zz\""},
		{"edited event", bytes.Replace(file, []byte(`"E1"`), []byte(`"E2"`), -1), pub, fleet.ReadOptions{}, "records edited"},
		{"line removed", join(append(append([]string{}, lines[:2]...), lines[3:]...)...), pub, fleet.ReadOptions{}, "records edited"},
		{"truncated before trailer", join(lines[:last]...), pub, fleet.ReadOptions{}, "no trailer"},
		{"truncated mid line", file[:len(file)-5], pub, fleet.ReadOptions{}, "truncated"},
		{"data after trailer", join(append(append([]string{}, lines...), lines[1])...), pub, fleet.ReadOptions{}, "after the trailer"},
		{"empty", nil, pub, fleet.ReadOptions{}, "empty file"},
		{"not json", []byte("hello\n"), pub, fleet.ReadOptions{}, "line 1"},
		{"too big", file, pub, fleet.ReadOptions{MaxBytes: 100}, "larger than 100 bytes"},
		{"line too long", file, pub, fleet.ReadOptions{MaxLine: 50}, "longer than 50 bytes"},
		{"unknown field", join(lines[0], `{"event":{"seq":1},"x":1}`+"\n", lines[last]), pub, fleet.ReadOptions{}, "unknown field"},
		{"two kinds in a line", join(lines[0], `{"event":{"seq":1},"aggregate":{"type":"check"}}`+"\n", lines[last]), pub, fleet.ReadOptions{}, "exactly one"},
		{"invalid event", join(lines[0], `{"event":{"seq":1,"type":"check","client_id":"a b","time":"2026-11-30T06:59:00Z"}}`+"\n", lines[last]), pub, fleet.ReadOptions{}, "client_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fleet.VerifyReport(bytes.NewReader(tc.file), tc.pub, tc.opts)
			if !errors.Is(err, fleet.ErrReport) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("VerifyReport = %v, want ErrReport containing %q", err, tc.want)
			}
			sink := fleet.NewMemSink()
			if _, err := fleet.Import(context.Background(), bytes.NewReader(tc.file), tc.pub, tc.opts, sink); err == nil {
				t.Errorf("Import accepted it")
			}
			if n := sink.Events(); n != 0 || len(sink.Sources(relA)) != 0 {
				t.Errorf("a refused file reached the sink: %d events", n)
			}
		})
	}
}

func TestImport_Idempotent(t *testing.T) {
	pub, priv := keys(t)
	a, file, _ := exported(t, priv)
	ctx := context.Background()
	sink := fleet.NewMemSink()
	res, err := fleet.Import(ctx, bytes.NewReader(file), pub, fleet.ReadOptions{MirrorID: mirA}, sink)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if res.AggregatesChanged != 3 || res.EventsAdded != 3 || !res.CursorMoved {
		t.Errorf("first import = %+v, want 3 aggregates, 3 events, cursor moved", res)
	}
	res, err = fleet.Import(ctx, bytes.NewReader(file), pub, fleet.ReadOptions{MirrorID: mirA}, sink)
	if err != nil || res.AggregatesChanged != 0 || res.EventsAdded != 0 || res.CursorMoved {
		t.Errorf("second import = %+v, %v; want nothing changed", res, err)
	}
	// A newer report (one more event, not acknowledged yet) changes the
	// aggregate it touches and adds only the new event; then the older file
	// changes nothing.
	_, _, _ = a.Ingest(ctx, []fleet.Event{ev(fleet.TypeInstallFailed, relA, "E1")})
	var buf bytes.Buffer
	if _, err := a.ExportReport(ctx, &buf, fleet.ExportIdentity{MirrorID: mirA, Key: priv}, now.Add(1)); err != nil {
		t.Fatal(err)
	}
	res, err = fleet.Import(ctx, bytes.NewReader(buf.Bytes()), pub, fleet.ReadOptions{}, sink)
	if err != nil || res.AggregatesChanged != 3 || res.EventsAdded != 1 {
		t.Errorf("newer import = %+v, %v; want 3 aggregates changed (1 count, 2 freshness), 1 event added", res, err)
	}
	res, _ = fleet.Import(ctx, bytes.NewReader(file), pub, fleet.ReadOptions{}, sink)
	if res.AggregatesChanged != 0 || res.EventsAdded != 0 || res.CursorMoved {
		t.Errorf("older import after newer = %+v, want nothing changed", res)
	}
	srcs := sink.Sources(relA)
	if len(srcs) != 1 {
		t.Fatalf("sources = %+v, want 1", srcs)
	}
	var failed int64
	for _, g := range srcs[0].Aggregates {
		if g.Type == fleet.TypeInstallFailed {
			failed = g.Count
		}
	}
	if failed != 2 || sink.Events() != 4 || sink.Cursor(fleet.Origin{MirrorID: mirA, StoreID: srcs[0].StoreID}) != 4 {
		t.Errorf("sink: failed %d, events %d; want 2, 4 and cursor 4", failed, sink.Events())
	}
}

// TestReport_SignedButInconsistent: a file signed with the right key (a
// buggy or compromised mirror) is still refused when its events are out of
// order or its trailer does not cover them.
func TestReport_SignedButInconsistent(t *testing.T) {
	pub, priv := keys(t)
	rec := func(seq uint64) *fleet.Record {
		return &fleet.Record{Seq: seq, ReceivedAt: now, Event: ev(fleet.TypeCheck, "", "")}
	}
	cases := []struct {
		name    string
		since   uint64
		seqs    []uint64
		through uint64
		want    string
	}{
		{"ok", 2, []uint64{3, 4}, 4, ""},
		{"repeated sequence", 0, []uint64{1, 1}, 1, "does not follow"},
		{"descending", 0, []uint64{2, 1}, 2, "does not follow"},
		{"at or below since", 5, []uint64{5}, 5, "not above since"},
		{"through below the last event", 0, []uint64{1, 2}, 1, "does not cover"},
		{"through below since", 5, nil, 4, "does not cover"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := fleet.NewReportWriter(&buf, fleet.ReportHeader{MirrorID: mirA, StoreID: fleet.NewStoreID(), Since: tc.since, CreatedAt: now}, priv)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.seqs {
				if err := w.WriteEvent(rec(s)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Close(tc.through); err != nil {
				t.Fatal(err)
			}
			_, err = fleet.VerifyReport(&buf, pub, fleet.ReadOptions{})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("VerifyReport = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestImportBatched_FailureMidway(t *testing.T) {
	pub, priv := keys(t)
	_, file, _ := exported(t, priv) // 3 aggregates + 3 events
	ctx := context.Background()
	sink := fleet.NewMemSink()
	calls := 0
	failSecond := func(ctx context.Context, fn func(fleet.Sink) error) error {
		if calls++; calls == 2 {
			return errors.New("disk full")
		}
		return fn(sink)
	}
	res, err := fleet.ImportBatched(ctx, bytes.NewReader(file), pub, fleet.ReadOptions{}, failSecond, 2)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("ImportBatched = %v, want the transaction's error", err)
	}
	if res.AggregatesChanged != 2 || res.CursorMoved {
		t.Errorf("after a failure in the second batch: %+v, want the first 2 records in and the cursor unmoved", res)
	}
	if c := sink.Cursor(fleet.Origin{MirrorID: mirA, StoreID: res.Header.StoreID}); c != 0 {
		t.Errorf("cursor = %d, want 0", c)
	}
	calls = 0
	all := func(ctx context.Context, fn func(fleet.Sink) error) error { calls++; return fn(sink) }
	res, err = fleet.ImportBatched(ctx, bytes.NewReader(file), pub, fleet.ReadOptions{}, all, 2)
	if err != nil || res.AggregatesChanged != 1 || res.EventsAdded != 3 || !res.CursorMoved {
		t.Errorf("retry = %+v, %v; want the 4 remaining records and the cursor", res, err)
	}
	if calls != 4 { // 6 records in batches of 2, then the trailer
		t.Errorf("transactions = %d, want 4", calls)
	}
}
