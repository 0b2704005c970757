package mirror_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// TestServer_Deltas: a synced signed delta is served to clients (behind
// the client tokens, with Range), one the cache lacks or the snapshot
// does not list is not_found.
func TestServer_Deltas(t *testing.T) {
	r := newRig(t)
	base := synctest.Random(256 << 10)
	target := bytes.Clone(base)
	copy(target[1000:], "new version")
	var dl bytes.Buffer
	if _, err := delta.Build(context.Background(), &dl, delta.Source{R: bytes.NewReader(base), Size: int64(len(base))},
		delta.Source{R: bytes.NewReader(target), Size: int64(len(target))}, delta.Options{}); err != nil {
		t.Fatal(err)
	}
	arts := []synctest.Art{{ID: "art_1", Data: base}, {ID: "art_2", Data: target}}
	m := r.v.Manifest(1, arts)
	m.Deltas = []snapshot.Delta{
		{DeltaID: "dlt_1", FromArtifactID: "art_1", ToArtifactID: "art_2", FromSHA256: synctest.SHA(base), ToSHA256: synctest.SHA(target), SHA256: synctest.SHA(dl.Bytes()), SizeBytes: int64(dl.Len())},
		// Listed but never served by the control plane: not cached.
		{DeltaID: "dlt_2", FromArtifactID: "art_2", ToArtifactID: "art_1", FromSHA256: synctest.SHA(target), ToSHA256: synctest.SHA(base), SHA256: synctest.SHA([]byte("x")), SizeBytes: 1},
	}
	r.v.AddBlob(dl.Bytes())
	r.cp.AddDelta("dlt_1", dl.Bytes())
	r.v.Publish(m)
	if _, err := r.s.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv, hs := r.server(t, mirror.Options{ServeExpired: true, ClientTokens: []string{"ct_secret"}})
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer ct_secret"}
	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		body   []byte
	}{
		{"served", "/v1/deltas/dlt_1/download", auth, 200, dl.Bytes()},
		{"range", "/v1/deltas/dlt_1/download", map[string]string{"Authorization": "Bearer ct_secret", "Range": "bytes=0-9"}, 206, dl.Bytes()[:10]},
		{"no token", "/v1/deltas/dlt_1/download", nil, 401, nil},
		{"listed, not cached", "/v1/deltas/dlt_2/download", auth, 404, nil},
		{"not listed", "/v1/deltas/dlt_9/download", auth, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, hs.URL+tt.path, tt.hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Errorf("body: got %d bytes, want %d", len(body), len(tt.body))
			}
		})
	}
}
