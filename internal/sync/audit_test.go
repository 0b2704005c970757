package sync_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

func openMirror(t *testing.T) (*state.State, *cache.Cache) {
	t.Helper()
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st, c
}

func auditEvents(t *testing.T, st *state.State) []catalog.AuditEvent {
	t.Helper()
	var out []catalog.AuditEvent
	err := st.WalkAudit(context.Background(), func(ev *catalog.AuditEvent) error {
		out = append(out, *ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSyncer_AuditCommitEvents(t *testing.T) {
	mid := catalog.NewID(catalog.PrefixMirror)
	tests := []struct {
		name      string
		mirrorID  string
		wantTypes []string
	}{
		{"configured mirror id records the commit", mid, []string{sync.EventSnapshotSynced}},
		{"unknown mirror id commits unrecorded", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := synctest.NewTUFVendor(t)
			cp := synctest.NewTUFControlPlane(t, v)
			st, c := openMirror(t)
			src, err := sync.NewControlPlane(cp.URL, cp.Credential, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}, MirrorID: tt.mirrorID, MaxElapsed: time.Second})
			data := []byte("payload")
			v.Publish(v.Manifest(1, []synctest.Art{{ID: "art_a", Data: data}}))
			if res, err := s.Once(context.Background()); err != nil || !res.Changed {
				t.Fatalf("Once = %+v, %v; want a commit", res, err)
			}
			evs := auditEvents(t, st)
			var got []string
			for _, ev := range evs {
				got = append(got, ev.EventType)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantTypes) {
				t.Fatalf("audit events = %v, want %v", got, tt.wantTypes)
			}
			if len(evs) == 1 {
				ev := evs[0]
				var p struct {
					Sequence int64 `json:"sequence"`
					Fetched  int   `json:"fetched"`
				}
				json.Unmarshal(ev.Payload, &p)
				if ev.ActorType != catalog.ActorMirror || ev.ActorID != mid || ev.TenantID != v.TenantID || p.Sequence != 1 || p.Fetched != 1 {
					t.Errorf("event = %+v payload %s, want mirror %s, sequence 1, 1 fetched", ev, ev.Payload, mid)
				}
			}
		})
	}
}

// auditServer is a loopback control plane endpoint that verifies uploads
// and ingests each event once.
func auditServer(t *testing.T, pub ed25519.PublicKey) *httptest.Server {
	var mu gosync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/mirror/audit" || r.Header.Get("Authorization") != "Bearer cred" {
			http.Error(w, "bad request line or credential", http.StatusUnauthorized)
			return
		}
		evs, err := license.VerifyAuditExport(r.Body, pub, 1<<20)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		res := sync.AuditIngest{Received: len(evs)}
		for _, ev := range evs {
			if !seen[ev.EventID] {
				seen[ev.EventID] = true
				res.Ingested++
			}
		}
		json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSyncer_UploadAudit(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	mid, tid := catalog.NewID(catalog.PrefixMirror), catalog.NewID(catalog.PrefixTenant)
	st, c := openMirror(t)
	led, err := st.Ledger(mid, key, tid)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st.AppendAudit(context.Background(), &catalog.AuditEvent{
			EventID: catalog.NewID(catalog.PrefixEvent), TenantID: tid, ActorType: catalog.ActorMirror, ActorID: mid,
			EventType: "test.event", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), CreatedAt: time.Now().UTC(),
		}); err != nil {
			t.Fatal(err)
		}
	}
	syncerFor := func(t *testing.T, pub ed25519.PublicKey) *sync.Syncer {
		srv := auditServer(t, pub)
		src, err := sync.NewControlPlane(srv.URL, "cred", nil)
		if err != nil {
			t.Fatal(err)
		}
		return sync.New(src, st, c, sync.Config{AuditExport: led.ExportAudit})
	}

	t.Run("second upload ingests nothing", func(t *testing.T) {
		s := syncerFor(t, key.Public().(ed25519.PublicKey))
		for i, want := range []sync.AuditIngest{{Received: 3, Ingested: 3}, {Received: 3, Ingested: 0}} {
			got, err := s.UploadAudit(context.Background())
			if err != nil || got != want {
				t.Errorf("upload %d = %+v, %v; want %+v", i+1, got, err, want)
			}
		}
	})
	t.Run("refused upload is an error with the reason", func(t *testing.T) {
		s := syncerFor(t, otherKey.Public().(ed25519.PublicKey))
		_, err := s.UploadAudit(context.Background())
		if err == nil || !strings.Contains(err.Error(), "signature does not verify") || !sync.IsPermanent(err) {
			t.Errorf("upload = %v, want a permanent error naming the signature", err)
		}
	})
	t.Run("no audit export configured", func(t *testing.T) {
		s := sync.New(nil, st, c, sync.Config{})
		if _, err := s.UploadAudit(context.Background()); err == nil {
			t.Error("upload without a source succeeded")
		}
	})
}

