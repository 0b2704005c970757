package controlplane_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
)

// herdStore wraps the bbolt store to make a big tenant cheaply and to
// hold operations at known points, so the tests observe coalescing by
// counts, never by timing.
type herdStore struct {
	store.Store
	big int // releases of the generated catalog (0: the real catalog)

	heads atomic.Int64 // LatestSnapshotHead calls

	mu        sync.Mutex
	holdSnap  chan struct{} // while set, Snapshot waits for it to close
	holdBuild chan struct{} // while set, CreateSnapshot waits for it to close once committed
	building  chan struct{} // receives when a held CreateSnapshot is waiting
}

func (s *herdStore) LatestSnapshotHead(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	s.heads.Add(1)
	return s.Store.LatestSnapshotHead(ctx, tenantID)
}

func (s *herdStore) Snapshot(ctx context.Context, id string) (*catalog.Snapshot, error) {
	s.mu.Lock()
	hold := s.holdSnap
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return s.Store.Snapshot(ctx, id)
}

func (s *herdStore) CreateSnapshot(ctx context.Context, tenantID string, build func(in *catalog.SnapshotInput) (*catalog.Snapshot, error)) (*catalog.Snapshot, error) {
	s.mu.Lock()
	hold, building := s.holdBuild, s.building
	s.mu.Unlock()
	snap, err := s.Store.CreateSnapshot(ctx, tenantID, func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		if s.big > 0 {
			big := snapshottest.Input(1, s.big, 1)
			for _, p := range big.Policies {
				p.TenantID = tenantID
			}
			for _, b := range big.BlockedVersions {
				b.TenantID = tenantID
			}
			for _, e := range big.Entitlements {
				e.TenantID = tenantID
			}
			for _, m := range big.Mirrors {
				m.TenantID = tenantID
			}
			big.Tenant, big.Sequence, big.Previous = in.Tenant, in.Sequence, in.Previous
			in = big
		}
		return build(in)
	})
	if hold != nil {
		// Committed, so writes go on (a bbolt write would wait for the
		// transaction); the build is still running for the App.
		building <- struct{}{}
		<-hold
	}
	return snap, err
}

func newHerdApp(t testing.TB, st *herdStore, cfg controlplane.Config) *controlplane.App {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st.Store = db
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	a := controlplane.New(controlplane.Options{Store: st, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer, Config: cfg})
	t.Cleanup(a.Drain)
	return a
}

func tenantCtx(t testing.TB, a *controlplane.App, op context.Context, tenantID string) context.Context {
	t.Helper()
	tok, err := a.CreateToken(op, controlplane.TokenInput{Role: catalog.RoleTenant, TenantID: tenantID, Name: "client"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(context.Background(), tok.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return controlplane.WithPrincipal(context.Background(), p)
}

// TestView_Coalesced: N concurrent first update checks after a build of a
// 10,000-release tenant assemble the view once, and share it. The store
// holds the envelope read until every caller has asked for the head, so
// without coalescing every caller would assemble its own.
func TestView_Coalesced(t *testing.T) {
	const n = 16
	st := &herdStore{big: 10_000}
	a := newHerdApp(t, st, controlplane.Config{})
	op := operator()
	ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.BuildSnapshot(op, ten.TenantID); err != nil {
		t.Fatal(err)
	}
	tc := tenantCtx(t, a, op, ten.TenantID)

	hold := make(chan struct{})
	st.mu.Lock()
	st.holdSnap = hold
	st.mu.Unlock()
	heads0 := st.heads.Load()
	before := a.Stats()

	engines := make([]any, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e, err := a.UpdateEngine(tc)
			engines[i], errs[i] = e, err
		})
	}
	for st.heads.Load() < heads0+n {
		time.Sleep(time.Millisecond) // waits for the callers to arrive; asserts nothing about time
	}
	close(hold)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if engines[i] != engines[0] {
			t.Fatalf("caller %d got another engine: the view was copied or assembled twice", i)
		}
	}
	after := a.Stats()
	if got := after.ViewAssemblies - before.ViewAssemblies; got != 1 {
		t.Errorf("view assemblies = %d, want 1", got)
	}
	if got := after.SnapshotLoads - before.SnapshotLoads; got != 1 {
		t.Errorf("envelope loads = %d, want 1", got)
	}

	t.Run("cached view is reused", func(t *testing.T) {
		if _, err := a.UpdateEngine(tc); err != nil {
			t.Fatal(err)
		}
		if got := a.Stats().ViewAssemblies; got != after.ViewAssemblies {
			t.Errorf("view assemblies = %d, want %d", got, after.ViewAssemblies)
		}
	})
}

// startHeldBuild starts a build of tenantID that stops once the store
// committed its snapshot (its input gathered) until release is called.
func startHeldBuild(t *testing.T, a *controlplane.App, st *herdStore, op context.Context, tenantID string) (release func(), done <-chan error) {
	t.Helper()
	hold, building := make(chan struct{}), make(chan struct{}, 1)
	st.mu.Lock()
	st.holdBuild, st.building = hold, building
	st.mu.Unlock()
	ch := make(chan error, 1)
	go func() {
		_, err := a.BuildSnapshot(op, tenantID)
		ch <- err
	}()
	<-building
	st.mu.Lock()
	st.holdBuild, st.building = nil, nil
	st.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return release, ch
}

