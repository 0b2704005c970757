package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeLoad is a steady write + lease load on one or more control plane
// instances: tenant creations with an Idempotency-Key (retried with the
// same key, on any instance, until acknowledged) and lease issuance for
// fresh subjects (retried until acknowledged: a retry of the same subject
// renews). What was acknowledged is recorded for the checks.
type writeLoad struct {
	admin, token, entitlement string
	urls                      func() []string // instances to spread over

	mu        sync.Mutex
	tenants   map[string]string // name → tenant id acknowledged
	leases    map[string]string // subject → lease id acknowledged
	secrets   map[string]string // subject → the lease's holder secret (renewal needs it)
	attempts  atomic.Int64
	failures  atomic.Int64
	retried   atomic.Int64 // acknowledged only after a retry
	lastFail  atomic.Int64 // unix nanos of the last failure
	firstFail atomic.Int64
}

// run drives the load with workers goroutines until ctx ends; a write in
// flight when ctx ends is retried (for at most a minute) until
// acknowledged, so every started write ends acknowledged or the test fails.
func (w *writeLoad) run(ctx context.Context, t *testing.T, workers int, prefix string) {
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for n := 0; ctx.Err() == nil; n++ {
				urls := w.urls()
				if g%2 == 0 {
					name := fmt.Sprintf("%s-%d-%d", prefix, g, n)
					key := "idem-" + name
					id, ok, last := w.until(c, urls, n, func(ctx context.Context, c *http.Client, base string) (string, bool, error) {
						var tn struct {
							TenantID string `json:"tenant_id"`
						}
						req := map[string]any{"name": name}
						code, raw, err := call(ctx, c, "POST", base+"/v1/tenants", w.admin, jsonBody(req),
							map[string]string{"Content-Type": "application/json", "Idempotency-Key": key})
						if err == nil && code == http.StatusConflict && bytes.Contains(raw, []byte("was carried out")) {
							// The first attempt committed, then its instance died
							// before storing the answer: it is done, once; the
							// client looks the result up.
							id, err := tenantByName(ctx, c, base, w.admin, name)
							return id, false, err
						}
						if err != nil || code/100 != 2 {
							return "", false, fmt.Errorf("%d %s %v", code, raw, err)
						}
						err = jsonDecode(raw, &tn)
						return tn.TenantID, false, err
					})
					if !ok {
						t.Errorf("tenant %s never acknowledged within a minute of retries (last answer: %v)", name, last)
						return
					}
					w.mu.Lock()
					w.tenants[name] = id
					w.mu.Unlock()
				} else {
					subject := fmt.Sprintf("%s-%d-%d", prefix, g, n)
					secret := ""
					id, ok, last := w.until(c, urls, n, func(ctx context.Context, c *http.Client, base string) (string, bool, error) {
						var l struct {
							LeaseID      string `json:"lease_id"`
							HolderSecret string `json:"holder_secret"`
						}
						// The key makes a retry after a lost answer replay it:
						// without it, the retry finds the lease held and no
						// secret to renew it with (403).
						code, raw, err := call(ctx, c, "POST", base+"/v1/entitlements/"+w.entitlement+"/leases", w.token,
							jsonBody(map[string]any{"subject_type": "device", "subject_id": subject}),
							map[string]string{"Content-Type": "application/json", "Idempotency-Key": "lease-" + subject})
						if err == nil && code == http.StatusConflict && bytes.Contains(raw, []byte("was carried out")) {
							// Issued once, then its instance died before storing
							// the answer: never acknowledged to this client, and
							// its secret (shown once) is gone with the answer.
							return leaseUnanswered, false, nil
						}
						if err != nil || code/100 != 2 {
							return "", false, fmt.Errorf("%d %s %v", code, raw, err)
						}
						err = jsonDecode(raw, &l)
						secret = l.HolderSecret
						return l.LeaseID, false, err
					})
					if !ok {
						t.Errorf("lease for %s never acknowledged within a minute of retries (last answer: %v)", subject, last)
						return
					}
					if id == leaseUnanswered {
						continue
					}
					w.mu.Lock()
					w.leases[subject] = id
					w.secrets[subject] = secret
					w.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

// leaseUnanswered marks a lease whose issuance committed on an instance
// that died before answering (the Idempotency-Key's "was carried out"):
// not acknowledged, so not checked.
const leaseUnanswered = "(issued, answer lost)"

// acked is how many writes were acknowledged so far.
func (w *writeLoad) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.tenants) + len(w.leases)
}

// until retries op over the instances (round robin from n) with a short
// pause until it succeeds or a minute passes; last is the final failed
// attempt's error, for the report.
func (w *writeLoad) until(c *http.Client, urls []string, n int, op func(context.Context, *http.Client, string) (string, bool, error)) (id string, ok bool, last error) {
	deadline := time.Now().Add(time.Minute)
	for try := 0; time.Now().Before(deadline); try++ {
		w.attempts.Add(1)
		id, _, err := op(context.Background(), c, urls[(n+try)%len(urls)])
		if err == nil && id != "" {
			if try > 0 {
				w.retried.Add(1)
			}
			return id, true, nil
		}
		last = err
		now := time.Now().UnixNano()
		w.failures.Add(1)
		w.firstFail.CompareAndSwap(0, now)
		w.lastFail.Store(now)
		time.Sleep(100 * time.Millisecond)
	}
	return "", false, last
}

// check requires every acknowledged tenant to exist and every
// acknowledged lease to be held (renewal gives the same id), asked of
// base. It returns the acknowledged tenants that exist more than once:
// an Idempotency-Key retry that ran its request a second time.
func (w *writeLoad) check(t *testing.T, base string) (dups []string) {
	t.Helper()
	ctx := context.Background()
	c := &http.Client{Timeout: 30 * time.Second}
	byName := map[string]int{}
	cursor := ""
	for {
		var page struct {
			Items []struct {
				TenantID string `json:"tenant_id"`
				Name     string `json:"name"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := callJSON(ctx, c, "GET", base+"/v1/tenants?limit=1000&cursor="+cursor, w.admin, nil, &page, nil); err != nil {
			t.Fatalf("list tenants on %s: %v", base, err)
		}
		for _, it := range page.Items {
			byName[it.Name]++
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, id := range w.tenants {
		switch n := byName[name]; {
		case n == 0:
			t.Errorf("%s: acknowledged tenant %s (%s) lost", base, name, id)
		case n > 1:
			dups = append(dups, fmt.Sprintf("%s ×%d", name, n))
		}
	}
	for subject, id := range w.leases {
		var l struct {
			LeaseID string `json:"lease_id"`
		}
		// Holder-bound leases: the same holder renews with its secret.
		if _, err := callJSON(ctx, c, "POST", base+"/v1/entitlements/"+w.entitlement+"/leases", w.token,
			map[string]any{"subject_type": "device", "subject_id": subject}, &l,
			map[string]string{"Outpost-Lease-Secret": w.secrets[subject]}); err != nil || l.LeaseID != id {
			t.Errorf("%s: acknowledged lease %s of %s: renewal gave %q (%v), want the same lease", base, id, subject, l.LeaseID, err)
		}
	}
	return dups
}

// noDuplicates is the Idempotency-Key check of a run: no retried
// request may have run twice. The control plane reserves the key in the
// store before the request runs and stores the answer in its place with a
// context the client cannot cancel (internal/httpapi/idempotency.go), so
// neither a kill -9, a lost database connection, a client timeout nor a
// second instance lets a retry run the request again.
func noDuplicates(t *testing.T, dups []string) {
	t.Run("idempotent retries do not duplicate", func(t *testing.T) {
		if len(dups) > 0 {
			t.Errorf("%d acknowledged tenant creations exist more than once after an Idempotency-Key retry: %v", len(dups), dups)
		}
	})
}

// tenantByName returns the id of the tenant called name.
func tenantByName(ctx context.Context, c *http.Client, base, token, name string) (string, error) {
	cursor := ""
	for {
		var page struct {
			Items []struct {
				TenantID string `json:"tenant_id"`
				Name     string `json:"name"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := callJSON(ctx, c, "GET", base+"/v1/tenants?limit=1000&cursor="+cursor, token, nil, &page, nil); err != nil {
			return "", err
		}
		for _, it := range page.Items {
			if it.Name == name {
				return it.TenantID, nil
			}
		}
		if page.NextCursor == "" {
			return "", fmt.Errorf("tenant %s not found", name)
		}
		cursor = page.NextCursor
	}
}

// noLeaseLimit turns off the per-token lease rate limit: the load and the
// check renew far more than 5 leases a second with one token, and the
// fault under test is the database's.
const noLeaseLimit = "OUTPOST_LEASE_RATE_LIMIT=0"

// licensedSetup creates a tenant, an open product, an entitlement with
// unlimited seats and a tenant token, and returns a load bound to them.
func licensedSetup(t *testing.T, cp *controlPlane) *writeLoad {
	t.Helper()
	tenant := cp.cli("tenant", "create", "Dbco")
	product := cp.cli("product", "create", "Dbware", "--distribution", "open")
	var ent struct {
		EntitlementID string `json:"entitlement_id"`
	}
	cp.api("POST", "/v1/tenants/"+tenant+"/entitlements", cp.admin, map[string]any{
		"product_id": product, "policy_json": map[string]any{"max_seats": 1000000, "lease_ttl": "1h"},
	}, &ent, http.StatusCreated)
	return &writeLoad{
		admin: cp.admin, token: cp.tenantToken(tenant), entitlement: ent.EntitlementID,
		tenants: map[string]string{}, leases: map[string]string{}, secrets: map[string]string{},
	}
}

// TestFaults_PostgresRestart restarts the control plane's PostgreSQL
// (a cluster of the test's own) under a steady write and lease load
// through the real binary: the daemon must come back without a restart
// of its own, every acknowledged write be there, the Idempotency-Key
// retries not duplicate, and the audit chain verify.
func TestFaults_PostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: real daemons")
	}
	tl := buildTools(t)
	pg := ownPostgres(t)
	cp := newControlPlaneEnv(t, tl, "", "OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL="+withSchema(t, pg.url), noLeaseLimit)
	cp.serveLog("a")
	w := licensedSetup(t, cp)
	w.urls = func() []string { return []string{cp.url} }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, t, 4, "pgr") }()
	restarts := pick(1, 5)
	var downs []time.Duration
	for range restarts {
		time.Sleep(time.Second)
		start := time.Now()
		pg.restart(500 * time.Millisecond)
		downs = append(downs, time.Since(start))
	}
	time.Sleep(2 * time.Second)
	cancel()
	<-done
	if cp.proc.exited() {
		t.Fatalf("the control plane exited during the database restarts; log:\n%s", cp.proc.logTail())
	}
	// Recovered: the last failure is followed by acknowledged writes.
	recovery := time.Duration(0)
	if w.lastFail.Load() > 0 {
		recovery = time.Duration(w.lastFail.Load() - w.firstFail.Load())
	}
	dups := w.check(t, cp.url)
	noDuplicates(t, dups)
	n := cp.auditVerify()
	if len(w.tenants) == 0 || len(w.leases) == 0 {
		t.Fatalf("no write acknowledged: %d tenants, %d leases", len(w.tenants), len(w.leases))
	}
	if w.failures.Load() == 0 {
		t.Errorf("no request failed across %d database restarts: the restarts did not reach the load", restarts)
	}
	figure(t, "pg-restart", "%d restarts (down %v); %d tenants + %d leases acknowledged, all present, %d duplicated by a retry; %d attempts failed during outages (%d writes acknowledged after a retry, failures spread over %v); audit chain %d events verified",
		restarts, downs, len(w.tenants), len(w.leases), len(dups), w.failures.Load(), w.retried.Load(), recovery.Round(time.Millisecond), n)
}

