package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/wire"
)

// TestFaults_MirrorCrash kills the mirror (SIGKILL) at random instants of
// lease issuance (serve under lease load), of `mirror import` and of
// `mirror gc`: 10 kills each in `make test`, 100 in `make soak`. After
// every kill the data dir must verify (`mirror verify`: no corrupt blob,
// nothing the held snapshot names missing), the held snapshot must never
// go back, and everything acknowledged must still be there: every lease
// answered 200 renews to the same lease id, every import that exited 0
// is held. Sync is covered by cmd/mirror TestMirror_CrashKill9.
func TestFaults_MirrorCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("faults: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	kills := pick(10, 100)
	tenant := cp.cli("tenant", "create", "Crashco")
	product := cp.cli("product", "create", "Crashware", "--distribution", "licensed")
	files := t.TempDir()
	f, _ := randomFile(t, files, "crash-0.tar.gz", 64<<10)
	cp.release(product, "1.0.0", f)
	root := cp.rootFile(tenant)

	t.Run("lease issuance", func(t *testing.T) {
		m := newMirror(t, tl, "crash-leases", mirrorConfig{tenant: tenant, root: root, source: "none"})
		mirrorID, cred := cp.registerMirror(tenant, "crash-leases", m.publicKey)
		var ent struct {
			EntitlementID string `json:"entitlement_id"`
		}
		cp.api("POST", "/v1/tenants/"+tenant+"/entitlements", cp.admin, map[string]any{
			"product_id": product, "policy_json": map[string]any{"max_seats": 1_000_000, "lease_ttl": "24h", "mirror_seats": map[string]int{mirrorID: 1_000_000}},
		}, &ent, http.StatusCreated)
		_, seq := cp.snapshot(tenant)
		m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})

		var (
			mu      sync.Mutex
			acked   = map[string]leaseAnswer{} // subject → the lease acknowledged for it
			wrong   []string
			renewed atomic.Int64
		)
		put := func(ctx context.Context, hc *http.Client, subject, secret string) (leaseAnswer, bool) {
			hdr := map[string]string{"Content-Type": "application/json"}
			if secret != "" {
				hdr[wire.HeaderLeaseSecret] = secret
			}
			code, body, err := call(ctx, hc, "PUT", m.url+"/v1/leases/"+subject, "",
				jsonBody(map[string]any{"entitlement_id": ent.EntitlementID, "subject_type": "device"}), hdr)
			var la leaseAnswer
			if err != nil || code != http.StatusOK || json.Unmarshal(body, &la) != nil || la.LeaseID == "" {
				return la, false
			}
			return la, true
		}
		for i := range kills {
			m.serve("OUTPOST_RATE_LIMIT_LEASES_RATE=0")
			if i == 0 {
				m.waitSequence(seq)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for g := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					hc := &http.Client{Timeout: 5 * time.Second}
					for n := 0; ctx.Err() == nil; n++ {
						if n%3 == 2 {
							// Renew an acknowledged lease: same id.
							mu.Lock()
							var subject string
							var held leaseAnswer
							for s, la := range acked {
								subject, held = s, la
								break
							}
							mu.Unlock()
							if subject == "" {
								continue
							}
							la, ok := put(ctx, hc, subject, held.HolderSecret)
							if !ok {
								return
							}
							renewed.Add(1)
							if la.LeaseID != held.LeaseID {
								mu.Lock()
								wrong = append(wrong, fmt.Sprintf("%s renewed to %s, acknowledged %s", subject, la.LeaseID, held.LeaseID))
								mu.Unlock()
							}
							continue
						}
						subject := fmt.Sprintf("k%d-g%d-n%d", i, g, n)
						la, ok := put(ctx, hc, subject, "")
						if !ok {
							return // the daemon died
						}
						mu.Lock()
						acked[subject] = la
						mu.Unlock()
					}
				}()
			}
			time.Sleep(time.Duration(50+rand.IntN(450)) * time.Millisecond)
			m.proc.kill()
			cancel()
			wg.Wait()
			if r := m.cmd("verify"); r.code != 0 {
				t.Fatalf("kill %d: mirror verify = exit %d: %s%s", i+1, r.code, r.stdout, r.stderr)
			}
		}
		m.serve("OUTPOST_RATE_LIMIT_LEASES_RATE=0")
		hc := &http.Client{Timeout: 10 * time.Second}
		lost := 0
		for subject, held := range acked {
			la, ok := put(context.Background(), hc, subject, held.HolderSecret)
			if !ok || la.LeaseID != held.LeaseID {
				lost++
				if lost <= 5 {
					t.Errorf("acknowledged lease %s of %s: renewal gave %q (ok %v)", held.LeaseID, subject, la.LeaseID, ok)
				}
			}
		}
		m.stop()
		for _, w := range wrong {
			t.Error(w)
		}
		if r := m.cmd("audit", "verify"); r.code != 0 {
			t.Errorf("mirror audit verify = exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		if len(acked) < kills {
			t.Errorf("only %d leases acknowledged over %d runs: the load did not run", len(acked), kills)
		}
		figure(t, "mirror kill -9 during lease issuance", "%d kills; %d leases acknowledged, %d renewals during the runs; %d lost; mirror verify and audit verify clean",
			kills, len(acked), renewed.Load(), lost)
	})

	t.Run("import and gc", func(t *testing.T) {
		m := newMirror(t, tl, "crash-import", mirrorConfig{tenant: tenant, root: root, source: "none"})
		held := func(t *testing.T) int64 {
			t.Helper()
			r := m.cmd("status", "--output", "json")
			if r.code != 0 {
				t.Fatalf("mirror status = exit %d: %s", r.code, r.stderr)
			}
			var st struct {
				Snapshot *struct {
					Sequence int64 `json:"sequence"`
				} `json:"snapshot"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
				t.Fatalf("mirror status: %v: %s", err, r.stdout)
			}
			if st.Snapshot == nil {
				return 0
			}
			return st.Snapshot.Sequence
		}
		verify := func(t *testing.T, what string) {
			t.Helper()
			if r := m.cmd("verify"); r.code != 0 {
				t.Fatalf("%s: mirror verify = exit %d: %s%s", what, r.code, r.stdout, r.stderr)
			}
		}
		// killed runs a one-shot command and kills it after a random
		// delay up to max, unless it finished first; it reports whether
		// the kill landed.
		killed := func(t *testing.T, max time.Duration, args ...string) bool {
			t.Helper()
			p := startProc(t, "mirror "+args[0], filepath.Join(m.dir, args[0]+".log"), baseEnv(), tl.mirror, append(args, "--config", m.config)...)
			select {
			case <-p.done:
				return false
			case <-time.After(time.Duration(rand.Int64N(int64(max)))):
				p.kill()
				return p.cmd.ProcessState.ExitCode() != 0
			}
		}
		var acked int64
		midImport, midGC := 0, 0
		for i := range kills {
			fi, _ := randomFile(t, files, fmt.Sprintf("crash-%d.tar.gz", i+1), 512<<10)
			cp.release(product, fmt.Sprintf("1.%d.0", i+1), fi)
			id, seq := cp.snapshot(tenant)
			_ = id
			bundle := cp.exportBundle(tenant, acked)
			if killed(t, 200*time.Millisecond, "import", bundle) {
				midImport++
			}
			verify(t, fmt.Sprintf("import kill %d", i+1))
			if h := held(t); h != acked && h != seq {
				t.Fatalf("import kill %d: holds sequence %d, want %d (before) or %d (after)", i+1, h, acked, seq)
			}
			if r := m.cmd("import", bundle); r.code != 0 {
				t.Fatalf("import %d after the kill: exit %d: %s", seq, r.code, r.stderr)
			}
			if h := held(t); h != seq {
				t.Fatalf("after import %d: holds %d", seq, h)
			}
			acked = seq
			if killed(t, 40*time.Millisecond, "gc") {
				midGC++
			}
			verify(t, fmt.Sprintf("gc kill %d", i+1))
			if h := held(t); h != acked {
				t.Fatalf("gc kill %d: holds %d, want the acknowledged %d", i+1, h, acked)
			}
			if r := m.cmd("gc"); r.code != 0 {
				t.Fatalf("gc after kill %d: exit %d: %s", i+1, r.code, r.stderr)
			}
			verify(t, fmt.Sprintf("gc %d", i+1))
		}
		figure(t, "mirror kill -9 during import and gc", "%d imports and %d gc runs killed at random (%d imports and %d gc runs were still running when killed); mirror verify clean after each; held sequence never went back; every acknowledged import held (last %d)",
			kills, kills, midImport, midGC, acked)
	})
}
