package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var snapshotCases = []testCase{
	{"Snapshots", testSnapshots},
	{"SnapshotInput", testSnapshotInput},
	{"SnapshotsConcurrent", testSnapshotsConcurrent},
	{"Mirrors", testMirrors},
}

// fakeBuild returns a builder that records the input in inspect (when
// non-nil) and makes a snapshot whose envelope names its sequence.
func fakeBuild(inspect func(in *catalog.SnapshotInput)) func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
	return func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		if inspect != nil {
			inspect(in)
		}
		id := catalog.NewID(catalog.PrefixSnapshot)
		env, _ := json.Marshal(map[string]any{"snapshot_id": id, "sequence": in.Sequence, "previous": in.Previous, "releases": len(in.Releases)})
		now := time.Now().UTC()
		return &catalog.Snapshot{SnapshotID: id, TenantID: in.Tenant.TenantID, Sequence: in.Sequence, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), Envelope: env}, nil
	}
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func testSnapshots(t *testing.T, f *fx) {
	tn := f.tenant()
	var s1 *catalog.Snapshot
	f.mutation("snapshot.created", tn.TenantID, func() (err error) {
		s1, err = f.s.CreateSnapshot(f.ctx, tn.TenantID, fakeBuild(func(in *catalog.SnapshotInput) {
			if in.Sequence != 1 || in.Previous != "" || in.Tenant.TenantID != tn.TenantID {
				t.Errorf("first input: sequence %d previous %q tenant %s, want 1, \"\", %s", in.Sequence, in.Previous, in.Tenant.TenantID, tn.TenantID)
			}
		}))
		return err
	})
	if s1.Hash != hashOf(s1.Envelope) {
		t.Fatalf("snapshot hash %s, want sha256 of the envelope %s", s1.Hash, hashOf(s1.Envelope))
	}
	s2, err := f.s.CreateSnapshot(f.ctx, tn.TenantID, fakeBuild(func(in *catalog.SnapshotInput) {
		if in.Sequence != 2 || in.Previous != s1.Hash {
			t.Errorf("second input: sequence %d previous %q, want 2 %q", in.Sequence, in.Previous, s1.Hash)
		}
	}))
	must(t, err)

	t.Run("read back verbatim", func(t *testing.T) {
		for name, get := range map[string]func() (*catalog.Snapshot, error){
			"Snapshot":           func() (*catalog.Snapshot, error) { return f.s.Snapshot(f.ctx, s1.SnapshotID) },
			"SnapshotBySequence": func() (*catalog.Snapshot, error) { return f.s.SnapshotBySequence(f.ctx, tn.TenantID, 1) },
		} {
			got, err := get()
			must(t, err)
			if got.SnapshotID != s1.SnapshotID || string(got.Envelope) != string(s1.Envelope) || got.Hash != s1.Hash || got.Sequence != 1 {
				t.Fatalf("%s = %+v (envelope %q), want %+v", name, got, got.Envelope, s1)
			}
		}
		latest, err := f.s.LatestSnapshot(f.ctx, tn.TenantID)
		must(t, err)
		if latest.SnapshotID != s2.SnapshotID || string(latest.Envelope) != string(s2.Envelope) {
			t.Fatalf("LatestSnapshot = %s, want %s", latest.SnapshotID, s2.SnapshotID)
		}
		head, err := f.s.LatestSnapshotHead(f.ctx, tn.TenantID)
		must(t, err)
		if head.SnapshotID != s2.SnapshotID || head.Sequence != 2 || head.Hash != s2.Hash || head.Envelope != nil {
			t.Fatalf("LatestSnapshotHead = %+v (%d envelope bytes), want %s without its envelope", head, len(head.Envelope), s2.SnapshotID)
		}
		_, err = f.s.SnapshotBySequence(f.ctx, tn.TenantID, 3)
		wantCode(t, err, catalog.ENOTFOUND)
	})
	t.Run("tenants have their own sequences", func(t *testing.T) {
		other := f.tenant()
		_, err := f.s.LatestSnapshot(f.ctx, other.TenantID)
		wantCode(t, err, catalog.ENOTFOUND)
		_, err = f.s.LatestSnapshotHead(f.ctx, other.TenantID)
		wantCode(t, err, catalog.ENOTFOUND)
		s, err := f.s.CreateSnapshot(f.ctx, other.TenantID, fakeBuild(nil))
		must(t, err)
		if s.Sequence != 1 {
			t.Fatalf("other tenant's first sequence = %d", s.Sequence)
		}
		latest, err := f.s.LatestSnapshot(f.ctx, tn.TenantID)
		must(t, err)
		if latest.SnapshotID != s2.SnapshotID {
			t.Fatalf("LatestSnapshot of the first tenant moved to %s", latest.SnapshotID)
		}
	})
	t.Run("bad builds store nothing", func(t *testing.T) {
		boom := errors.New("signing key missing")
		cases := []struct {
			name  string
			build func(in *catalog.SnapshotInput) (*catalog.Snapshot, error)
			code  string
		}{
			{"build error", func(*catalog.SnapshotInput) (*catalog.Snapshot, error) { return nil, boom }, catalog.EINTERNAL},
			{"wrong sequence", func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
				s, _ := fakeBuild(nil)(in)
				s.Sequence++
				return s, nil
			}, catalog.EINTERNAL},
			{"wrong tenant", func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
				s, _ := fakeBuild(nil)(in)
				s.TenantID = "ten_other"
				return s, nil
			}, catalog.EINTERNAL},
			{"wrong hash", func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
				s, _ := fakeBuild(nil)(in)
				s.Hash = strings.Repeat("0", 64)
				return s, nil
			}, catalog.EINTERNAL},
			{"reused id", func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
				s, _ := fakeBuild(nil)(in)
				s.SnapshotID = s1.SnapshotID
				return s, nil
			}, catalog.ECONFLICT},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(tc.code, func() error { _, err := f.s.CreateSnapshot(f.ctx, tn.TenantID, tc.build); return err })
				latest, err := f.s.LatestSnapshot(f.ctx, tn.TenantID)
				must(t, err)
				if latest.SnapshotID != s2.SnapshotID {
					t.Fatalf("a failed build left snapshot %s behind", latest.SnapshotID)
				}
			})
		}
		_, err := f.s.CreateSnapshot(f.ctx, tn.TenantID, func(*catalog.SnapshotInput) (*catalog.Snapshot, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("build error %v is not passed through", err)
		}
	})
	t.Run("deleted tenant", func(t *testing.T) {
		gone := f.tenant()
		_, err := f.s.UpdateTenant(f.ctx, gone.TenantID, func(x *catalog.Tenant) error { x.Status = catalog.TenantDeleted; return nil })
		must(t, err)
		f.refused(catalog.ECONFLICT, func() error { _, err := f.s.CreateSnapshot(f.ctx, gone.TenantID, fakeBuild(nil)); return err })
	})
	t.Run("list has no envelopes", func(t *testing.T) {
		list, _, err := f.s.Snapshots(f.ctx, tn.TenantID, store.Page{})
		must(t, err)
		if len(list) != 2 || list[0].SnapshotID != s1.SnapshotID || list[1].Hash != s2.Hash {
			t.Fatalf("Snapshots = %+v", list)
		}
	})
}

