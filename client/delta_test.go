package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/snapshot"
)

// deltaFixture is a vendor whose signed snapshot also lists an older
// artifact (base, installed on the client) and a delta from it to the
// offered one, served by the test server at /v1/deltas/{id}/download.
type deltaFixture struct {
	v         *vendor
	s         *server
	base      []byte
	delta     []byte // what the server serves
	good      []byte // the signed delta
	deltaID   string
	hits      atomic.Int64
	installed string
}

func buildDelta(t *testing.T, base, target []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := delta.Build(context.Background(), &out,
		delta.Source{R: bytes.NewReader(base), Size: int64(len(base))},
		delta.Source{R: bytes.NewReader(target), Size: int64(len(target))}, delta.Options{}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func sumHex(b []byte) string { return hex.EncodeToString(sha256Sum(b)) }

// newDeltaFixture: signed is the delta the snapshot lists (nil: the good
// one from base to the payload).
func newDeltaFixture(t *testing.T, signed func(f *deltaFixture) []byte) *deltaFixture {
	t.Helper()
	v := newVendor(t, 256<<10)
	f := &deltaFixture{v: v, base: bytes.Clone(v.payload)}
	copy(f.base[5000:], "the installed version differs here")
	f.good = buildDelta(t, f.base, v.payload)
	sig := f.good
	if signed != nil {
		sig = signed(f)
	}
	f.delta = sig
	baseArt := catalog.NewID(catalog.PrefixArtifact)
	f.deltaID = catalog.NewID(catalog.PrefixDelta)
	m := v.clone(t)
	m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: baseArt, SHA256: sumHex(f.base), SizeBytes: int64(len(f.base)), SourceType: "MANAGED"})
	// The base is an older release's artifact: the metadata lists a
	// delta only between artifacts it lists.
	older := m.Releases[0]
	older.ReleaseID, older.Version = catalog.NewID(catalog.PrefixRelease), "1.1.0"
	older.Artifacts = []snapshot.ReleaseArtifact{{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ArtifactID: baseArt, Platform: "linux", Arch: "x64", InstallerType: "zip"}}
	m.Releases = append(m.Releases, older)
	m.Deltas = []snapshot.Delta{{
		DeltaID: f.deltaID, FromArtifactID: baseArt, ToArtifactID: m.Artifacts[0].ArtifactID,
		FromSHA256: sumHex(f.base), ToSHA256: m.Artifacts[0].SHA256, SHA256: sumHex(sig), SizeBytes: int64(len(sig)),
	}}
	v.m = m
	v.publish(t, m)
	f.s = newServer(t, v)
	d := v.decision()
	sd := m.Deltas[0]
	d.Delta = &DeltaOffer{DeltaID: sd.DeltaID, FromSHA256: sd.FromSHA256, ToSHA256: sd.ToSHA256, SHA256: sd.SHA256, SizeBytes: sd.SizeBytes, URL: "/v1/deltas/" + sd.DeltaID + "/download"}
	f.s.decision = d
	f.installed = filepath.Join(t.TempDir(), "installed.zip")
	if err := os.WriteFile(f.installed, f.base, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// serve mounts the delta route on the fixture's server.
func (f *deltaFixture) serve(body func() []byte) {
	mux := f.s.srv.Config.Handler.(*http.ServeMux)
	mux.HandleFunc("GET /v1/deltas/{id}/download", func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body()))
	})
}

