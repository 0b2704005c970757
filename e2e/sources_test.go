package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/testenv"
)

// TestE2E_SyncSources runs one mirror per source: the control plane over
// HTTP, a customer-side S3 bucket filled by "replication" (the test
// uploads the tenant's TUF repository files in the documented layout),
// and an upstream mirror chained behind the first. All three must serve
// the control plane's timestamp bytes and the same artifacts, before and
// after a revocation.
func TestE2E_SyncSources(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	files := t.TempDir()

	tenant := cp.cli("tenant", "create", "Initech")
	product := cp.cli("product", "create", "Widget", "--distribution", "open")
	fileA, sumA := randomFile(t, files, "widget-1.0.0.tar.gz", 400<<10)
	fileB, sumB := randomFile(t, files, "widget-2.0.0.tar.gz", 600<<10)
	_, artA := cp.release(product, "1.0.0", fileA)
	relB, artB := cp.release(product, "2.0.0", fileB)
	_, seq1 := cp.snapshot(tenant)

	root := cp.rootFile(tenant)
	direct := newMirror(t, tl, "direct", mirrorConfig{tenant: tenant, root: root, source: "none"})
	_, cred := cp.registerMirror(tenant, "hq", direct.publicKey)
	direct.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})
	direct.serve()

	bucketCfg := testenv.S3(t)
	const prefix = "outpost/"
	bucket, err := s3.New(context.Background(), bucketCfg)
	if err != nil {
		t.Fatal(err)
	}
	replicate(t, bucket, prefix, cp.exportBundle(tenant, 0))
	fromBucket := newMirror(t, tl, "bucket", mirrorConfig{tenant: tenant, root: root, source: "s3", s3: &bucketCfg, s3Prefix: prefix})
	fromBucket.serve()

	chained := newMirror(t, tl, "chained", mirrorConfig{tenant: tenant, root: root, source: "upstream", upstream: direct.url})
	chained.serve()

	mirrors := []*mirrorDaemon{direct, fromBucket, chained}
	for _, m := range mirrors {
		m.waitSequence(seq1)
	}
	t.Run("snapshot 1 is served identically by every source", func(t *testing.T) {
		sameSnapshot(t, mirrors, cp.timestamp(tenant))
		for _, m := range mirrors {
			for _, id := range []string{artA, artB} {
				servesArtifact(t, m, id, map[string]string{artA: sumA, artB: sumB}[id])
			}
		}
	})

	// A revocation travels down every path: the chained mirror only ever
	// talks to the direct one, the bucket gets the new envelope.
	cp.cli("release", "revoke", relB)
	_, seq2 := cp.snapshot(tenant)
	direct.waitSequence(seq2)
	chained.waitSequence(seq2)
	replicate(t, bucket, prefix, cp.exportBundle(tenant, seq1))
	fromBucket.waitSequence(seq2)

	t.Run("snapshot 2 is served identically and the revoked artifact by none", func(t *testing.T) {
		sameSnapshot(t, mirrors, cp.timestamp(tenant))
		for _, m := range mirrors {
			servesArtifact(t, m, artA, sumA)
			if code, _ := get(t, m.url+"/v1/artifacts/"+artB); code != http.StatusNotFound {
				t.Errorf("%s: GET revoked %s = %d, want 404", m.name, artB, code)
			}
		}
	})
}

// replicate fills a bucket the way a customer's replication would, from
// the repository files a TUF bundle carries (the layout under prefix is
// the repository's): targets first, then the versioned metadata, the
// timestamp last, so a mirror never sees a timestamp whose files are not
// there yet.
func replicate(t *testing.T, store blob.Store, prefix, bundlePath string) {
	t.Helper()
	f, err := os.Open(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hdr.Name, "metadata/") && !strings.HasPrefix(hdr.Name, "targets/") {
			continue // the bundle's manifest and acknowledgement
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = b
	}
	order := func(name string) int {
		switch {
		case strings.HasPrefix(name, "targets/"):
			return 0
		case name == "metadata/timestamp.json":
			return 2
		}
		return 1
	}
	ctx := context.Background()
	for pass := range 3 {
		for name, b := range files {
			if order(name) != pass {
				continue
			}
			if _, err := store.Put(ctx, prefix+name, bytes.NewReader(b), blob.Expect{Size: int64(len(b))}); err != nil {
				t.Fatalf("put %s: %v", name, err)
			}
		}
	}
}

// timestamp is the tenant's current TUF timestamp as the control plane
// publishes it.
func (cp *controlPlane) timestamp(tenant string) []byte {
	cp.t.Helper()
	return cp.api("GET", "/v1/tenants/"+tenant+"/tuf/metadata/timestamp.json", cp.admin, nil, nil, http.StatusOK)
}

// sameSnapshot requires every mirror's /tuf/metadata/timestamp.json to be
// want, byte for byte.
func sameSnapshot(t *testing.T, mirrors []*mirrorDaemon, want []byte) {
	t.Helper()
	for _, m := range mirrors {
		code, got := get(t, m.url+"/tuf/metadata/timestamp.json")
		if code != http.StatusOK || !bytes.Equal(got, want) {
			t.Errorf("%s: GET /tuf/metadata/timestamp.json = %d, %d bytes (sha256 %s); want 200 and %d bytes (sha256 %s)",
				m.name, code, len(got), sum(got), len(want), sum(want))
		}
	}
}

// servesArtifact requires the mirror to serve artifact id with sha256 want.
func servesArtifact(t *testing.T, m *mirrorDaemon, id, want string) {
	t.Helper()
	code, body := get(t, m.url+"/v1/artifacts/"+id)
	if got := sum(body); code != http.StatusOK || got != want {
		t.Errorf("%s: GET /v1/artifacts/%s = %d, sha256 %s; want 200, %s", m.name, id, code, got, want)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