// testSnapshotInput checks what CreateSnapshot gathers.
func testSnapshotInput(t *testing.T, f *fx) {
	tn, other := f.tenant(), f.tenant()
	p, p2 := f.product(catalog.DistributionLicensed), f.product(catalog.DistributionOpen)
	r1 := f.release(p.ProductID, "stable", "1.0.0")
	r2 := f.release(p2.ProductID, "stable", "2.0.0")
	a1, a2 := f.artifact(catalog.ArtifactVerified), f.artifact(catalog.ArtifactVerified)
	unattached := f.artifact(catalog.ArtifactVerified)
	ra1 := f.attach(r1.ReleaseID, a1.ArtifactID, "linux")
	ra2 := f.attach(r2.ReleaseID, a2.ArtifactID, "windows")
	ra3 := f.attach(r2.ReleaseID, a1.ArtifactID, "linux")
	_, err := f.s.RevokeRelease(f.ctx, r1.ReleaseID, f.now)
	must(t, err)

	pol := &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: tn.TenantID, ProductID: p.ProductID, Channel: "stable", Action: catalog.ActionNotify}
	must(t, f.s.CreatePolicy(f.ctx, pol))
	_, err = f.s.UpdatePolicy(f.ctx, pol.PolicyID, func(x *catalog.Policy) error { x.Action = catalog.ActionInstall; return nil })
	must(t, err)
	must(t, f.s.CreatePolicy(f.ctx, &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: other.TenantID, ProductID: p.ProductID, Channel: "stable", Action: catalog.ActionNone}))
	blk := &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID, BlockedVersion: "1.0.0"}
	must(t, f.s.CreateBlockedVersion(f.ctx, blk))
	must(t, f.s.CreateBlockedVersion(f.ctx, &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: other.TenantID, ProductID: p.ProductID, BlockedVersion: "1.0.0"}))
	ro := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: p2.ProductID, Channel: "stable", ReleaseID: r2.ReleaseID, Percentage: 20}
	must(t, f.s.CreateRollout(f.ctx, ro))
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(3, catalog.SeatsExplicit))
	ent2 := f.entitlement(tn.TenantID, p2.ProductID, entPolicy(3, catalog.SeatsExplicit))
	f.entitlement(other.TenantID, p.ProductID, entPolicy(3, ""))
	// Seats of two entitlements, interleaved so that only a sort gives id order.
	var seatIDs []string
	for i := range 4 {
		e := ent
		if i%2 == 1 {
			e = ent2
		}
		st := f.seat(e.EntitlementID, fmt.Sprint("u", i))
		must(t, f.s.AssignSeat(f.ctx, st))
		seatIDs = append(seatIDs, st.SeatAssignmentID)
	}
	m := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, Name: "site", AllowedChannels: []string{"stable"}, PublicKey: "cHVi", CredentialHash: randHash()}
	must(t, f.s.CreateMirror(f.ctx, m))
	must(t, f.s.CreateMirror(f.ctx, &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: other.TenantID, Name: "x"}))

	var in *catalog.SnapshotInput
	_, err = f.s.CreateSnapshot(f.ctx, tn.TenantID, fakeBuild(func(x *catalog.SnapshotInput) { in = x }))
	must(t, err)

	ids := func(n int, id func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	equalIDs(t, "products", ids(len(in.Products), func(i int) string { return in.Products[i].ProductID }), []string{p.ProductID, p2.ProductID})
	equalIDs(t, "releases", ids(len(in.Releases), func(i int) string { return in.Releases[i].ReleaseID }), []string{r1.ReleaseID, r2.ReleaseID})
	if in.Releases[0].Status != catalog.ReleaseRevoked {
		t.Fatalf("revoked release has status %s in the input", in.Releases[0].Status)
	}
	equalIDs(t, "release artifacts", ids(len(in.ReleaseArtifacts), func(i int) string { return in.ReleaseArtifacts[i].ReleaseArtifactID }), []string{ra1.ReleaseArtifactID, ra2.ReleaseArtifactID, ra3.ReleaseArtifactID})
	equalIDs(t, "artifacts", ids(len(in.Artifacts), func(i int) string { return in.Artifacts[i].ArtifactID }), []string{a1.ArtifactID, a2.ArtifactID})
	_ = unattached
	equalIDs(t, "policies", ids(len(in.Policies), func(i int) string { return in.Policies[i].PolicyID }), []string{pol.PolicyID})
	if in.Policies[0].Version != 2 || in.Policies[0].Action != catalog.ActionInstall {
		t.Fatalf("policy in input is v%d %s, want the latest v2 INSTALL", in.Policies[0].Version, in.Policies[0].Action)
	}
	equalIDs(t, "blocked", ids(len(in.BlockedVersions), func(i int) string { return in.BlockedVersions[i].BlocklistID }), []string{blk.BlocklistID})
	equalIDs(t, "rollouts", ids(len(in.Rollouts), func(i int) string { return in.Rollouts[i].RolloutID }), []string{ro.RolloutID})
	equalIDs(t, "entitlements", ids(len(in.Entitlements), func(i int) string { return in.Entitlements[i].EntitlementID }), []string{ent.EntitlementID, ent2.EntitlementID})
	slices.Sort(seatIDs)
	equalIDs(t, "seats", ids(len(in.SeatAssignments), func(i int) string { return in.SeatAssignments[i].SeatAssignmentID }), seatIDs)
	equalIDs(t, "mirrors", ids(len(in.Mirrors), func(i int) string { return in.Mirrors[i].MirrorID }), []string{m.MirrorID})
	if in.Mirrors[0].PublicKey != "cHVi" {
		t.Fatalf("mirror public key %q not gathered", in.Mirrors[0].PublicKey)
	}
	// A builder that scribbles on its input must not change the next one.
	in.Releases[1].Status = "SCRIBBLED"
	in.Products[0].Name = "SCRIBBLED"

	t.Run("next build sees every change", func(t *testing.T) {
		// One change to each vendor-wide kind, as an implementation that
		// caches between builds must notice.
		p3 := f.product(catalog.DistributionOpen)
		r3 := f.release(p3.ProductID, "stable", "3.0.0")
		a3 := f.artifact(catalog.ArtifactPending)
		_, err := f.s.SetArtifactStatus(f.ctx, a3.ArtifactID, catalog.ArtifactVerified, &f.now)
		must(t, err)
		ra4 := f.attach(r3.ReleaseID, a3.ArtifactID, "macos")
		_, err = f.s.RevokeRelease(f.ctx, r2.ReleaseID, f.now)
		must(t, err)
		_, err = f.s.UpdateRollout(f.ctx, ro.RolloutID, func(x *catalog.Rollout) error { x.Percentage = 60; return nil })
		must(t, err)
		_, err = f.s.SetArtifactStatus(f.ctx, a2.ArtifactID, catalog.ArtifactFailed, &f.now)
		must(t, err)
		ro2 := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: p3.ProductID, Channel: "stable", ReleaseID: r3.ReleaseID, Percentage: 1}
		must(t, f.s.CreateRollout(f.ctx, ro2))

		var next *catalog.SnapshotInput
		_, err = f.s.CreateSnapshot(f.ctx, tn.TenantID, fakeBuild(func(x *catalog.SnapshotInput) { next = x }))
		must(t, err)
		equalIDs(t, "products", ids(len(next.Products), func(i int) string { return next.Products[i].ProductID }), []string{p.ProductID, p2.ProductID, p3.ProductID})
		if next.Products[0].Name == "SCRIBBLED" {
			t.Fatal("a builder's change to its input reached the next build")
		}
		equalIDs(t, "releases", ids(len(next.Releases), func(i int) string { return next.Releases[i].ReleaseID }), []string{r1.ReleaseID, r2.ReleaseID, r3.ReleaseID})
		if next.Releases[1].Status != catalog.ReleaseRevoked {
			t.Fatalf("release revoked between builds has status %s", next.Releases[1].Status)
		}
		equalIDs(t, "release artifacts", ids(len(next.ReleaseArtifacts), func(i int) string { return next.ReleaseArtifacts[i].ReleaseArtifactID }),
			[]string{ra1.ReleaseArtifactID, ra2.ReleaseArtifactID, ra3.ReleaseArtifactID, ra4.ReleaseArtifactID})
		equalIDs(t, "artifacts", ids(len(next.Artifacts), func(i int) string { return next.Artifacts[i].ArtifactID }), []string{a1.ArtifactID, a2.ArtifactID, a3.ArtifactID})
		if next.Artifacts[1].Status != catalog.ArtifactFailed || next.Artifacts[2].Status != catalog.ArtifactVerified {
			t.Fatalf("artifact statuses %s, %s; want FAILED, VERIFIED", next.Artifacts[1].Status, next.Artifacts[2].Status)
		}
		equalIDs(t, "rollouts", ids(len(next.Rollouts), func(i int) string { return next.Rollouts[i].RolloutID }), []string{ro.RolloutID, ro2.RolloutID})
		if next.Rollouts[0].Percentage != 60 {
			t.Fatalf("rollout percentage %v, want 60", next.Rollouts[0].Percentage)
		}
	})
}

