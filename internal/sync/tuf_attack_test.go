package sync_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// restart closes the mirror's state and opens it again with a new
// syncer: everything the mirror trusts now comes from mirror.db.
func (r *tufRig) restart(t *testing.T, src sync.Source) {
	t.Helper()
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.st, err = state.Open(filepath.Join(r.dir, "mirror.db"), 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	r.s = r.syncer(src)
}

func (r *tufRig) upstream(t *testing.T) sync.Source {
	t.Helper()
	src, err := sync.NewUpstream(r.srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// release publishes one more release (with its artifact) and rebuilds.
func (r *tufRig) release(t *testing.T, n int) []tuf.File {
	t.Helper()
	r.v.Now = r.v.Now.Add(time.Second)
	_, data := tuftest.AddRelease(r.m, n%2, n, "9.0."+string(rune('0'+n)))
	files := r.v.Build(r.m)
	r.v.PublishArtifacts(r.m, map[string][]byte{r.m.Artifacts[len(r.m.Artifacts)-1].SHA256: data})
	return files
}

// mustSync syncs and fails the test on error.
func (r *tufRig) mustSync(t *testing.T) {
	t.Helper()
	if _, err := r.s.Once(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// refused syncs, expecting an error containing want, and checks that
// the held version and the served timestamp did not move.
func (r *tufRig) refused(t *testing.T, want string) error {
	t.Helper()
	seq, served := heldSeqOf(t, r.st), r.served(t)
	_, err := r.s.Once(context.Background())
	if err == nil {
		t.Fatal("sync accepted the attack")
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("refused for another reason: %v (want %q)", err, want)
	}
	if heldSeqOf(t, r.st) != seq || !bytes.Equal(r.served(t), served) {
		t.Error("the refused sync changed the held version or the served timestamp")
	}
	return err
}

func fileWith(files []tuf.File, part string) tuf.File {
	for _, f := range files {
		if strings.Contains(f.Path, part) {
			return f
		}
	}
	return tuf.File{}
}

// TestTUFSync_Attacks mounts the attacks of docs/metadata.md against a
// mirror in TUF mode (a real Syncer over mirror.db and the cache, the
// repository served by tufhttp as an upstream source).
func TestTUFSync_Attacks(t *testing.T) {
	t.Run("rollback across a restart", func(t *testing.T) {
		r := newTUFRig(t, false)
		old := r.v.Repo.Get("metadata/timestamp.json")
		r.mustSync(t)
		r.release(t, 1)
		r.mustSync(t)
		r.restart(t, r.upstream(t))
		r.v.Repo.Set("metadata/timestamp.json", old)
		r.refused(t, "timestamp")
	})

	t.Run("freeze: expired timestamp and nothing newer", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.mustSync(t)
		r.skew.Store(int64(48 * time.Hour)) // the default timestamp lives 24 h
		err := r.refused(t, "expired")
		if !errors.Is(err, tuf.ErrExpired) {
			t.Errorf("got %v, want ErrExpired", err)
		}
		// After a restart too (the idle check is not what refuses).
		r.restart(t, r.upstream(t))
		r.refused(t, "expired")
		// A fresh timestamp ends the freeze.
		r.v.Now = r.v.Now.Add(48 * time.Hour)
		r.v.Refresh()
		r.mustSync(t)
		if !bytes.Equal(r.served(t), r.v.Repo.Get("metadata/timestamp.json")) {
			t.Error("the fresh timestamp is not served")
		}
	})

	t.Run("mix-and-match: an old product role under the new version", func(t *testing.T) {
		r := newTUFRig(t, false)
		before := map[string][]byte{}
		for _, p := range r.v.Repo.Paths() {
			before[p] = r.v.Repo.Get(p)
		}
		r.mustSync(t)
		files := r.release(t, 1)
		newRole := fileWith(files, ".p-")
		var oldData []byte
		for p, d := range before {
			if newRole.Path != "" && strings.HasSuffix(p, ".p-"+strings.SplitN(newRole.Path, ".p-", 2)[1]) {
				oldData = d
			}
		}
		if oldData == nil {
			t.Fatal("no product role in the builds")
		}
		r.v.Repo.Set(newRole.Path, oldData)
		r.refused(t, "p-")
		r.v.Repo.Set(newRole.Path, newRole.Data)
		r.mustSync(t)
	})

	t.Run("endless data", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.mustSync(t)
		ts := r.v.Repo.Get("metadata/timestamp.json")
		r.v.Repo.Set("metadata/timestamp.json", append(bytes.Clone(ts), bytes.Repeat([]byte(" "), 1<<20)...))
		r.refused(t, "bytes")
		r.v.Repo.Set("metadata/timestamp.json", ts)
		files := r.release(t, 1)
		snap := fileWith(files, ".snapshot.json")
		r.v.Repo.Set(snap.Path, append(bytes.Clone(snap.Data), bytes.Repeat([]byte(" "), 1<<20)...))
		r.refused(t, "bytes")
		r.v.Repo.Set(snap.Path, snap.Data)
		r.mustSync(t)
	})

	t.Run("wrong tenant's root", func(t *testing.T) {
		r := newTUFRig(t, false)
		other := tuftest.NewVendor(t, "ten_other", 100)
		s := sync.New(r.upstream(t), r.st, r.cache, sync.Config{TUF: &sync.TUFTrust{TenantID: r.v.TenantID, Root: other.RootData}})
		if _, err := s.Once(context.Background()); err == nil || !strings.Contains(err.Error(), "tenant") {
			t.Fatalf("got %v, want the other tenant's root refused", err)
		}
		if h, _ := r.st.Current(); h != nil {
			t.Error("something was held")
		}
	})

	t.Run("another tenant's repository from the source", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.mustSync(t)
		other := tuftest.NewVendor(t, "ten_other", 100)
		om := tuftest.View(1, 1, 1)
		om.TenantID, om.Tenant.TenantID = other.TenantID, other.TenantID
		other.Build(om)
		for _, p := range other.Repo.Paths() {
			if p != "metadata/1.root.json" {
				r.v.Repo.Set(p, other.Repo.Get(p))
			}
		}
		r.refused(t, "timestamp")
	})

	t.Run("a tampered copy does not block the next genuine update", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.mustSync(t)
		// A valid timestamp with an extra signature by an unknown key:
		// the same signed content, accepted as such.
		rogue := tuftest.Signer(t, 200)
		r.v.Repo.Set("metadata/timestamp.json", tuftest.Resign[metadata.TimestampType](t, r.v, "metadata/timestamp.json",
			func(*metadata.Metadata[metadata.TimestampType]) {}, r.v.TS, rogue))
		r.mustSync(t)
		// A snapshot copy with unsigned bytes changed: refused by hash.
		files := r.release(t, 1)
		snap := fileWith(files, ".snapshot.json")
		// Same length, one unsigned byte changed (in the signature).
		tampered := bytes.Clone(snap.Data)
		i := bytes.Index(tampered, []byte(`"sig":"`)) + len(`"sig":"`)
		tampered[i] ^= 1
		r.v.Repo.Set(snap.Path, tampered)
		r.refused(t, "snapshot")
		// The vendor's next genuine version goes through.
		r.release(t, 2)
		r.mustSync(t)
		if _, want, _ := r.v.State.Versions(); heldSeqOf(t, r.st) != want {
			t.Errorf("held v%d, want the genuine v%d", heldSeqOf(t, r.st), want)
		}
	})

	t.Run("fast-forward recovery after an online key rotation", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.mustSync(t)
		// The compromised timestamp key pushes the mirror to v1000.
		r.v.Repo.Set("metadata/timestamp.json", tuftest.Resign[metadata.TimestampType](t, r.v, "metadata/timestamp.json",
			func(m *metadata.Metadata[metadata.TimestampType]) { m.Signed.Version = 1000 }, r.v.TS))
		r.mustSync(t)
		// The vendor rotates it out through the root; the next genuine
		// timestamp has a far lower version.
		r.v.Now = r.v.Now.Add(time.Second)
		r.v.RotateTimestampKey(201)
		r.v.Refresh()
		r.mustSync(t)
		if !bytes.Equal(r.served(t), r.v.Repo.Get("metadata/timestamp.json")) {
			t.Error("the genuine timestamp after the rotation is not served")
		}
		r.release(t, 1)
		r.mustSync(t)
	})

	t.Run("two root rotations while offline, one sync catches up", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.mustSync(t)
		r.v.RotateRootKey(0, 210)
		r.v.RotateRootKey(1, 211)
		r.v.RotateTimestampKey(212)
		r.release(t, 1)
		r.restart(t, r.upstream(t))
		res, err := r.s.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed {
			t.Error("the release after the rotations was not committed")
		}
		if _, err := r.st.TUFMetadata("4.root.json"); err != nil {
			t.Errorf("root v4 not held: %v", err)
		}
	})
}