// TestBuild_FollowUpNotLost: a build requested while one runs joins one
// follow-up build, which sees a write made after the running build had
// gathered its input.
func TestBuild_FollowUpNotLost(t *testing.T) {
	st := &herdStore{}
	a := newHerdApp(t, st, controlplane.Config{})
	op := operator()
	ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := a.CreateProduct(op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	builds0 := a.Stats().Builds
	release, first := startHeldBuild(t, a, st, op, ten.TenantID)

	// Written after the running build gathered its input.
	rel, err := a.CreateRelease(op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	const joiners = 4
	snaps := make([]*catalog.Snapshot, joiners)
	errs := make([]error, joiners)
	var wg sync.WaitGroup
	for i := range joiners {
		wg.Go(func() { snaps[i], errs[i] = a.BuildSnapshot(op, ten.TenantID) })
	}
	for a.Stats().BuildsJoined < joiners {
		time.Sleep(time.Millisecond) // waits for the joiners to queue; asserts nothing about time
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range joiners {
		if errs[i] != nil {
			t.Fatalf("joiner %d: %v", i, errs[i])
		}
		if snaps[i].SnapshotID != snaps[0].SnapshotID {
			t.Fatalf("joiner %d got snapshot %d, joiner 0 got %d: want one follow-up", i, snaps[i].Sequence, snaps[0].Sequence)
		}
	}
	if got, want := snaps[0].Sequence, int64(2); got != want {
		t.Errorf("follow-up sequence = %d, want %d", got, want)
	}
	if got, want := a.Stats().Builds-builds0, int64(2); got != want {
		t.Errorf("builds run = %d, want %d (the held one and one follow-up)", got, want)
	}
	rels, err := a.ReleaseTenants(op, rel.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 {
		t.Errorf("the release written during the first build is in %d tenants' latest snapshot, want 1", len(rels))
	}
}

// TestGate_Busy: beyond MaxExpensive operations at once, a build and a
// view assembly are answered busy (unavailable, with Retry-After).
func TestGate_Busy(t *testing.T) {
	st := &herdStore{}
	a := newHerdApp(t, st, controlplane.Config{MaxExpensive: 1, RetryAfter: 3 * time.Second})
	op := operator()
	var tenants []string
	for _, name := range []string{"one", "two"} {
		ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, ten.TenantID)
	}
	if _, err := a.BuildSnapshot(op, tenants[1]); err != nil {
		t.Fatal(err)
	}
	tc := tenantCtx(t, a, op, tenants[1])
	release, first := startHeldBuild(t, a, st, op, tenants[0])

	check := func(t *testing.T, err error) {
		t.Helper()
		if got := catalog.ErrorCode(err); got != catalog.EUNAVAILABLE {
			t.Fatalf("code = %q (%v), want unavailable", got, err)
		}
		var be *controlplane.BusyError
		if !errors.As(err, &be) || be.RetryAfter() != 3*time.Second {
			t.Fatalf("err = %#v, want a BusyError with RetryAfter 3s", err)
		}
	}
	t.Run("another tenant's build", func(t *testing.T) {
		_, err := a.BuildSnapshot(op, tenants[1])
		check(t, err)
	})
	t.Run("a view assembly", func(t *testing.T) {
		_, err := a.UpdateEngine(tc)
		check(t, err)
	})
	if got := a.Stats().Busy; got != 2 {
		t.Errorf("busy answers = %d, want 2", got)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	t.Run("free again", func(t *testing.T) {
		if _, err := a.UpdateEngine(tc); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMirrorSnapshot_Coalesced: concurrent mirror GETs of a new snapshot
// share one load of the envelope and one copy of it.
func TestMirrorSnapshot_Coalesced(t *testing.T) {
	const n = 8
	st := &herdStore{big: 1000}
	a := newHerdApp(t, st, controlplane.Config{})
	op := operator()
	ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "big"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.CreateMirror(op, ten.TenantID, controlplane.MirrorInput{Name: "site", AllowedChannels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(context.Background(), m.Credential)
	if err != nil {
		t.Fatal(err)
	}
	mc := controlplane.WithPrincipal(context.Background(), p)
	if _, err := a.BuildSnapshot(op, ten.TenantID); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	st.mu.Lock()
	st.holdSnap = hold
	st.mu.Unlock()
	heads0, loads0 := st.heads.Load(), a.Stats().SnapshotLoads
	snaps := make([]*catalog.Snapshot, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { snaps[i], errs[i] = a.LatestSnapshot(mc, 0) })
	}
	for st.heads.Load() < heads0+n {
		time.Sleep(time.Millisecond) // waits for the callers to arrive; asserts nothing about time
	}
	close(hold)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if snaps[i] != snaps[0] {
			t.Fatalf("caller %d got its own copy of the envelope", i)
		}
	}
	if got := a.Stats().SnapshotLoads - loads0; got != 1 {
		t.Errorf("envelope loads = %d, want 1", got)
	}
}
