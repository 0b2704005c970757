package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/wire"
)

// TestFaults_MirrorAuditBounded renews leases on a mirror in rounds, with
// audit_retention 1s, syncing (and so uploading its audit chain) every
// second: mirror.db must stop growing once the acknowledged events are
// pruned, while the control plane ends up holding the whole chain (its
// accepted head is the mirror's head) and `mirror audit verify` is clean
// from the pruned anchor (docs/RELIABILITY.md, "Bounded mirror.db").
func TestFaults_MirrorAuditBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("faults: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	tenant := cp.cli("tenant", "create", "Auditco")
	product := cp.cli("product", "create", "Auditware", "--distribution", "licensed")
	f, _ := randomFile(t, t.TempDir(), "audit.tar.gz", 16<<10)
	cp.release(product, "1.0.0", f)
	root := cp.rootFile(tenant)
	m := newMirror(t, tl, "audit", mirrorConfig{tenant: tenant, root: root, source: "none"})
	mirrorID, cred := cp.registerMirror(tenant, "audit", m.publicKey)
	var ent struct {
		EntitlementID string `json:"entitlement_id"`
	}
	cp.api("POST", "/v1/tenants/"+tenant+"/entitlements", cp.admin, map[string]any{
		"product_id": product, "policy_json": map[string]any{"max_seats": 1000, "lease_ttl": "24h", "mirror_seats": map[string]int{mirrorID: 1000}},
	}, &ent, http.StatusCreated)
	_, seq := cp.snapshot(tenant)
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})
	m.serve("OUTPOST_RATE_LIMIT_LEASES_RATE=0", "OUTPOST_AUDIT_RETENTION=1s")
	m.waitSequence(seq)

	const subjects = 40
	var secrets sync.Map
	var renewals atomic.Int64
	renew := func(ctx context.Context, hc *http.Client, subject string) error {
		hdr := map[string]string{"Content-Type": "application/json"}
		if s, ok := secrets.Load(subject); ok {
			hdr[wire.HeaderLeaseSecret] = s.(string)
		}
		code, body, err := call(ctx, hc, "PUT", m.url+"/v1/leases/"+subject, "",
			jsonBody(map[string]any{"entitlement_id": ent.EntitlementID, "subject_type": "device"}), hdr)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("lease %s = %d %s: %v", subject, code, body, err)
		}
		var la leaseAnswer
		if json.Unmarshal(body, &la) == nil && la.HolderSecret != "" {
			secrets.Store(subject, la.HolderSecret)
		}
		renewals.Add(1)
		return nil
	}
	dbSize := func() int64 {
		fi, err := os.Stat(filepath.Join(m.dir, "mirror.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Take every lease first: a renewal needs the holder secret of the
	// first answer, and two first requests for one subject would race.
	for i := range subjects {
		if err := renew(context.Background(), &http.Client{Timeout: 10 * time.Second}, fmt.Sprintf("dev-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	rounds := pick(4, 20)
	var sizes []int64
	var counts []int64
	for r := range rounds {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		var wg sync.WaitGroup
		var errOnce sync.Once
		var firstErr error
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hc := &http.Client{Timeout: 10 * time.Second}
				for n := 0; ctx.Err() == nil; n++ {
					if err := renew(context.Background(), hc, fmt.Sprintf("dev-%d", (g*7+n)%subjects)); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		if firstErr != nil {
			t.Fatalf("round %d: %v", r+1, firstErr)
		}
		// Two sync intervals: an upload, its acknowledgement, the prune.
		time.Sleep(2500 * time.Millisecond)
		sizes = append(sizes, dbSize())
		counts = append(counts, renewals.Load())
	}
	// The head the control plane accepted must reach the mirror's.
	var head int64
	deadline := time.Now().Add(20 * time.Second)
	for {
		var mr struct {
			AuditHead struct {
				Seq int64 `json:"seq"`
			} `json:"audit_head"`
		}
		cp.api("GET", "/v1/mirrors/"+mirrorID, cp.admin, nil, &mr, http.StatusOK)
		head = mr.AuditHead.Seq
		if head >= renewals.Load() || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.stop()
	r := m.cmd("audit", "verify", "--output", "json")
	if r.code != 0 {
		t.Fatalf("mirror audit verify = exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	var av struct {
		Events, Held, Pruned, Acknowledged int64
	}
	if err := json.Unmarshal([]byte(r.stdout), &av); err != nil {
		t.Fatalf("mirror audit verify printed %q: %v", r.stdout, err)
	}
	mirrorHead := av.Events
	if head != mirrorHead {
		t.Errorf("control plane holds the chain up to %d, the mirror's head is %d: events not acknowledged", head, mirrorHead)
	}
	if mirrorHead < renewals.Load() {
		t.Errorf("mirror chain head %d, want at least one event per renewal (%d)", mirrorHead, renewals.Load())
	}
	// Held: at most the last round's events (and the head); without the
	// prune it would be the whole chain.
	total := counts[len(counts)-1]
	lastRound := total - counts[len(counts)-2]
	if av.Held > lastRound+1 {
		t.Errorf("mirror.db holds %d of %d events (%d pruned), want at most the last round's %d", av.Held, av.Events, av.Pruned, lastRound+1)
	}
	// Bounded: bbolt grows the file by doubling while it is small, so
	// allow one doubling over the size after the second round; without
	// the prune every round adds about 1 KiB per renewal.
	bound := 2 * sizes[1]
	if last := sizes[len(sizes)-1]; last > bound {
		t.Errorf("mirror.db %d B after %d renewals, want at most %d B (twice the size after round 2, %d renewals): sizes %v",
			last, counts[len(counts)-1], bound, counts[1], sizes)
	}
	figure(t, "mirror.db with audit_retention 1s", "%d renewals in %d rounds; mirror.db after each round: %v B; chain %d events, %d held, %d pruned; control plane holds up to %d; audit verify ok",
		total, rounds, sizes, mirrorHead, av.Held, av.Pruned, head)
}