func TestSyncer_AuditImportEvent(t *testing.T) {
	mid := catalog.NewID(catalog.PrefixMirror)
	v := synctest.NewTUFVendor(t)
	st, c := openMirror(t)
	s := sync.New(nil, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}, MirrorID: mid})
	data := []byte("bundle bytes")
	v.Publish(v.Manifest(1, []synctest.Art{{ID: "art_a", Data: data}}))
	buf := bytes.NewBuffer(v.Bundle(t, 0))

	t.Run("dry run records nothing", func(t *testing.T) {
		if _, err := s.Import(context.Background(), bytes.NewReader(buf.Bytes()), true); err != nil {
			t.Fatal(err)
		}
		if got := auditEvents(t, st); len(got) != 0 {
			t.Errorf("events after dry run = %d, want 0", len(got))
		}
	})
	t.Run("commit records snapshot.imported", func(t *testing.T) {
		if rep, err := s.Import(context.Background(), bytes.NewReader(buf.Bytes()), false); err != nil || !rep.Changed {
			t.Fatalf("import = %+v, %v", rep, err)
		}
		got := auditEvents(t, st)
		if len(got) != 1 || got[0].EventType != sync.EventSnapshotImported || got[0].ActorID != mid {
			t.Errorf("events = %+v, want one snapshot.imported by %s", got, mid)
		}
	})
}

func TestSyncer_UploadAuditAcknowledgesAndPrunes(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name       string
		serverKey  ed25519.PrivateKey
		retention  time.Duration
		wantAcked  int64
		wantAnchor int64
	}{
		{"accepted, past the retention: all but the head pruned", key, time.Minute, 3, 2},
		{"accepted, within the retention: acknowledged, kept", key, 48 * time.Hour, 3, 0},
		{"accepted, retention negative: never pruned", key, -1, 3, 0},
		{"refused: not acknowledged, nothing pruned", otherKey, time.Minute, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			mid, tid := catalog.NewID(catalog.PrefixMirror), catalog.NewID(catalog.PrefixTenant)
			st, c := openMirror(t)
			led, err := st.Ledger(mid, key, tid)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := st.AppendAudit(ctx, &catalog.AuditEvent{
					EventID: catalog.NewID(catalog.PrefixEvent), TenantID: tid, ActorType: catalog.ActorMirror, ActorID: mid,
					EventType: "test.event", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), CreatedAt: time.Now().UTC(),
				}); err != nil {
					t.Fatal(err)
				}
			}
			srv := auditServer(t, tt.serverKey.Public().(ed25519.PublicKey))
			src, err := sync.NewControlPlane(srv.URL, "cred", nil)
			if err != nil {
				t.Fatal(err)
			}
			later := func() time.Time { return time.Now().Add(time.Hour) }
			s := sync.New(src, st, c, sync.Config{AuditExport: led.ExportAudit, AuditRetention: tt.retention, Now: later})
			_, _ = s.UploadAudit(ctx)
			got, err := st.AuditState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.Acked != tt.wantAcked || got.Anchor.Seq != tt.wantAnchor || got.Head.Seq != 3 {
				t.Errorf("audit state: acked %d anchor %d head %d, want %d, %d, 3", got.Acked, got.Anchor.Seq, got.Head.Seq, tt.wantAcked, tt.wantAnchor)
			}
			if n, err := st.VerifyAudit(ctx); err != nil || n != 3 {
				t.Errorf("verify = %d, %v; want 3, nil", n, err)
			}
		})
	}
}