// TestFaults_PostgresTwoInstances runs two control plane processes on one
// database, loads both, kills -9 one mid-load: the other keeps serving
// (the load fails over to it with the same idempotency keys), nothing
// acknowledged by either is lost, and after the killed one restarts both
// give the same answers.
func TestFaults_PostgresTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: real daemons")
	}
	tl := buildTools(t)
	cpA := newControlPlaneEnv(t, tl, "", "OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL="+pgSchemaURL(t), noLeaseLimit)
	cpA.serveLog("a")
	cpB := cpA.twin()
	cpB.serveLog("b")
	w := licensedSetup(t, cpA)
	var aDown atomic.Bool
	w.urls = func() []string {
		if aDown.Load() {
			return []string{cpB.url}
		}
		return []string{cpA.url, cpB.url}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, t, 4, "two") }()
	time.Sleep(pick(1500*time.Millisecond, 20*time.Second))
	cpA.kill9()
	killedAt := time.Now()
	aDown.Store(true)
	ackedAtKill := w.acked()
	time.Sleep(pick(1500*time.Millisecond, 20*time.Second))
	cancel()
	<-done
	if cpB.proc.exited() {
		t.Fatalf("instance B exited; log:\n%s", cpB.proc.logTail())
	}
	ackedAfter := w.acked() - ackedAtKill
	if ackedAfter == 0 {
		t.Errorf("no write acknowledged after A was killed: B did not keep serving")
	}
	dups := w.check(t, cpB.url)
	cpA.serveLog("a2")
	w.check(t, cpA.url)
	noDuplicates(t, dups)
	// Both instances give the same tenant list.
	var la, lb struct {
		Items []struct {
			TenantID string `json:"tenant_id"`
		} `json:"items"`
	}
	cpA.api("GET", "/v1/tenants?limit=1000", cpA.admin, nil, &la, http.StatusOK)
	cpB.api("GET", "/v1/tenants?limit=1000", cpB.admin, nil, &lb, http.StatusOK)
	if len(la.Items) != len(lb.Items) {
		t.Errorf("after the restart A lists %d tenants, B %d", len(la.Items), len(lb.Items))
	}
	n := cpA.auditVerify()
	figure(t, "pg-two-instances", "kill -9 of A at %s; B acknowledged %d writes after it; %d tenants + %d leases acknowledged by A or B, all present on both, %d duplicated by a retry; %d failed attempts (requests A took with it), retried on B; audit chain %d events verified",
		killedAt.Format("15:04:05.000"), ackedAfter, len(w.tenants), len(w.leases), len(dups), w.failures.Load(), n)
}

