package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"testing"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/testenv"
)

// TestE2E_SyncSources runs one mirror per source: the control plane over
// HTTP, a customer-side S3 bucket filled by "replication" (the test
// uploads the envelope and artifacts in the documented layout), and an
// upstream mirror chained behind the first. All three must serve the
// control plane's snapshot bytes and the same artifacts, before and after
// a revocation.
func TestE2E_SyncSources(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	key := cp.vendorKey()
	files := t.TempDir()

	tenant := cp.cli("tenant", "create", "Initech")
	product := cp.cli("product", "create", "Widget", "--distribution", "open")
	fileA, sumA := randomFile(t, files, "widget-1.0.0.tar.gz", 400<<10)
	fileB, sumB := randomFile(t, files, "widget-2.0.0.tar.gz", 600<<10)
	_, artA := cp.release(product, "1.0.0", fileA)
	relB, artB := cp.release(product, "2.0.0", fileB)
	byHash := map[string]string{sumA: fileA, sumB: fileB}
	snap1, seq1 := cp.snapshot(tenant)

	direct := newMirror(t, tl, "direct", mirrorConfig{tenant: tenant, trustedKey: key, source: "none"})
	_, cred := cp.registerMirror(tenant, "hq", direct.publicKey)
	direct.configure(mirrorConfig{tenant: tenant, trustedKey: key, source: "controlplane", vendorURL: cp.url, credential: cred})
	direct.serve()

	bucketCfg := testenv.S3(t)
	const prefix = "outpost/"
	bucket, err := s3.New(context.Background(), bucketCfg)
	if err != nil {
		t.Fatal(err)
	}
	replicate(t, bucket, prefix, cp.envelope(snap1), byHash)
	fromBucket := newMirror(t, tl, "bucket", mirrorConfig{tenant: tenant, trustedKey: key, source: "s3", s3: &bucketCfg, s3Prefix: prefix})
	fromBucket.serve()

	chained := newMirror(t, tl, "chained", mirrorConfig{tenant: tenant, trustedKey: key, source: "upstream", upstream: direct.url})
	chained.serve()

	mirrors := []*mirrorDaemon{direct, fromBucket, chained}
	for _, m := range mirrors {
		m.waitSequence(seq1)
	}
	t.Run("snapshot 1 is served identically by every source", func(t *testing.T) {
		sameSnapshot(t, mirrors, cp.envelope(snap1))
		for _, m := range mirrors {
			for _, id := range []string{artA, artB} {
				servesArtifact(t, m, id, map[string]string{artA: sumA, artB: sumB}[id])
			}
		}
	})

	// A revocation travels down every path: the chained mirror only ever
	// talks to the direct one, the bucket gets the new envelope.
	cp.cli("release", "revoke", relB)
	snap2, seq2 := cp.snapshot(tenant)
	direct.waitSequence(seq2)
	chained.waitSequence(seq2)
	replicate(t, bucket, prefix, cp.envelope(snap2), nil)
	fromBucket.waitSequence(seq2)

	t.Run("snapshot 2 is served identically and the revoked artifact by none", func(t *testing.T) {
		sameSnapshot(t, mirrors, cp.envelope(snap2))
		for _, m := range mirrors {
			servesArtifact(t, m, artA, sumA)
			if code, _ := get(t, m.url+"/v1/artifacts/"+artB); code != http.StatusNotFound {
				t.Errorf("%s: GET revoked %s = %d, want 404", m.name, artB, code)
			}
		}
	})
}

// replicate fills a bucket the way a customer's replication would: the
// artifacts under artifacts/<sha256> first, then the envelope, so a
// mirror never sees an envelope whose artifacts are not there yet.
func replicate(t *testing.T, store blob.Store, prefix string, envelope []byte, byHash map[string]string) {
	t.Helper()
	ctx := context.Background()
	for sum, path := range byHash {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.Put(ctx, prefix+"artifacts/"+sum, f, blob.Expect{SHA256: sum})
		f.Close()
		if err != nil {
			t.Fatalf("put artifact %s: %v", sum, err)
		}
	}
	if _, err := store.Put(ctx, prefix+"snapshots/latest.dsse.json", bytes.NewReader(envelope), blob.Expect{Size: int64(len(envelope))}); err != nil {
		t.Fatalf("put envelope: %v", err)
	}
}

// sameSnapshot requires every mirror's GET /v1/snapshot to be want, byte
// for byte.
func sameSnapshot(t *testing.T, mirrors []*mirrorDaemon, want []byte) {
	t.Helper()
	for _, m := range mirrors {
		code, got := get(t, m.url+"/v1/snapshot")
		if code != http.StatusOK || !bytes.Equal(got, want) {
			t.Errorf("%s: GET /v1/snapshot = %d, %d bytes (sha256 %s); want 200 and %d bytes (sha256 %s)",
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
