package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ledger is what the control plane acknowledged (answered 2xx) while it
// was being killed: every entry must be there after the restart.
type ledger struct {
	mu        sync.Mutex
	artifacts map[string]string // artifact id → sha256
	releases  map[string]string // release id → attached artifact id ("" if not attached yet)
	snapshots map[string]int64  // snapshot id → sequence
	leases    map[string]string // subject id → lease id
	secrets   map[string]string // subject id → the lease's holder secret (renewal needs it)
}

func newLedger() *ledger {
	return &ledger{artifacts: map[string]string{}, releases: map[string]string{}, snapshots: map[string]int64{}, leases: map[string]string{}, secrets: map[string]string{}}
}

// publisher is the vendor's pipeline in a loop: upload an artifact,
// create a release, attach, and now and then build a snapshot. It stops
// at the first failure (the daemon died) or when ctx ends.
func publisher(ctx context.Context, c *http.Client, cp *controlPlane, product, tenant string, iter int, led *ledger) {
	for n := 0; ctx.Err() == nil; n++ {
		data := make([]byte, 8<<10+rand.IntN(24<<10))
		for i := range data {
			data[i] = byte(rand.Uint32())
		}
		sum := sha256.Sum256(data)
		hexsum := hex.EncodeToString(sum[:])
		var art struct {
			ArtifactID string `json:"artifact_id"`
			SHA256     string `json:"sha256"`
		}
		code, raw, err := call(ctx, c, "POST", cp.url+"/v1/artifacts?sha256="+hexsum, cp.admin, bytes.NewReader(data),
			map[string]string{"Content-Type": "application/octet-stream"})
		if err != nil || code != http.StatusCreated {
			return
		}
		if err := json.Unmarshal(raw, &art); err != nil || art.ArtifactID == "" {
			return
		}
		led.mu.Lock()
		led.artifacts[art.ArtifactID] = hexsum
		led.mu.Unlock()

		var rel struct {
			ReleaseID string `json:"release_id"`
		}
		if _, err := callJSON(ctx, c, "POST", cp.url+"/v1/products/"+product+"/releases", cp.admin,
			map[string]any{"channel": "stable", "version": fmt.Sprintf("1.%d.%d", iter, n)}, &rel, nil); err != nil {
			return
		}
		led.mu.Lock()
		led.releases[rel.ReleaseID] = ""
		led.mu.Unlock()
		if _, err := callJSON(ctx, c, "POST", cp.url+"/v1/releases/"+rel.ReleaseID+"/artifacts", cp.admin,
			map[string]any{"artifact_id": art.ArtifactID, "platform": "linux", "arch": "x64", "installer_type": "tar.gz"}, nil, nil); err != nil {
			return
		}
		led.mu.Lock()
		led.releases[rel.ReleaseID] = art.ArtifactID
		led.mu.Unlock()
		if n%2 == 1 {
			var snap struct {
				SnapshotID string `json:"snapshot_id"`
				Sequence   int64  `json:"sequence"`
			}
			if _, err := callJSON(ctx, c, "POST", cp.url+"/v1/tenants/"+tenant+"/snapshots", cp.admin, map[string]any{}, &snap, nil); err != nil {
				return
			}
			led.mu.Lock()
			led.snapshots[snap.SnapshotID] = snap.Sequence
			led.mu.Unlock()
		}
	}
}

// leaser issues leases for fresh subjects until the daemon dies.
func leaser(ctx context.Context, c *http.Client, base, token, entitlement, prefix string, led *ledger) {
	for n := 0; ctx.Err() == nil; n++ {
		subject := fmt.Sprintf("%s-%d", prefix, n)
		var l struct {
			LeaseID      string `json:"lease_id"`
			HolderSecret string `json:"holder_secret"`
		}
		if _, err := callJSON(ctx, c, "POST", base+"/v1/entitlements/"+entitlement+"/leases", token,
			map[string]any{"subject_type": "device", "subject_id": subject}, &l, nil); err != nil {
			return
		}
		led.mu.Lock()
		led.leases[subject] = l.LeaseID
		led.secrets[subject] = l.HolderSecret
		led.mu.Unlock()
	}
}

