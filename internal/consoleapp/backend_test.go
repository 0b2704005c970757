package consoleapp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/consoleapp"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newAppStore is a control plane App on bbolt and disk blobs, with its
// store (for what only the App's own paths record).
func newAppStore(t *testing.T, now func() time.Time) (*controlplane.App, store.Store) {
	t.Helper()
	return newAppAt(t, t.TempDir(), now)
}

// newAppAt is newAppStore on the data in dir (made the first time; its
// catalog is dir/cp.db).
func newAppAt(t *testing.T, dir string, now func() time.Time) (*controlplane.App, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys")); errors.Is(err, os.ErrNotExist) {
		if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
			t.Fatal(err)
		}
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	return controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer, Now: now}), db
}

// world is a control plane with two tenants, a product, a published
// release, a rollout, a mirror per tenant and snapshots.
type world struct {
	app                 *controlplane.App
	db                  store.Store
	b                   *consoleapp.Backend
	clk                 *clock
	op                  context.Context
	admin, mine, theirs console.Principal
	adminSecret         string
	mineSecret          string
	tMine, tTheirs      string
	product, release    string
	rollout             string
	mMine               *controlplane.MirrorCreated
}

func setup(t *testing.T) *world {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	w := &world{clk: clk}
	w.app, w.db = newAppStore(t, clk.now)
	w.b = consoleapp.New(w.app, consoleapp.Options{ChainTTL: time.Minute, Now: clk.now})
	w.op = controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	ctx := context.Background()
	tok := func(role, tenant string) (string, console.Principal) {
		t.Helper()
		c, err := w.app.CreateToken(w.op, controlplane.TokenInput{Role: role, TenantID: tenant, Name: role})
		if err != nil {
			t.Fatal(err)
		}
		p, err := w.b.Authenticate(ctx, c.Secret)
		if err != nil {
			t.Fatal(err)
		}
		return c.Secret, p
	}
	w.adminSecret, w.admin = tok(catalog.RoleAdmin, "")
	as := console.WithPrincipal(ctx, w.admin)
	mine, err := w.b.CreateTenant(as, "mine")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := w.b.CreateTenant(as, "theirs")
	if err != nil {
		t.Fatal(err)
	}
	w.tMine, w.tTheirs = mine.TenantID, theirs.TenantID
	w.mineSecret, w.mine = tok(catalog.RoleTenant, w.tMine)
	_, w.theirs = tok(catalog.RoleTenant, w.tTheirs)
	p, err := w.b.CreateProduct(as, "app", catalog.DistributionOpen)
	if err != nil {
		t.Fatal(err)
	}
	w.product = p.ProductID
	file := bytes.Repeat([]byte("outpost "), 1<<15)
	rel, err := w.b.PublishRelease(as, console.PublishRequest{ProductID: w.product, Channel: "stable", Version: "1.0.0",
		Platform: "linux", Arch: "x64", InstallerType: "tar.gz", FileName: "app.tar", SizeBytes: int64(len(file))}, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	w.release = rel.ReleaseID
	ro, err := w.b.CreateRollout(as, console.RolloutRequest{ProductID: w.product, ReleaseID: w.release, Percentage: 25})
	if err != nil {
		t.Fatal(err)
	}
	w.rollout = ro.RolloutID
	if w.mMine, err = w.app.CreateMirror(w.op, w.tMine, controlplane.MirrorInput{Name: "site-a", AllowedChannels: []string{"stable"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.CreateMirror(w.op, w.tTheirs, controlplane.MirrorInput{Name: "site-b", AllowedChannels: []string{"beta"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.BuildSnapshot(w.op, w.tMine); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestBackend_AppliesTheAPIRules(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	mine := console.WithPrincipal(ctx, w.mine)
	admin := console.WithPrincipal(ctx, w.admin)

	t.Run("no principal is unauthorized", func(t *testing.T) {
		_, err := w.b.Tenants(ctx)
		if got := catalog.ErrorCode(err); got != catalog.EUNAUTHORIZED {
			t.Errorf("got %q, want %q", got, catalog.EUNAUTHORIZED)
		}
	})
	t.Run("a tenant sees only its own tenant", func(t *testing.T) {
		ts, err := w.b.Tenants(mine)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 1 || ts[0].TenantID != w.tMine {
			t.Errorf("got %v, want only %s", ts, w.tMine)
		}
		for name, call := range map[string]func() error{
			"Tenant":          func() error { _, err := w.b.Tenant(mine, w.tTheirs); return err },
			"Mirrors":         func() error { _, err := w.b.Mirrors(mine, w.tTheirs); return err },
			"Policies":        func() error { _, err := w.b.Policies(mine, w.tTheirs); return err },
			"BlockedVersions": func() error { _, err := w.b.BlockedVersions(mine, w.tTheirs); return err },
			"Entitlements":    func() error { _, err := w.b.Entitlements(mine, w.tTheirs); return err },
		} {
			if got := catalog.ErrorCode(call()); got != catalog.ENOTFOUND {
				t.Errorf("%s of another tenant: got %q, want %q", name, got, catalog.ENOTFOUND)
			}
		}
	})
	t.Run("a tenant's audit log is its own", func(t *testing.T) {
		evs, err := w.b.AuditEvents(mine, console.AuditQuery{TenantID: w.tTheirs})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 0 {
			t.Errorf("got %d events of another tenant, want 0", len(evs))
		}
	})
	t.Run("admin operations refuse a tenant", func(t *testing.T) {
		for name, call := range map[string]func() error{
			"Products":      func() error { _, err := w.b.Products(mine); return err },
			"Releases":      func() error { _, err := w.b.Releases(mine, w.product); return err },
			"CreateTenant":  func() error { _, err := w.b.CreateTenant(mine, "x"); return err },
			"RevokePreview": func() error { _, err := w.b.RevokePreview(mine, w.release); return err },
			"RevokeRelease": func() error { _, err := w.b.RevokeRelease(mine, w.release); return err },
			"Rollouts":      func() error { _, err := w.b.Rollouts(mine, w.product); return err },
			"CreateToken":   func() error { _, _, err := w.b.CreateToken(mine, catalog.RoleAdmin, "", "x"); return err },
			"VerifyAudit":   func() error { _, err := w.b.VerifyAuditChain(mine); return err },
			"AllMirrors":    func() error { _, err := w.b.Mirrors(mine, ""); return err },
			"BlockVersion": func() error {
				_, err := w.b.BlockVersion(mine, &catalog.BlockedVersion{TenantID: w.tMine, ProductID: w.product, BlockedVersion: "1.0.0"})
				return err
			},
		} {
			if got := catalog.ErrorCode(call()); got != catalog.EFORBIDDEN {
				t.Errorf("%s: got %q, want %q", name, got, catalog.EFORBIDDEN)
			}
		}
	})
	t.Run("read-only principals cannot change anything", func(t *testing.T) {
		ro := console.WithPrincipal(ctx, console.Principal{Role: console.RoleAdminRO, TokenID: w.admin.TokenID})
		if _, err := w.b.CreateTenant(ro, "x"); catalog.ErrorCode(err) != catalog.EFORBIDDEN {
			t.Errorf("got %v, want forbidden", err)
		}
	})
	t.Run("the admin sees every tenant's mirrors", func(t *testing.T) {
		ms, err := w.b.Mirrors(admin, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 {
			t.Errorf("got %d mirrors, want 2", len(ms))
		}
	})
}

func TestBackend_Sessions(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	t.Run("a token's principal is re-read", func(t *testing.T) {
		p, err := w.b.TokenPrincipal(ctx, w.mine.TokenID)
		if err != nil {
			t.Fatal(err)
		}
		if p != w.mine {
			t.Errorf("got %+v, want %+v", p, w.mine)
		}
	})
	t.Run("an unknown token id is refused", func(t *testing.T) {
		_, err := w.b.TokenPrincipal(ctx, "tok_unknown")
		if got := catalog.ErrorCode(err); got != catalog.EUNAUTHORIZED {
			t.Errorf("got %q, want %q", got, catalog.EUNAUTHORIZED)
		}
	})
	t.Run("a mirror credential cannot sign in", func(t *testing.T) {
		_, err := w.b.Authenticate(ctx, w.mMine.Credential)
		if got := catalog.ErrorCode(err); got != catalog.EUNAUTHORIZED {
			t.Errorf("got %q, want %q", got, catalog.EUNAUTHORIZED)
		}
	})
	t.Run("a wrong token is refused", func(t *testing.T) {
		_, err := w.b.Authenticate(ctx, w.adminSecret+"x")
		if got := catalog.ErrorCode(err); got != catalog.EUNAUTHORIZED {
			t.Errorf("got %q, want %q", got, catalog.EUNAUTHORIZED)
		}
	})
	t.Run("a suspended tenant's sessions end", func(t *testing.T) {
		st := catalog.TenantSuspended
		if _, err := w.app.UpdateTenant(w.op, w.tMine, controlplane.TenantPatch{Status: &st}); err != nil {
			t.Fatal(err)
		}
		_, err := w.b.TokenPrincipal(ctx, w.mine.TokenID)
		if got := catalog.ErrorCode(err); got != catalog.EFORBIDDEN {
			t.Errorf("got %q, want %q", got, catalog.EFORBIDDEN)
		}
	})
}

func TestBackend_RevokePreviewNamesWhatItAffects(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	imp, err := w.b.RevokePreview(admin, w.release)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(n int, f func(int) string) []string {
		var out []string
		for i := range n {
			out = append(out, f(i))
		}
		return out
	}
	// Only "mine" has a snapshot listing the release; its mirror serves
	// stable.
	if got := ids(len(imp.Tenants), func(i int) string { return imp.Tenants[i].TenantID }); len(got) != 1 || got[0] != w.tMine {
		t.Errorf("tenants: got %v, want [%s]", got, w.tMine)
	}
	if got := ids(len(imp.Mirrors), func(i int) string { return imp.Mirrors[i].MirrorID }); len(got) != 1 || got[0] != w.mMine.MirrorID {
		t.Errorf("mirrors: got %v, want [%s]", got, w.mMine.MirrorID)
	}
	if got := ids(len(imp.Rollouts), func(i int) string { return imp.Rollouts[i].RolloutID }); len(got) != 1 || got[0] != w.rollout {
		t.Errorf("rollouts: got %v, want [%s]", got, w.rollout)
	}
	rel, err := w.b.RevokeRelease(admin, w.release)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Status != catalog.ReleaseRevoked {
		t.Errorf("status: got %q, want %q", rel.Status, catalog.ReleaseRevoked)
	}
}

func TestBackend_PublishRelease(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	t.Run("the artifact is attached", func(t *testing.T) {
		v, err := w.app.Release(w.op, w.release)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Artifacts) != 1 || v.Artifacts[0].Platform != "linux" {
			t.Fatalf("got %+v, want one linux artifact", v.Artifacts)
		}
		a, err := w.app.Artifact(w.op, v.Artifacts[0].ArtifactID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.SizeBytes, int64(8<<15); got != want {
			t.Errorf("size: got %d, want %d", got, want)
		}
	})
	t.Run("a short file is refused and makes no release", func(t *testing.T) {
		_, err := w.b.PublishRelease(admin, console.PublishRequest{ProductID: w.product, Channel: "stable", Version: "2.0.0",
			Platform: "linux", Arch: "x64", InstallerType: "tar.gz", SizeBytes: 100}, bytes.NewReader(make([]byte, 10)))
		if err == nil {
			t.Fatal("got nil error, want a refusal")
		}
		rs, err := w.b.Releases(admin, w.product)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 {
			t.Errorf("got %d releases, want 1", len(rs))
		}
	})
}

func TestBackend_MirrorsFromSyncReports(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	snap, err := w.app.BuildSnapshot(w.op, w.tMine) // sequence 2
	if err != nil {
		t.Fatal(err)
	}
	mp, err := w.app.Authenticate(context.Background(), w.mMine.Credential)
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := w.app.Snapshots(w.op, w.tMine, storePage())
	if err != nil {
		t.Fatal(err)
	}
	var seq1 *catalog.Snapshot
	for _, s := range first {
		if s.Sequence == 1 {
			seq1 = s
		}
	}
	if seq1 == nil {
		t.Fatal("no snapshot 1")
	}
	mctx := controlplane.WithPrincipal(context.Background(), mp)
	if _, err := w.app.ReportSync(mctx, controlplane.SyncReport{LastSnapshotID: seq1.SnapshotID, Sequence: 1}); err != nil {
		t.Fatal(err)
	}
	ms, err := w.b.Mirrors(admin, w.tMine)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("got %d mirrors, want 1", len(ms))
	}
	m := ms[0]
	if m.MetadataVersion != 1 || m.LatestVersion != snap.Sequence || !m.ExpiresAt.Equal(seq1.ExpiresAt) || m.Mirror.LastSyncAt == nil {
		t.Errorf("got version %d latest %d expires %v synced %v, want 1, %d, %v, set", m.MetadataVersion, m.LatestVersion, m.ExpiresAt, m.Mirror.LastSyncAt, snap.Sequence, seq1.ExpiresAt)
	}
}

// A trust: tuf mirror reports the TUF snapshot version it holds
// ("tuf-N"): accepted, shown as its version, and not a fork.
func TestBackend_MirrorReportsTUFVersion(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	mp, err := w.app.Authenticate(context.Background(), w.mMine.Credential)
	if err != nil {
		t.Fatal(err)
	}
	mctx := controlplane.WithPrincipal(context.Background(), mp)
	for _, bad := range []string{"tuf-0", "tuf-x", "nonsense"} {
		if _, err := w.app.ReportSync(mctx, controlplane.SyncReport{LastSnapshotID: bad}); catalog.ErrorCode(err) != catalog.EINVALID {
			t.Errorf("report naming %q: got %v, want invalid", bad, err)
		}
	}
	if _, err := w.app.ReportSync(mctx, controlplane.SyncReport{LastSnapshotID: "tuf-7", Sequence: 7}); err != nil {
		t.Fatal(err)
	}
	ms, err := w.b.Mirrors(admin, w.tMine)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("got %d mirrors, want 1", len(ms))
	}
	if got := ms[0]; got.MetadataVersion != 7 || len(got.ForkAlerts) != 0 {
		t.Errorf("got version %d and fork alerts %v, want 7 and none", got.MetadataVersion, got.ForkAlerts)
	}
}

// Fork alerts on the mirrors page: a sync report naming a snapshot this
// control plane never signed, and the mirror.fork_detected events the App
// records when a mirror's audit chain forks (a cloned data directory).
func TestBackend_MirrorForkAlerts(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	mp, err := w.app.Authenticate(context.Background(), w.mMine.Credential)
	if err != nil {
		t.Fatal(err)
	}
	mctx := controlplane.WithPrincipal(context.Background(), mp)
	mirrorOf := func(t *testing.T, ctx context.Context, tenant, id string) *console.MirrorInfo {
		t.Helper()
		ms, err := w.b.Mirrors(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Mirror.MirrorID == id {
				return m
			}
		}
		t.Fatalf("mirror %s not listed", id)
		return nil
	}

	t.Run("a mirror that reports what was signed has none", func(t *testing.T) {
		snaps, _, err := w.app.Snapshots(w.op, w.tMine, storePage())
		if err != nil || len(snaps) == 0 {
			t.Fatalf("snapshots: %v, %d", err, len(snaps))
		}
		if _, err := w.app.ReportSync(mctx, controlplane.SyncReport{LastSnapshotID: snaps[0].SnapshotID, Sequence: snaps[0].Sequence}); err != nil {
			t.Fatal(err)
		}
		if got := mirrorOf(t, admin, w.tMine, w.mMine.MirrorID).ForkAlerts; len(got) != 0 {
			t.Errorf("got fork alerts %+v, want none", got)
		}
	})

	t.Run("a snapshot this control plane did not sign", func(t *testing.T) {
		alien := catalog.NewID(catalog.PrefixSnapshot)
		if _, err := w.app.ReportSync(mctx, controlplane.SyncReport{LastSnapshotID: alien, Sequence: 9}); err != nil {
			t.Fatal(err)
		}
		got := mirrorOf(t, admin, w.tMine, w.mMine.MirrorID)
		if len(got.ForkAlerts) != 1 || !strings.Contains(got.ForkAlerts[0].Detail, alien) {
			t.Fatalf("got fork alerts %+v, want one naming %s", got.ForkAlerts, alien)
		}
		if got.MetadataVersion != 0 {
			t.Errorf("got metadata version %d for an unsigned snapshot, want 0 (unknown)", got.MetadataVersion)
		}
	})

	t.Run("audit chain forks, newest first and bounded", func(t *testing.T) {
		for i := range 7 {
			w.clk.t = w.clk.t.Add(time.Minute)
			payload, _ := json.Marshal(map[string]any{
				"mirror_id": w.mMine.MirrorID, "reason": fmt.Sprintf("fork %d", i),
				"accepted": catalog.AuditHead{Seq: 10, Hash: "a"}, "presented": catalog.AuditHead{Seq: int64(11 + i), Hash: "b"},
			})
			ev := &catalog.AuditEvent{TenantID: w.tMine, ActorType: catalog.ActorMirror, ActorID: w.mMine.MirrorID,
				EventType: controlplane.EventForkDetected, Payload: payload, CreatedAt: w.clk.t}
			if _, err := w.db.AppendAudit(context.Background(), ev, fmt.Sprintf("fork:%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for name, ctx := range map[string]context.Context{"admin": admin, "its tenant": console.WithPrincipal(context.Background(), w.mine)} {
			got := mirrorOf(t, ctx, w.tMine, w.mMine.MirrorID).ForkAlerts
			// the unsigned snapshot, then the 5 newest audit forks
			if len(got) != 1+5 {
				t.Fatalf("%s: got %d fork alerts, want 6: %+v", name, len(got), got)
			}
			for i, want := range []string{"fork 6", "fork 5", "fork 4", "fork 3", "fork 2"} {
				if a := got[1+i]; !strings.Contains(a.Detail, want) || !strings.Contains(a.Detail, "accepted up to event 10") {
					t.Errorf("%s: alert %d = %q, want %q and the accepted head", name, 1+i, a.Detail, want)
				}
			}
			if !got[1].At.After(got[2].At) {
				t.Errorf("%s: alerts not newest first: %v then %v", name, got[1].At, got[2].At)
			}
		}
	})

	t.Run("another tenant's mirror has none", func(t *testing.T) {
		ms, err := w.b.Mirrors(console.WithPrincipal(context.Background(), w.theirs), w.tTheirs)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if len(m.ForkAlerts) != 0 {
				t.Errorf("mirror %s of the other tenant got fork alerts %+v", m.Mirror.Name, m.ForkAlerts)
			}
		}
	})
}

func TestBackend_VerifyAuditChainIsCached(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	first, err := w.b.VerifyAuditChain(admin)
	if err != nil {
		t.Fatal(err)
	}
	if !first.OK || first.Events == 0 {
		t.Fatalf("got %+v, want a verified chain with events", first)
	}
	if _, err := w.b.CreateTenant(admin, "more"); err != nil {
		t.Fatal(err)
	}
	again, err := w.b.VerifyAuditChain(admin)
	if err != nil {
		t.Fatal(err)
	}
	if again.Events != first.Events {
		t.Errorf("within the TTL: got %d events, want the cached %d", again.Events, first.Events)
	}
	w.clk.t = w.clk.t.Add(2 * time.Minute)
	later, err := w.b.VerifyAuditChain(admin)
	if err != nil {
		t.Fatal(err)
	}
	if later.Events != first.Events+1 {
		t.Errorf("after the TTL: got %d events, want %d", later.Events, first.Events+1)
	}
}

func TestBackend_EntitlementsCountSeats(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	e, err := w.app.CreateEntitlement(w.op, w.tMine, controlplane.EntitlementInput{ProductID: w.product, Policy: json.RawMessage(`{"max_seats":3,"seat_assignment_mode":"explicit"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.AssignSeat(w.op, e.EntitlementID, controlplane.Subject{SubjectType: "device", SubjectID: "d1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.AcquireLease(w.op, e.EntitlementID, controlplane.Subject{SubjectType: "device", SubjectID: "d1"}); err != nil {
		t.Fatal(err)
	}
	es, err := w.b.Entitlements(admin, w.tMine)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].MaxSeats != 3 || es[0].SeatsAssigned != 1 || es[0].LeasesActive != 1 || es[0].Product == nil {
		t.Errorf("got %+v, want max 3, 1 assigned, 1 lease active, with product", es)
	}
}

func storePage() store.Page { return store.Page{Limit: store.MaxLimit} }

func TestBackend_ReadOnlyTokenSessionCannotWrite(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	tok, err := w.app.CreateToken(w.op, controlplane.TokenInput{Role: catalog.RoleAdminRO, Name: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.b.Authenticate(ctx, tok.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Role, catalog.RoleAdminRO; got != want {
		t.Fatalf("console role = %q, want %q", got, want)
	}
	as := console.WithPrincipal(ctx, p)
	if _, err := w.b.Tenants(as); err != nil {
		t.Errorf("a read-only admin cannot read tenants: %v", err)
	}
	_, err = w.b.CreateTenant(as, "sneaky")
	if got := catalog.ErrorCode(err); got != catalog.EFORBIDDEN {
		t.Errorf("CreateTenant with a read-only session: %v (code %q), want %q", err, got, catalog.EFORBIDDEN)
	}
}

// The console's schedule and gate reach the App's rollout as the fleet
// rules the API takes, and read back on the rollout's page.
func TestBackend_RolloutScheduleAndGate(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	start := w.clk.t
	sched, err := console.ParseSchedule("5 for 24h, 25 for 2d, 100", start)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := w.b.CreateRollout(admin, console.RolloutRequest{ProductID: w.product, ReleaseID: w.release, Percentage: 5,
		Schedule: sched, Gate: &console.HealthGate{MaxFailureRate: 2.5, MinReports: 50}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.app.Rollout(w.op, ro.RolloutID)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"steps":[{"percentage":5,"min_dwell":"24h0m0s"},{"percentage":25,"min_dwell":"48h0m0s"},{"percentage":100,"min_dwell":"0s"}]}`; string(got.Schedule) != want {
		t.Errorf("schedule %s, want %s", got.Schedule, want)
	}
	if want := `{"min_installs":50,"max_failure_rate":2.5}`; string(got.HealthGate) != want {
		t.Errorf("health gate %s, want %s", got.HealthGate, want)
	}
	info, err := w.b.Rollout(admin, ro.RolloutID)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Schedule) != 3 || !info.Schedule[1].At.Equal(start.Add(24*time.Hour)) || !info.Schedule[2].At.Equal(start.Add(72*time.Hour)) {
		t.Errorf("read back schedule %+v, want the steps at +24h and +72h", info.Schedule)
	}
	if info.Gate == nil || info.Gate.MaxFailureRate != 2.5 || info.Gate.MinReports != 50 {
		t.Errorf("read back gate %+v", info.Gate)
	}

	t.Run("replaced", func(t *testing.T) {
		s2, _ := console.ParseSchedule("10 for 1h, 100", start)
		if _, err := w.b.UpdateRollout(admin, ro.RolloutID, console.RolloutUpdate{Schedule: s2, Gate: &console.HealthGate{MaxFailureRate: 1, MinReports: 10}}); err != nil {
			t.Fatal(err)
		}
		got, _ := w.app.Rollout(w.op, ro.RolloutID)
		if string(got.Schedule) != `{"steps":[{"percentage":10,"min_dwell":"1h0m0s"},{"percentage":100,"min_dwell":"0s"}]}` || string(got.HealthGate) != `{"min_installs":10,"max_failure_rate":1}` {
			t.Errorf("got schedule %s and gate %s", got.Schedule, got.HealthGate)
		}
		if got.Percentage != 5 {
			t.Errorf("percentage %v, want 5 (not given)", got.Percentage)
		}
	})
	t.Run("the gate's other rules stay", func(t *testing.T) {
		full := `{"min_installs":10,"max_failure_rate":1,"halt_on_error_codes":["E_BRICKED"],"max_report_age":"72h0m0s"}`
		if _, err := w.app.UpdateRollout(w.op, ro.RolloutID, controlplane.RolloutPatch{HealthGate: json.RawMessage(full)}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.b.UpdateRollout(admin, ro.RolloutID, console.RolloutUpdate{Gate: &console.HealthGate{MaxFailureRate: 3, MinReports: 20}}); err != nil {
			t.Fatal(err)
		}
		got, _ := w.app.Rollout(w.op, ro.RolloutID)
		if want := `{"min_installs":20,"max_failure_rate":3,"halt_on_error_codes":["E_BRICKED"],"max_report_age":"72h0m0s"}`; string(got.HealthGate) != want {
			t.Errorf("gate %s, want %s", got.HealthGate, want)
		}
	})
	t.Run("kept when not given", func(t *testing.T) {
		pct := 10.0
		if _, err := w.b.UpdateRollout(admin, ro.RolloutID, console.RolloutUpdate{Percentage: &pct}); err != nil {
			t.Fatal(err)
		}
		if got, _ := w.app.Rollout(w.op, ro.RolloutID); len(got.Schedule) == 0 || len(got.HealthGate) == 0 || got.Percentage != 10 {
			t.Errorf("got %v%%, schedule %s, gate %s; want 10%%, both kept", got.Percentage, got.Schedule, got.HealthGate)
		}
	})
	t.Run("removed", func(t *testing.T) {
		if _, err := w.b.UpdateRollout(admin, ro.RolloutID, console.RolloutUpdate{RemoveSchedule: true, RemoveGate: true}); err != nil {
			t.Fatal(err)
		}
		got, _ := w.app.Rollout(w.op, ro.RolloutID)
		if len(got.Schedule) != 0 || len(got.HealthGate) != 0 {
			t.Errorf("got schedule %s and gate %s, want both removed", got.Schedule, got.HealthGate)
		}
	})
	t.Run("a tenant may not change them", func(t *testing.T) {
		_, err := w.b.UpdateRollout(console.WithPrincipal(context.Background(), w.mine), ro.RolloutID, console.RolloutUpdate{RemoveGate: true})
		if code := catalog.ErrorCode(err); code != catalog.EFORBIDDEN {
			t.Errorf("got %v, want forbidden", err)
		}
	})
}
