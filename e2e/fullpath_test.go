package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/testenv"
)

// TestE2E_FullPath is the whole story on real binaries: a vendor publishes
// through the controlplane CLI with artifacts in S3, mirror A syncs over
// HTTP, mirror B sits behind an air gap and gets bundles, clients update
// through both, a revocation reaches both, a rollout reaches its share of
// clients, and tenants stay apart on both daemons.
func TestE2E_FullPath(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	bucket := testenv.S3(t)
	cp := newControlPlane(t, tl, &bucket)
	cp.serve()
	files := t.TempDir()

	// The vendor publishes.
	tenantA := cp.cli("tenant", "create", "Acme Corp")
	tenantB := cp.cli("tenant", "create", "Globex")
	product := cp.cli("product", "create", "Outpost Demo", "--distribution", "open")
	file100, sum100 := randomFile(t, files, "demo-1.0.0.tar.gz", 300<<10)
	file110, sum110 := randomFile(t, files, "demo-1.1.0.tar.gz", 700<<10)
	_, art100 := cp.release(product, "1.0.0", file100)
	// The one-step form: create, upload and attach.
	rel110 := cp.cli("release", "create", "--product", product, "--channel", "stable", "--version", "1.1.0",
		"--file", file110, "--platform", "linux", "--arch", "x64", "--installer-type", "tar.gz")
	art110 := releaseArtifact(t, cp, rel110)

	t.Run("artifacts are in S3", func(t *testing.T) {
		store, err := s3.New(context.Background(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []struct{ id, sum string }{{art100, sum100}, {art110, sum110}} {
			var meta struct {
				SHA256      string `json:"sha256"`
				StoragePath string `json:"storage_path"`
				Status      string `json:"status"`
			}
			cp.api("GET", "/v1/artifacts/"+a.id, cp.admin, nil, &meta, http.StatusOK)
			if meta.SHA256 != a.sum || meta.Status != "VERIFIED" {
				t.Errorf("artifact %s: sha256 %s status %s, want %s VERIFIED", a.id, meta.SHA256, meta.Status, a.sum)
			}
			info, err := store.Stat(context.Background(), meta.StoragePath)
			if err != nil {
				t.Errorf("artifact %s: not in bucket %s at %q: %v", a.id, bucket.Bucket, meta.StoragePath, err)
				continue
			}
			if info.Size == 0 {
				t.Errorf("artifact %s: empty object in the bucket", a.id)
			}
		}
	})

	snap1, seq1 := cp.snapshot(tenantA)
	if seq1 != 1 {
		t.Fatalf("first snapshot sequence = %d, want 1", seq1)
	}

	// Mirror A reaches the control plane over HTTP.
	root := cp.rootFile(tenantA)
	mirrorA := newMirror(t, tl, "A", mirrorConfig{tenant: tenantA, root: root, source: "none"})
	_, credA := cp.registerMirror(tenantA, "site-a", mirrorA.publicKey)
	mirrorA.configure(mirrorConfig{tenant: tenantA, root: root, source: "controlplane", vendorURL: cp.url, credential: credA})
	mirrorA.serve()
	mirrorA.waitSequence(seq1)
	// The mirror reports its sync to the control plane.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Items []struct {
				LastSnapshotID string     `json:"last_snapshot_id"`
				LastSyncAt     *time.Time `json:"last_sync_at"`
			} `json:"items"`
		}
		cp.api("GET", "/v1/tenants/"+tenantA+"/mirrors", cp.admin, nil, &list, 200)
		if len(list.Items) == 1 && list.Items[0].LastSnapshotID == "tuf-"+jsonInt(seq1) && list.Items[0].LastSyncAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control plane never saw mirror A's sync report: %+v", list.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Mirror B has no route to the control plane: only bundles reach it.
	mirrorB := newMirror(t, tl, "B", mirrorConfig{tenant: tenantA, root: root, source: "none", vendorURL: "http://127.0.0.1:1"})
	full := cp.exportBundle(tenantA, 0)
	if got := bundleEntries(t, full); len(got) == 0 || got[0] != "tuf-bundle.json" || len(targetEntries(got)) != 2 ||
		!strings.Contains(strings.Join(got, " "), sum100) || !strings.Contains(strings.Join(got, " "), sum110) {
		t.Fatalf("full bundle entries = %v, want the manifest first and both artifacts' targets", got)
	}
	mirrorB.importBundle(full)
	mirrorB.serve()
	mirrorB.waitSequence(seq1)

	mirrors := []*mirrorDaemon{mirrorA, mirrorB}

	t.Run("both mirrors serve the signed metadata verbatim", func(t *testing.T) {
		sameSnapshot(t, mirrors, cp.timestamp(tenantA))
	})

	t.Run("updatectl gets the same decision and a verified download from both", func(t *testing.T) {
		q := updateQuery{product: product, version: "1.0.0", clientID: "laptop-1"}
		var first string
		for _, m := range mirrors {
			out, code := tl.check(t, m.url, q)
			if code != 10 {
				t.Errorf("%s: check exit %d, want 10 (update available): %s", m.name, code, out)
			}
			d := decodeDecision(t, out)
			if !d.UpdateAvailable || d.Release.Version != "1.1.0" || d.Artifact.SHA256 != sum110 || d.Snapshot.Sequence != seq1 {
				t.Errorf("%s: decision %s, want 1.1.0 (sha256 %s) from sequence %d", m.name, out, sum110, seq1)
			}
			if first == "" {
				first = out
			} else if out != first {
				t.Errorf("decisions differ:\n%s: %s\n%s: %s", mirrors[0].name, first, m.name, out)
			}
			path := tl.download(t, m.url, tenantA, root, t.TempDir(), q)
			if got := fileSHA256(t, path); got != sum110 {
				t.Errorf("%s: downloaded %s has sha256 %s, want %s", m.name, path, got, sum110)
			}
		}
	})

	t.Run("a mirror follows 302s to presigned S3 URLs", func(t *testing.T) {
		cp.stop()
		cp.serve("OUTPOST_ARTIFACT_DELIVERY=redirect")
		mirrorC := newMirror(t, tl, "C", mirrorConfig{tenant: tenantA, root: root, source: "none"})
		_, credC := cp.registerMirror(tenantA, "site-c", mirrorC.publicKey)
		mirrorC.configure(mirrorConfig{tenant: tenantA, root: root, source: "controlplane", vendorURL: cp.url, credential: credC})

		// The control plane answers a mirror with a redirect to the bucket...
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", cp.url+"/v1/mirror/artifacts/"+art110, nil)
		req.Header.Set("Authorization", "Bearer "+credC)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != bucket.Endpoint {
			t.Fatalf("GET /v1/mirror/artifacts/%s = %d Location %q, want 302 to %s", art110, resp.StatusCode, resp.Header.Get("Location"), bucket.Endpoint)
		}
		// ...and the mirror follows it and verifies what it gets.
		r := mirrorC.cmd("sync", "--once", "--output", "json")
		if r.code != 0 {
			t.Fatalf("mirror C sync: exit %d: %s", r.code, r.stderr)
		}
		var res struct {
			Changed    bool  `json:"changed"`
			Sequence   int64 `json:"sequence"`
			Downloaded int   `json:"downloaded"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("sync printed %q: %v", r.stdout, err)
		}
		if !res.Changed || res.Sequence != seq1 || res.Downloaded != 2 {
			t.Errorf("sync = %+v, want sequence %d committed with 2 artifacts downloaded", res, seq1)
		}
		if r := mirrorC.cmd("verify", "--output", "json"); r.code != 0 {
			t.Errorf("mirror C verify after a redirected sync: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	})

	// The vendor revokes 1.1.0.
	cp.cli("release", "revoke", rel110)
	_, seq2 := cp.snapshot(tenantA)
	mirrorA.waitSequence(seq2)
	since := cp.exportBundle(tenantA, seq1)
	// 1.0.0's artifact is already across the gap; 1.1.0's is revoked.
	if got := bundleEntries(t, since); len(got) == 0 || got[0] != "tuf-bundle.json" || len(targetEntries(got)) != 0 {
		t.Fatalf("--since %d bundle entries = %v, want metadata alone", seq1, got)
	}
	mirrorB.importBundle(since)
	mirrorB.waitSequence(seq2)

	t.Run("after the revocation neither mirror offers or serves 1.1.0", func(t *testing.T) {
		answers := map[string][]string{}
		for _, m := range mirrors {
			out, code := tl.check(t, m.url, updateQuery{product: product, version: "1.0.0", clientID: "laptop-1"})
			if d := decodeDecision(t, out); code != 0 || d.UpdateAvailable {
				t.Errorf("%s: check from 1.0.0 = exit %d %s, want 0 and no update", m.name, code, out)
			}
			answers[out] = append(answers[out], m.name)
			out, code = tl.check(t, m.url, updateQuery{product: product, version: "0.9.0"})
			if d := decodeDecision(t, out); code != 10 || d.Release == nil || d.Release.Version != "1.0.0" {
				t.Errorf("%s: check from 0.9.0 = exit %d %s, want 10 and 1.0.0", m.name, code, out)
			}
			answers[out] = append(answers[out], m.name)
			if code, _ := get(t, m.url+"/v1/artifacts/"+art110); code != http.StatusNotFound {
				t.Errorf("%s: GET revoked artifact %s = %d, want 404", m.name, art110, code)
			}
			if code, _ := get(t, m.url+"/v1/artifacts/by-sha256/"+sum110); code != http.StatusNotFound {
				t.Errorf("%s: GET revoked artifact by sha256 = %d, want 404", m.name, code)
			}
			if code, body := get(t, m.url+"/v1/artifacts/"+art100); code != http.StatusOK || len(body) != 300<<10 {
				t.Errorf("%s: GET %s (1.0.0) = %d, %d bytes; want 200 and %d bytes", m.name, art100, code, len(body), 300<<10)
			}
		}
		// Two questions, two distinct answers, each given by both mirrors.
		if len(answers) != 2 {
			t.Errorf("the mirrors gave %d distinct answers to 2 questions, want 2: %v", len(answers), answers)
		}
	})

	// A new release goes to 10% of clients.
	file120, _ := randomFile(t, files, "demo-1.2.0.tar.gz", 200<<10)
	rel120, _ := cp.release(product, "1.2.0", file120)
	cp.api("POST", "/v1/products/"+product+"/rollouts", cp.admin,
		map[string]any{"channel": "stable", "release_id": rel120, "percentage": 10}, nil, http.StatusCreated)
	_, seq3 := cp.snapshot(tenantA)
	mirrorA.waitSequence(seq3)

	t.Run("a 10% rollout reaches about 10% of 2000 clients", func(t *testing.T) {
		const clients = 2000
		got := 0
		for i := range clients {
			d := checkHTTP(t, mirrorA.url, "", url.Values{
				"product": {product}, "channel": {"stable"}, "platform": {"linux"}, "arch": {"x64"},
				"version": {"1.0.0"}, "client_id": {fmt.Sprintf("client-%04d", i)},
			})
			switch {
			case d.UpdateAvailable && d.Release.Version == "1.2.0":
				got++
			case d.UpdateAvailable:
				t.Fatalf("client-%04d offered %s, want 1.2.0 or nothing (1.1.0 is revoked)", i, d.Release.Version)
			}
		}
		if got < clients*7/100 || got > clients*13/100 {
			t.Errorf("1.2.0 offered to %d of %d clients, want 7%%-13%%", got, clients)
		}
		t.Logf("1.2.0 offered to %d of %d clients (%.1f%%)", got, clients, 100*float64(got)/clients)
	})

	tokenA := cp.tenantToken(tenantA)
	t.Run("control plane and mirror give byte-identical answers", func(t *testing.T) {
		sameAnswers(t, cp.url, tokenA, mirrorA.url, product, 300)
	})

	t.Run("tenant isolation on the control plane", func(t *testing.T) {
		tokenB := cp.tenantToken(tenantB)
		paths := []string{
			"/v1/tenants/" + tenantA,
			"/v1/snapshots/" + snap1,
			"/v1/tenants/" + tenantA + "/snapshots",
			"/v1/tenants/" + tenantA + "/mirrors",
			"/v1/tenants/" + tenantA + "/policies",
			"/v1/tenants/" + tenantA + "/entitlements",
		}
		for _, p := range paths {
			// The probe works: tenant A reads its own object.
			if code, body := httpDo(t, "GET", cp.url+p, tokenA, nil, nil); code != http.StatusOK {
				t.Errorf("tenant A GET %s = %d %s, want 200", p, code, body)
			}
			if code, body := httpDo(t, "GET", cp.url+p, tokenB, nil, nil); code != http.StatusNotFound {
				t.Errorf("tenant B GET %s = %d %s, want 404", p, code, body)
			}
		}
		// Tenant B's update check answers from B's own snapshot, never A's.
		q := "/v1/updates/check?product=" + product + "&channel=stable&platform=linux&arch=x64&version=1.0.0"
		if code, body := httpDo(t, "GET", cp.url+q, tokenB, nil, nil); code == http.StatusOK {
			t.Errorf("tenant B (no snapshot) update check = 200 %s, want an error", body)
		}
	})

	t.Run("a tenant B mirror refuses tenant A's bundle and snapshot", func(t *testing.T) {
		rootB := cp.rootFile(tenantB)
		mirrorX := newMirror(t, tl, "X (tenant B)", mirrorConfig{tenant: tenantB, root: rootB, source: "none"})
		bundleA := cp.exportBundle(tenantA, 0)
		if r := mirrorX.cmd("import", bundleA); r.code == 0 {
			t.Errorf("tenant B mirror imported tenant A's bundle: %s", r.stdout)
		} else if !strings.Contains(r.stderr, "tenant") {
			t.Errorf("import error %q does not name the tenant", r.stderr)
		}
		// Nothing committed: no snapshot, and no artifact taken from the bundle.
		if st := mirrorX.localStatus(); st.Snapshot != nil || st.Cache.Blobs != 0 {
			t.Errorf("after a refused import: snapshot %+v, %d blobs cached; want none and 0", st.Snapshot, st.Cache.Blobs)
		}
		// Tenant A's snapshot served by mirror A, as an upstream: refused too.
		mirrorX.configure(mirrorConfig{tenant: tenantB, root: rootB, source: "upstream", upstream: mirrorA.url})
		if r := mirrorX.cmd("sync", "--once"); r.code == 0 {
			t.Errorf("tenant B mirror synced tenant A's snapshot from mirror A: %s", r.stdout)
		}
		if seq := mirrorX.heldSequence(); seq != 0 {
			t.Errorf("after a refused sync the mirror holds sequence %d, want none", seq)
		}
		// The same mirror takes its own tenant's bundle, and still refuses A's.
		_, seqB := cp.snapshot(tenantB)
		mirrorX.importBundle(cp.exportBundle(tenantB, 0))
		if seq := mirrorX.heldSequence(); seq != seqB {
			t.Fatalf("tenant B mirror holds %d after importing B's bundle, want %d", seq, seqB)
		}
		if r := mirrorX.cmd("import", bundleA); r.code == 0 {
			t.Errorf("tenant B mirror holding B's snapshot imported tenant A's bundle: %s", r.stdout)
		}
		if seq := mirrorX.heldSequence(); seq != seqB {
			t.Errorf("after a refused import the mirror holds %d, want B's %d", seq, seqB)
		}
	})
}

// targetEntries are the artifact targets among a TUF bundle's entries
// (documents, named *.json, aside).
func targetEntries(entries []string) []string {
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e, "targets/") && !strings.HasSuffix(e, ".json") {
			out = append(out, e)
		}
	}
	return out
}

// bundleEntries lists a bundle's tar entry names in order.
func bundleEntries(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read bundle %s: %v", path, err)
		}
		names = append(names, h.Name)
	}
}

// releaseArtifact returns the id of the one artifact attached to a release.
func releaseArtifact(t *testing.T, cp *controlPlane, releaseID string) string {
	t.Helper()
	var page struct {
		Items []struct {
			ArtifactID string `json:"artifact_id"`
		} `json:"items"`
	}
	cp.api("GET", "/v1/releases/"+releaseID+"/artifacts", cp.admin, nil, &page, http.StatusOK)
	if len(page.Items) != 1 {
		t.Fatalf("release %s has %d artifacts, want 1", releaseID, len(page.Items))
	}
	return page.Items[0].ArtifactID
}

// decision is the part of an update answer the tests look at.
type decision struct {
	UpdateAvailable bool `json:"update_available"`
	Release         *struct {
		Version string `json:"version"`
	} `json:"release"`
	Artifact *struct {
		ArtifactID string `json:"artifact_id"`
		SHA256     string `json:"sha256"`
	} `json:"artifact"`
	Snapshot *struct {
		Sequence int64 `json:"sequence"`
	} `json:"snapshot"`
}

func decodeDecision(t *testing.T, s string) decision {
	t.Helper()
	var d decision
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("decode decision %q: %v", s, err)
	}
	if d.UpdateAvailable && (d.Release == nil || d.Artifact == nil || d.Snapshot == nil) {
		t.Fatalf("decision offers an update without release, artifact or snapshot: %s", s)
	}
	return d
}

// checkHTTP asks GET /v1/updates/check directly and requires a 200.
func checkHTTP(t *testing.T, base, token string, q url.Values) decision {
	t.Helper()
	code, body := httpDo(t, "GET", base+"/v1/updates/check?"+q.Encode(), token, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("update check %s = %d %s", q.Encode(), code, body)
	}
	return decodeDecision(t, string(body))
}

// sameAnswers sends n random update checks, valid and not, to the control
// plane (as the tenant) and to a mirror holding the same snapshot, and
// requires the same status and bytes for each.
func sameAnswers(t *testing.T, cpURL, token, mirrorURL, product string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	statuses := map[int]int{}
	offered := 0
	for i := range n {
		q := url.Values{
			"product":  {pick(product, product, product, "prd_00000000000000000000000000")},
			"channel":  {pick("stable", "stable", "stable", "beta")},
			"platform": {pick("linux", "linux", "linux", "windows")},
			"arch":     {pick("x64", "x64", "x64", "arm64")},
			"version":  {pick("0.1.0", "0.9.0", "1.0.0", "1.0.0", "1.1.0", "1.2.0", "2.0.0", "1.0.0-rc.1", "not-a-version")},
		}
		if rng.IntN(5) > 0 {
			q.Set("client_id", fmt.Sprintf("host-%d", rng.IntN(100000)))
		}
		if rng.IntN(4) == 0 {
			q.Set("installer_type", pick("tar.gz", "msi"))
		}
		path := "/v1/updates/check?" + q.Encode()
		cc, cb := httpDo(t, "GET", cpURL+path, token, nil, nil)
		mc, mb := httpDo(t, "GET", mirrorURL+path, "", nil, nil)
		if cc != mc || !bytes.Equal(cb, mb) {
			t.Fatalf("query %d %s:\ncontrol plane %d %s\nmirror        %d %s", i, q.Encode(), cc, cb, mc, mb)
		}
		statuses[cc]++
		if bytes.Contains(cb, []byte(`"update_available":true`)) {
			offered++
		}
	}
	// The mix must cover offers, refusals and errors, or it proves little.
	if statuses[200] < n/2 || offered == 0 || len(statuses) < 2 {
		t.Errorf("query mix too narrow: statuses %v, %d offers", statuses, offered)
	}
	t.Logf("%d queries identical: statuses %v, %d offers", n, statuses, offered)
}