// checkLedger requires everything acknowledged to be served after the
// restart: artifacts VERIFIED with their hash, releases with their
// attachment, snapshots, and leases (renewing an acknowledged subject
// must give back its lease id: a lost lease would get a new one). Entries
// in checked were found after an earlier kill and are not asked again.
func checkLedger(t *testing.T, cp *controlPlane, token, entitlement string, led *ledger, checked map[string]bool) {
	t.Helper()
	ctx := context.Background()
	c := &http.Client{Timeout: 30 * time.Second}
	led.mu.Lock()
	defer led.mu.Unlock()
	for id, sum := range led.artifacts {
		if checked["a:"+id] {
			continue
		}
		checked["a:"+id] = true
		var a struct {
			SHA256 string `json:"sha256"`
			Status string `json:"status"`
		}
		if _, err := callJSON(ctx, c, "GET", cp.url+"/v1/artifacts/"+id, cp.admin, nil, &a, nil); err != nil || a.SHA256 != sum || a.Status != "VERIFIED" {
			t.Errorf("acknowledged artifact %s: %+v %v, want VERIFIED %s", id, a, err, sum)
		}
	}
	for id, art := range led.releases {
		if checked["r:"+id+":"+art] {
			continue
		}
		checked["r:"+id+":"+art] = true
		if _, err := callJSON(ctx, c, "GET", cp.url+"/v1/releases/"+id, cp.admin, nil, nil, nil); err != nil {
			t.Errorf("acknowledged release %s lost: %v", id, err)
			continue
		}
		if art == "" {
			continue
		}
		var page struct {
			Items []struct {
				ArtifactID string `json:"artifact_id"`
			} `json:"items"`
		}
		if _, err := callJSON(ctx, c, "GET", cp.url+"/v1/releases/"+id+"/artifacts", cp.admin, nil, &page, nil); err != nil || len(page.Items) != 1 || page.Items[0].ArtifactID != art {
			t.Errorf("acknowledged attachment %s → %s: %+v %v", id, art, page.Items, err)
		}
	}
	for id, seq := range led.snapshots {
		if checked["s:"+id] {
			continue
		}
		checked["s:"+id] = true
		code, raw, err := call(ctx, c, "GET", cp.url+"/v1/snapshots/"+id, cp.admin, nil, nil)
		if err != nil || code != http.StatusOK {
			t.Errorf("acknowledged snapshot %s (sequence %d): %d %s %v", id, seq, code, raw, err)
		}
	}
	for subject, id := range led.leases {
		if checked["l:"+subject] {
			continue
		}
		var l struct {
			LeaseID string `json:"lease_id"`
		}
		if _, err := callJSON(ctx, c, "POST", cp.url+"/v1/entitlements/"+entitlement+"/leases", token,
			map[string]any{"subject_type": "device", "subject_id": subject}, &l,
			map[string]string{"Outpost-Lease-Secret": led.secrets[subject]}); err != nil || l.LeaseID != id {
			t.Errorf("acknowledged lease %s of %s: renewal gave %q (%v), want the same lease", id, subject, l.LeaseID, err)
		}
		checked["l:"+subject] = true
	}
}

// TestFaults_ControlPlaneCrash kills -9 the control plane at random
// instants while a publisher (upload, release, attach, snapshot build)
// and two lease issuers run, on bbolt and on PostgreSQL: each restart
// must succeed, the audit chain verify, and every acknowledged write be
// there. 10 kills per store in `make test`, 100 in `make soak`.
func TestFaults_ControlPlaneCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: real daemons")
	}
	tl := buildTools(t)
	for _, store := range []string{"bolt", "postgres"} {
		t.Run(store, func(t *testing.T) {
			// The fault under test is the crash: no lease rate limit, and
			// retention keeps every build (a round can build more than
			// retention_keep snapshots, and the housekeeping at restart
			// would rightly delete the older ones of it).
			env := []string{noLeaseLimit, "OUTPOST_RETENTION_KEEP=1000000"}
			if store == "postgres" {
				env = append(env, "OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL="+pgSchemaURL(t))
			}
			cp := newControlPlaneEnv(t, tl, "", env...)
			cp.serve()
			tenant := cp.cli("tenant", "create", "Crashco")
			product := cp.cli("product", "create", "Crashware", "--distribution", "open")
			var ent struct {
				EntitlementID string `json:"entitlement_id"`
			}
			cp.api("POST", "/v1/tenants/"+tenant+"/entitlements", cp.admin, map[string]any{
				"product_id": product, "policy_json": map[string]any{"max_seats": 1000000, "lease_ttl": "1h"},
			}, &ent, http.StatusCreated)
			token := cp.tenantToken(tenant)

			led := newLedger()
			checked := map[string]bool{}
			iterations := pick(10, 100)
			var lastAudit int
			var work atomic.Int64
			for i := range iterations {
				ctx, cancel := context.WithCancel(context.Background())
				c := &http.Client{Timeout: 10 * time.Second}
				var wg sync.WaitGroup
				wg.Add(3)
				go func() { defer wg.Done(); publisher(ctx, c, cp, product, tenant, i, led) }()
				go func() {
					defer wg.Done()
					leaser(ctx, c, cp.url, token, ent.EntitlementID, fmt.Sprintf("dev-%d-a", i), led)
				}()
				go func() {
					defer wg.Done()
					leaser(ctx, c, cp.url, token, ent.EntitlementID, fmt.Sprintf("dev-%d-b", i), led)
				}()
				time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
				cp.kill9()
				wg.Wait()
				cancel()

				n := cp.auditVerify()
				if n < lastAudit {
					t.Fatalf("kill %d: the audit log shrank from %d to %d events", i, lastAudit, n)
				}
				lastAudit = n
				cp.serve()
				checkLedger(t, cp, token, ent.EntitlementID, led, checked)
				if t.Failed() {
					t.Fatalf("kill %d: acknowledged writes lost; log:\n%s", i, cp.proc.logTail())
				}
				work.Add(1)
			}
			cp.stop()
			cp.auditVerify()
			led.mu.Lock()
			defer led.mu.Unlock()
			if len(led.artifacts) < iterations || len(led.leases) < iterations {
				t.Errorf("only %d artifacts and %d leases acknowledged over %d kills: the load did not run", len(led.artifacts), len(led.leases), iterations)
			}
			figure(t, "crash-"+store, "%d kill -9, %d artifacts, %d releases, %d snapshots, %d leases acknowledged and all found; audit chain %d events verified",
				work.Load(), len(led.artifacts), len(led.releases), len(led.snapshots), len(led.leases), lastAudit)
		})
	}
}