func (f *deltaFixture) download(t *testing.T, installed string) (DeltaResult, string, error) {
	t.Helper()
	c := newTestClient(t, f.s, f.v)
	sum := ""
	if installed != "" {
		var err error
		if sum, err = InstalledFile(installed); err != nil {
			t.Fatal(err)
		}
	}
	d, err := c.Check(context.Background(), Query{Product: f.v.m.Products[0].ProductID, Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0", InstalledSHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "new.zip")
	res, err := c.DownloadFrom(context.Background(), d, dest, installed, nil)
	return res, dest, err
}

func TestDownloadFrom_Delta(t *testing.T) {
	t.Run("a signed delta rebuilds the artifact, transferring only the delta", func(t *testing.T) {
		f := newDeltaFixture(t, nil)
		f.serve(func() []byte { return f.delta })
		res, dest, err := f.download(t, f.installed)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dest)
		if !bytes.Equal(got, f.v.payload) || !res.Used || res.Transferred != int64(len(f.good)) {
			t.Fatalf("got used=%v transferred=%d fallback=%q (rebuilt ok: %v), want the delta's %d bytes",
				res.Used, res.Transferred, res.Fallback, bytes.Equal(got, f.v.payload), len(f.good))
		}
		if q := f.s.queries[0]; !bytes.Contains([]byte(q), []byte("installed_sha256="+sumHex(f.base))) {
			t.Errorf("check query %q does not name the installed sha256", q)
		}
		if _, err := os.Stat(dest + ".delta.part"); !os.IsNotExist(err) {
			t.Errorf("delta part left behind: %v", err)
		}
	})
	other := make([]byte, 256<<10)
	rand.Read(other)
	cases := []struct {
		name   string
		signed func(f *deltaFixture) []byte // the delta the snapshot lists
		served func(f *deltaFixture) []byte // what the server answers
		fetch  bool                         // the delta is fetched before the refusal
	}{
		{"corrupted delta", nil, func(f *deltaFixture) []byte {
			b := bytes.Clone(f.good)
			b[len(b)/2] ^= 0xff
			return b
		}, true},
		{"truncated delta", nil, func(f *deltaFixture) []byte { return f.good[:len(f.good)-10] }, true},
		{"signed delta for another artifact (does not rebuild the signed sha256)", func(f *deltaFixture) []byte {
			return buildDelta(t, f.base, other)
		}, func(f *deltaFixture) []byte { return f.delta }, true},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused and the full artifact fetched", func(t *testing.T) {
			f := newDeltaFixture(t, c.signed)
			f.serve(func() []byte { return c.served(f) })
			res, dest, err := f.download(t, f.installed)
			if err != nil {
				t.Fatalf("download: %v", err)
			}
			got, _ := os.ReadFile(dest)
			if res.Used || res.Fallback == "" || !bytes.Equal(got, f.v.payload) {
				t.Fatalf("got used=%v fallback=%q, full payload %v; want the full artifact after a refusal", res.Used, res.Fallback, bytes.Equal(got, f.v.payload))
			}
			if (f.hits.Load() > 0) != c.fetch {
				t.Errorf("delta fetched %d times", f.hits.Load())
			}
			if _, err := os.Stat(dest + ".delta.part"); !os.IsNotExist(err) {
				t.Errorf("delta part left behind: %v", err)
			}
		})
	}
	t.Run("a base the client lacks: the delta is never fetched", func(t *testing.T) {
		f := newDeltaFixture(t, nil)
		f.serve(func() []byte { return f.delta })
		wrong := filepath.Join(t.TempDir(), "other.zip")
		os.WriteFile(wrong, other, 0o600)
		// The server still offers the delta (a lying or stale answer).
		res, dest, err := f.download(t, wrong)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dest)
		if res.Used || f.hits.Load() != 0 || !bytes.Equal(got, f.v.payload) {
			t.Fatalf("used=%v, delta fetched %d times; want the full artifact only", res.Used, f.hits.Load())
		}
	})
	t.Run("a delta the snapshot does not sign is never fetched", func(t *testing.T) {
		f := newDeltaFixture(t, nil)
		f.serve(func() []byte { return f.delta })
		f.s.decision.Delta.DeltaID = catalog.NewID(catalog.PrefixDelta)
		res, _, err := f.download(t, f.installed)
		if err != nil || res.Used || f.hits.Load() != 0 {
			t.Fatalf("used=%v hits=%d err=%v; want the full artifact only", res.Used, f.hits.Load(), err)
		}
	})
}
