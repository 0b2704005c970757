package controlplane_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/store"
)

// site is one mirror registered at the control plane with its fleet
// aggregator, as the mirror keeps it.
type site struct {
	mirror *controlplane.MirrorCreated
	key    ed25519.PrivateKey
	agg    *fleet.Aggregator
}

func newSite(t *testing.T, a *controlplane.App, op context.Context, tenantID string) *site {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	m, err := a.CreateMirror(op, tenantID, controlplane.MirrorInput{Name: "site", AllowedChannels: []string{"stable"}, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	if err != nil {
		t.Fatal(err)
	}
	agg, err := fleet.NewAggregator(context.Background(), fleet.NewMemStore(), fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &site{mirror: m, key: key, agg: agg}
}

// installs reports ok successful and failed failed installs of releaseID.
func (s *site) installs(t *testing.T, releaseID string, ok, failed int, code string) {
	t.Helper()
	var evs []fleet.Event
	now := time.Now().UTC()
	for i := range ok + failed {
		ev := fleet.Event{Type: fleet.TypeInstallOK, ClientID: fmt.Sprintf("client-%04d", i), ReleaseID: releaseID, ToVersion: "1.1.0", Time: now}
		if i >= ok {
			ev.Type, ev.ErrorCode = fleet.TypeInstallFailed, code
		}
		evs = append(evs, ev)
	}
	if _, _, err := s.agg.Ingest(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func (s *site) report(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	id := fleet.ExportIdentity{MirrorID: s.mirror.MirrorID, TenantID: s.mirror.TenantID, Key: s.key}
	if _, err := s.agg.ExportReport(context.Background(), &b, id, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func operator() context.Context {
	return controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
}

func TestImportReport_VerifiesAndIsIdempotent(t *testing.T) {
	a := newApp(t)
	op := operator()
	ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, a, op, ten.TenantID)
	rel := catalog.NewID(catalog.PrefixRelease)
	s.installs(t, rel, 8, 2, "E_DISK")
	file := s.report(t)

	t.Run("tampered file ingests nothing", func(t *testing.T) {
		bad := bytes.Replace(file, []byte("E_DISK"), []byte("E_DISC"), 1)
		_, err := a.ImportReport(op, bytes.NewReader(bad))
		if got := catalog.ErrorCode(err); got != catalog.EINVALID {
			t.Fatalf("code = %q (%v), want invalid", got, err)
		}
		srcs, err := a.FleetSink().Sources(context.Background(), rel)
		if err != nil || len(srcs) != 0 {
			t.Fatalf("sources after a refused file = %d (%v), want 0", len(srcs), err)
		}
	})
	t.Run("first import ingests and acknowledges", func(t *testing.T) {
		res, err := a.ImportReport(op, bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if res.EventsAdded != 10 || res.Through != 10 || res.MirrorID != s.mirror.MirrorID {
			t.Fatalf("got %+v, want 10 events added, through 10", res)
		}
		srcs, err := a.FleetSink().Sources(context.Background(), rel)
		if err != nil || len(srcs) != 1 {
			t.Fatalf("sources = %d (%v), want 1", len(srcs), err)
		}
	})
	t.Run("second import changes nothing", func(t *testing.T) {
		res, err := a.ImportReport(op, bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if res.EventsAdded != 0 || res.AggregatesChanged != 0 || res.Through != 10 {
			t.Fatalf("got %+v, want nothing changed, through 10", res)
		}
	})
	t.Run("audit records the import", func(t *testing.T) {
		evs, _, err := a.AuditEvents(op, store.AuditFilter{EventType: controlplane.EventReportImported}, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 {
			t.Fatalf("report.imported events = %d, want 1 (the repeat is deduplicated)", len(evs))
		}
	})
	t.Run("a tenant token may not import", func(t *testing.T) {
		tctx := controlplane.WithPrincipal(context.Background(), &controlplane.Principal{Role: catalog.RoleTenant, TenantID: ten.TenantID})
		_, err := a.ImportReport(tctx, bytes.NewReader(file))
		if got := catalog.ErrorCode(err); got != catalog.EFORBIDDEN {
			t.Fatalf("code = %q, want forbidden", got)
		}
	})
	t.Run("another mirror cannot upload this mirror's file", func(t *testing.T) {
		other := newSite(t, a, op, ten.TenantID)
		mctx := controlplane.WithPrincipal(context.Background(), &controlplane.Principal{Role: controlplane.RoleMirror, Mirror: other.mirror.Mirror, TokenID: other.mirror.MirrorID})
		_, err := a.UploadReport(mctx, bytes.NewReader(file))
		if got := catalog.ErrorCode(err); got != catalog.EINVALID {
			t.Fatalf("code = %q (%v), want invalid", got, err)
		}
	})
}