func testSnapshotsConcurrent(t *testing.T, f *fx) {
	tn := f.tenant()
	const n = 4
	var wg sync.WaitGroup
	got := make([]*catalog.Snapshot, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = f.s.CreateSnapshot(f.ctx, tn.TenantID, fakeBuild(nil)) })
	}
	wg.Wait()
	seqs := map[int64]string{}
	for i := range n {
		must(t, errs[i])
		if prev, dup := seqs[got[i].Sequence]; dup {
			t.Fatalf("snapshots %s and %s share sequence %d", prev, got[i].SnapshotID, got[i].Sequence)
		}
		seqs[got[i].Sequence] = got[i].SnapshotID
	}
	// The chain holds: each previous is the hash of the one before.
	prevHash := ""
	for seq := int64(1); seq <= n; seq++ {
		s, err := f.s.SnapshotBySequence(f.ctx, tn.TenantID, seq)
		must(t, err)
		var env struct {
			Previous string `json:"previous"`
		}
		must(t, json.Unmarshal(s.Envelope, &env))
		if env.Previous != prevHash {
			t.Fatalf("snapshot %d was built with previous %q, want %q", seq, env.Previous, prevHash)
		}
		prevHash = s.Hash
	}
}

func testMirrors(t *testing.T, f *fx) {
	tn := f.tenant()
	cred := randHash()
	m := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, Name: "plant", VendorURL: "https://vendor.example", AllowedChannels: []string{"stable"}, CredentialHash: cred, CredentialEnc: []byte{1, 2, 3}}
	f.mutation("mirror.created", tn.TenantID, func() error { return f.s.CreateMirror(f.ctx, m) })
	t.Run("payload has no credential", func(t *testing.T) {
		for _, ev := range f.eventsAfter(0) {
			if strings.Contains(string(ev.Payload), cred) {
				t.Fatalf("%s payload carries the credential hash", ev.EventType)
			}
		}
	})
	for name, get := range map[string]func() (*catalog.Mirror, error){
		"Mirror":                 func() (*catalog.Mirror, error) { return f.s.Mirror(f.ctx, m.MirrorID) },
		"MirrorByCredentialHash": func() (*catalog.Mirror, error) { return f.s.MirrorByCredentialHash(f.ctx, cred) },
	} {
		got, err := get()
		must(t, err)
		if got.MirrorID != m.MirrorID || got.Status != catalog.MirrorActive || got.CredentialHash != cred || string(got.CredentialEnc) != "\x01\x02\x03" || !slices.Equal(got.AllowedChannels, []string{"stable"}) {
			t.Fatalf("%s = %+v", name, got)
		}
	}
	f.refused(catalog.ECONFLICT, func() error {
		return f.s.CreateMirror(f.ctx, &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, CredentialHash: cred})
	})
	f.refused(catalog.ENOTFOUND, func() error {
		return f.s.CreateMirror(f.ctx, &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: "ten_nope"})
	})
	f.refused(catalog.EINVALID, func() error {
		return f.s.CreateMirror(f.ctx, &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, AllowedChannels: []string{"NOT A CHANNEL"}})
	})

	t.Run("update", func(t *testing.T) {
		newCred := randHash()
		sync := f.now.Add(time.Minute)
		var got *catalog.Mirror
		f.mutation("mirror.updated", tn.TenantID, func() (err error) {
			got, err = f.s.UpdateMirror(f.ctx, m.MirrorID, func(x *catalog.Mirror) error {
				x.Status, x.LastSyncAt, x.LastSnapshotID = catalog.MirrorError, &sync, "snp_x"
				x.AllowedChannels = []string{"stable", "beta"}
				x.PublicKey = "a2V5"
				x.CredentialHash = newCred
				return nil
			})
			return err
		})
		if got.Status != catalog.MirrorError || got.LastSyncAt == nil || !got.LastSyncAt.Equal(sync) || got.LastSnapshotID != "snp_x" || len(got.AllowedChannels) != 2 || got.PublicKey != "a2V5" {
			t.Fatalf("UpdateMirror = %+v", got)
		}
		_, err := f.s.MirrorByCredentialHash(f.ctx, cred)
		wantCode(t, err, catalog.ENOTFOUND)
		byNew, err := f.s.MirrorByCredentialHash(f.ctx, newCred)
		must(t, err)
		if byNew.MirrorID != m.MirrorID {
			t.Fatalf("new credential finds %s", byNew.MirrorID)
		}
	})
	t.Run("update refused", func(t *testing.T) {
		other := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, CredentialHash: randHash()}
		must(t, f.s.CreateMirror(f.ctx, other))
		cases := []struct {
			name string
			fn   func(*catalog.Mirror) error
			code string
		}{
			{"mirror_id", func(x *catalog.Mirror) error { x.MirrorID = "mir_x"; return nil }, catalog.EINVALID},
			{"tenant_id", func(x *catalog.Mirror) error { x.TenantID = "ten_x"; return nil }, catalog.EINVALID},
			{"created_at", func(x *catalog.Mirror) error { x.CreatedAt = time.Time{}; return nil }, catalog.EINVALID},
			{"status", func(x *catalog.Mirror) error { x.Status = "asleep"; return nil }, catalog.EINVALID},
			{"credential of another mirror", func(x *catalog.Mirror) error { x.CredentialHash = other.CredentialHash; return nil }, catalog.ECONFLICT},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(tc.code, func() error { _, err := f.s.UpdateMirror(f.ctx, m.MirrorID, tc.fn); return err })
			})
		}
		byOther, err := f.s.MirrorByCredentialHash(f.ctx, other.CredentialHash)
		must(t, err)
		if byOther.MirrorID != other.MirrorID {
			t.Fatalf("refused update moved another mirror's credential to %s", byOther.MirrorID)
		}
	})
}