// TestFaults_PostgresPartition cuts the link between a control plane and
// its database (a Toxiproxy black hole: bytes dropped both ways,
// connections left open, as a partition looks from either end) under the
// write and lease load, then heals it: the daemon must keep running,
// serve again without a restart, and have lost nothing acknowledged.
func TestFaults_PostgresPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: real daemons")
	}
	tl := buildTools(t)
	pgURL := pgSchemaURL(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	link := newFaultLink(t, "cp-pg", u.Host)
	u.Host = link.addr
	cp := newControlPlaneEnv(t, tl, "", "OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL="+u.String(), noLeaseLimit)
	cp.serveLog("a")
	w := licensedSetup(t, cp)
	w.urls = func() []string { return []string{cp.url} }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, t, 4, "part") }()
	time.Sleep(time.Second)
	link.toxic("blackhole-down", "timeout", "downstream", 1, map[string]any{"timeout": 0})
	link.toxic("blackhole-up", "timeout", "upstream", 1, map[string]any{"timeout": 0})
	cut := pick(3*time.Second, 30*time.Second)
	time.Sleep(cut / 2)
	ready, _ := get(t, cp.url+"/readyz")
	time.Sleep(cut - cut/2)
	failsDuring := w.failures.Load()
	ackedAtHeal := w.acked()
	link.clear()
	healed := time.Now()
	// Writes are acknowledged again after the heal.
	deadline := time.Now().Add(30 * time.Second)
	for w.acked() == ackedAtHeal && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	back := time.Since(healed)
	time.Sleep(time.Second)
	cancel()
	<-done
	if cp.proc.exited() {
		t.Fatalf("the control plane exited during the partition; log:\n%s", cp.proc.logTail())
	}
	if w.acked() == ackedAtHeal {
		t.Fatalf("no write acknowledged within 30s of the heal; log:\n%s", cp.proc.logTail())
	}
	dups := w.check(t, cp.url)
	noDuplicates(t, dups)
	n := cp.auditVerify()
	figure(t, "pg-partition", "%v black hole between control plane and PostgreSQL: /readyz %d during it, %d attempts failed; first write acknowledged %v after the heal; %d tenants + %d leases acknowledged, all present, %d duplicated by a retry; audit chain %d events verified",
		cut, ready, failsDuring, back.Round(time.Millisecond), len(w.tenants), len(w.leases), len(dups), n)
}
