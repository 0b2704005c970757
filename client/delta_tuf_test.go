package client

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
	"github.com/outpost/outpost/internal/update"
)

// TestDownloadFrom_DeltaTUF: with WithTUF the delta must be listed in the
// verified product document; one that is not is never fetched.
func TestDownloadFrom_DeltaTUF(t *testing.T) {
	for _, signed := range []bool{true, false} {
		name := "a delta listed in the verified product document is used"
		if !signed {
			name = "a delta the TUF metadata does not list is never fetched"
		}
		t.Run(name, func(t *testing.T) {
			v := tuftest.NewVendor(t, "", 0)
			m := tuftest.View(1, 2, 1)
			m.Products[0].Distribution = "open"
			blobs := tuftest.WithBytes(m)
			base := m.Artifacts[0]
			baseData := blobs[base.SHA256]
			target := append(bytes.Clone(baseData), " and the new version's tail"...)
			rel, _ := tuftest.AddRelease(m, 0, 1, "9.0.1")
			to := &m.Artifacts[len(m.Artifacts)-1]
			to.SHA256, to.SizeBytes = sumHex(target), int64(len(target))
			blobs[to.SHA256] = target
			var dl bytes.Buffer
			dl.Write(buildDelta(t, baseData, target))
			d := snapshot.Delta{DeltaID: "dlt_tuf", FromArtifactID: base.ArtifactID, ToArtifactID: to.ArtifactID,
				FromSHA256: base.SHA256, ToSHA256: to.SHA256, SHA256: sumHex(dl.Bytes()), SizeBytes: int64(dl.Len())}
			if signed {
				m.Deltas = []snapshot.Delta{d}
			}
			v.Build(m)
			v.PublishArtifacts(m, blobs)
			// The answer offers the delta either way (a lying server when
			// the metadata does not list it).
			offered := *m
			offered.Deltas = []snapshot.Delta{d}
			eng, err := update.New(&offered)
			if err != nil {
				t.Fatal(err)
			}
			var hits atomic.Int64
			mux := http.NewServeMux()
			mux.Handle("/tuf/", tufhttp.New(v.Repo, tufhttp.Options{Prefix: "/tuf/"}))
			mux.HandleFunc("GET /v1/updates/check", func(w http.ResponseWriter, r *http.Request) { update.Handle(w, r, eng, time.Now()) })
			mux.HandleFunc("GET /v1/deltas/{id}/download", func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(dl.Bytes()))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()

			c, err := New(srv.URL, WithTUF(v.TenantID, v.RootData, t.TempDir()), WithRetries(0, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			installed := filepath.Join(t.TempDir(), "installed")
			os.WriteFile(installed, baseData, 0o600)
			dec, err := c.Check(context.Background(), Query{Product: m.Products[0].ProductID, Channel: "stable", Platform: "linux", Arch: "x64",
				InstallerType: "tar.gz", Version: "9.0.0", InstalledSHA256: base.SHA256})
			if err != nil {
				t.Fatal(err)
			}
			if dec.Delta == nil || dec.Release.ReleaseID != rel.ReleaseID {
				t.Fatalf("decision %+v offers no delta", dec)
			}
			dest := filepath.Join(t.TempDir(), "new")
			res, err := c.DownloadFrom(context.Background(), dec, dest, installed, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dest)
			if !bytes.Equal(got, target) || res.Used != signed || (hits.Load() > 0) != signed {
				t.Fatalf("used %v, delta fetched %d times, rebuilt ok %v (fallback %q); want used=%v", res.Used, hits.Load(), bytes.Equal(got, target), res.Fallback, signed)
			}
		})
	}
}
