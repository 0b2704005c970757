package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/wire"
)

// loadDuration is how long the mirror load runs: a few seconds in `make
// test`, OUTPOST_SOAK_LOAD (default 3m; the issue's figure is 10m) in
// `make soak`.
func loadDuration(t *testing.T) time.Duration {
	t.Helper()
	if !soak() {
		return 4 * time.Second
	}
	if v := os.Getenv("OUTPOST_SOAK_LOAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			t.Fatalf("OUTPOST_SOAK_LOAD=%q: want a duration up to 1h", v)
		}
		return d
	}
	return 3 * time.Minute
}

// sampler samples a process's RSS, fds and CPU every second until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []procStat
	at      []time.Time
	stop    chan struct{}
	done    chan struct{}
}

func sampleEvery(pid int, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			if st, err := sampleProc(pid); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, st)
				s.at = append(s.at, time.Now())
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *sampler) finish() { close(s.stop); <-s.done }

// window averages RSS, anonymous RSS and fds over the first or last w of
// the run.
func (s *sampler) window(w time.Duration, last bool) (rss, anon int64, fds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return 0, 0, 0
	}
	var n int64
	var sumRSS, sumAnon, sumFD int64
	for i, st := range s.samples {
		in := s.at[i].Sub(s.at[0]) <= w
		if last {
			in = s.at[len(s.at)-1].Sub(s.at[i]) <= w
		}
		if in {
			n++
			sumRSS += st.rssBytes
			sumAnon += st.anonBytes
			sumFD += int64(st.fds)
		}
	}
	return sumRSS / n, sumAnon / n, int(sumFD / n)
}

// cpuShare is the CPU the process used over the samples, as a share of
// one core.
func (s *sampler) cpuShare() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 2 {
		return 0
	}
	dc := s.samples[len(s.samples)-1].cpu - s.samples[0].cpu
	dw := s.at[len(s.at)-1].Sub(s.at[0])
	return float64(dc) / float64(dw)
}

// TestSoak_MirrorClients runs many concurrent clients against one mirror
// for a bounded time: update checks, Range downloads and lease renewals.
// There must be 0 errors; p99 per request kind, and the mirror's RSS and
// open fds in the first and last minute are recorded (in `make soak` a
// growth beyond the bounds below fails it as a leak). 1,000 clients in
// `make soak`, 50 for 4 s in `make test`.
func TestSoak_MirrorClients(t *testing.T) {
	if testing.Short() {
		t.Skip("load: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	files := t.TempDir()
	clients := pick(50, 1000)
	dur := loadDuration(t)

	tenant := cp.cli("tenant", "create", "Loadco")
	product := cp.cli("product", "create", "Loadware", "--distribution", "licensed")
	f, _ := randomFile(t, files, "load.tar.gz", 1<<20)
	_, artID := cp.release(product, "2.0.0", f)
	root := cp.rootFile(tenant)
	m := newMirror(t, tl, "load", mirrorConfig{tenant: tenant, root: root, source: "none"})
	mirrorID, cred := cp.registerMirror(tenant, "load", m.publicKey)
	var ent struct {
		EntitlementID string `json:"entitlement_id"`
	}
	cp.api("POST", "/v1/tenants/"+tenant+"/entitlements", cp.admin, map[string]any{
		"product_id": product, "policy_json": map[string]any{"max_seats": 100000, "lease_ttl": "1h", "mirror_seats": map[string]int{mirrorID: 100000}},
	}, &ent, http.StatusCreated)
	_, seq := cp.snapshot(tenant)
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})
	// One IP and no client tokens: the per-client lease limit (tested on
	// its own) would refuse most of this load.
	m.serve("OUTPOST_RATE_LIMIT_LEASES_RATE=0")
	m.waitSequence(seq)

	kinds := []string{"check", "range", "lease"}
	lat := map[string]*latencies{}
	for _, k := range kinds {
		lat[k] = &latencies{}
	}
	var errs atomic.Int64
	var firstErr atomic.Value
	fail := func(format string, args ...any) {
		if errs.Add(1) == 1 {
			firstErr.Store(fmt.Sprintf(format, args...))
		}
	}
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	q := url.Values{"product": {product}, "channel": {"stable"}, "platform": {"linux"}, "arch": {"x64"}, "version": {"1.0.0"}}

	smp := sampleEvery(m.proc.cmd.Process.Pid, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	var requests atomic.Int64
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			subject := fmt.Sprintf("host-%04d", i)
			var secret string // this client's lease holder secret, once it has one
			cq := url.Values{}
			for k, v := range q {
				cq[k] = v
			}
			cq.Set("client_id", subject)
			checkURL := m.url + "/v1/updates/check?" + cq.Encode()
			for ctx.Err() == nil {
				kind := kinds[rng.IntN(len(kinds))]
				start := time.Now()
				var err error
				switch kind {
				case "check":
					var code int
					var body []byte
					code, body, err = call(context.Background(), hc, "GET", checkURL, "", nil, nil)
					if err == nil && (code != http.StatusOK || !bytes.Contains(body, []byte(`"update_available":true`))) {
						err = fmt.Errorf("check = %d %s", code, body)
					}
				case "range":
					off := rng.Int64N(1<<20 - 4096)
					n := 1 + rng.Int64N(4096)
					var code int
					var body []byte
					code, body, err = call(context.Background(), hc, "GET", m.url+"/v1/artifacts/"+artID+"/download", "", nil,
						map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+n-1)})
					if err == nil && (code != http.StatusPartialContent || int64(len(body)) != n) {
						err = fmt.Errorf("range = %d, %d bytes, want 206 and %d", code, len(body), n)
					}
				case "lease":
					var code int
					var body []byte
					hdr := map[string]string{"Content-Type": "application/json"}
					if secret != "" {
						hdr[wire.HeaderLeaseSecret] = secret
					}
					code, body, err = call(context.Background(), hc, "PUT", m.url+"/v1/leases/"+subject, "",
						jsonBody(map[string]any{"entitlement_id": ent.EntitlementID, "subject_type": "device"}), hdr)
					if err == nil && code/100 != 2 {
						err = fmt.Errorf("lease = %d %s", code, body)
					}
					var la leaseAnswer
					if err == nil && json.Unmarshal(body, &la) == nil && la.HolderSecret != "" {
						secret = la.HolderSecret
					}
				}
				if err != nil {
					fail("%s: %v", kind, err)
					continue
				}
				requests.Add(1)
				lat[kind].add(time.Since(start))
			}
		}()
	}
	wg.Wait()
	smp.finish()
	if m.proc.exited() {
		t.Fatalf("the mirror exited under load; log:\n%s", m.proc.logTail())
	}
	if n := errs.Load(); n != 0 {
		t.Errorf("%d errors under load; first: %v", n, firstErr.Load())
	}
	w := min(time.Minute, dur/3)
	rss0, anon0, fd0 := smp.window(w, false)
	rss1, anon1, fd1 := smp.window(w, true)
	total := requests.Load()
	dbInfo, _ := os.Stat(filepath.Join(m.dir, "mirror.db"))
	var dbSize int64
	if dbInfo != nil {
		dbSize = dbInfo.Size()
	}
	figure(t, "load/mirror-clients", "%d clients for %v: %d requests (%.0f/s), %d errors; p50/p99 check %v/%v, range %v/%v, lease %v/%v; mirror RSS %.1f→%.1f MiB (anonymous %.1f→%.1f MiB), fds %d→%d (first vs last %v); mirror.db %.1f MiB after %d lease renewals",
		clients, dur, total, float64(total)/dur.Seconds(), errs.Load(),
		lat["check"].quantile(.5).Round(time.Microsecond*10), lat["check"].quantile(.99).Round(time.Microsecond*10),
		lat["range"].quantile(.5).Round(time.Microsecond*10), lat["range"].quantile(.99).Round(time.Microsecond*10),
		lat["lease"].quantile(.5).Round(time.Microsecond*10), lat["lease"].quantile(.99).Round(time.Microsecond*10),
		float64(rss0)/(1<<20), float64(rss1)/(1<<20), float64(anon0)/(1<<20), float64(anon1)/(1<<20), fd0, fd1, w.Round(time.Second),
		float64(dbSize)/(1<<20), lat["lease"].count())
	if soak() {
		// A leak grows with time; a warm cache and a full connection pool
		// do not. Bounds: 50 fds, 50% + 32 MiB of anonymous memory (the
		// page cache of mirror.db, which every lease renewal grows, is
		// file-backed and not counted).
		if fd1 > fd0+50 {
			t.Errorf("open fds grew from %d to %d between the first and last %v", fd0, fd1, w)
		}
		if anon1 > anon0+anon0/2+32<<20 {
			t.Errorf("anonymous RSS grew from %d to %d between the first and last %v", anon0, anon1, w)
		}
	}
	// The mirror's lease ledger holds one lease per client, never more.
	m.stop()
	verifyClean(t, m)
}

// TestSoak_MirrorFleet simulates a fleet of mirrors polling the control
// plane for a new snapshot with nothing new (GET /v1/mirror/snapshot?
// after=N with each mirror's own credential → 304): every poll must be a
// 304; the control plane's CPU share (from /proc/<pid>/stat) and the
// answer's p99 are recorded. 1,000 mirrors every 10 s for 2 minutes in
// `make soak`; 50 every second for 4 s in `make test`.
func TestSoak_MirrorFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("load: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	tenant := cp.cli("tenant", "create", "Fleetco")
	product := cp.cli("product", "create", "Fleetware", "--distribution", "open")
	f, _ := randomFile(t, t.TempDir(), "fleet.tar.gz", 64<<10)
	cp.release(product, "1.0.0", f)
	_, seq := cp.snapshot(tenant)

	mirrors := pick(50, 1000)
	every := pick(time.Second, 10*time.Second)
	dur := pick(4*time.Second, 2*time.Minute)
	creds := make([]string, mirrors)
	for i := range creds {
		pub, _, err := ed25519.GenerateKey(crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		_, creds[i] = cp.registerMirror(tenant, fmt.Sprintf("fleet-%04d", i), base64.StdEncoding.EncodeToString(pub))
	}

	tr := &http.Transport{MaxIdleConns: mirrors * 2, MaxIdleConnsPerHost: mirrors * 2, IdleConnTimeout: 2 * every}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	lat := &latencies{}
	var errs atomic.Int64
	var firstErr atomic.Value
	smp := sampleEvery(cp.proc.cmd.Process.Pid, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	u := fmt.Sprintf("%s/v1/mirror/snapshot?after=%d", cp.url, seq)
	for i := range mirrors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the fleet over the interval, as real mirrors drift.
			first := time.Duration(rand.Int64N(int64(every)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(first):
			}
			tk := time.NewTicker(every)
			defer tk.Stop()
			for {
				start := time.Now()
				req, _ := http.NewRequest("GET", u, nil)
				req.Header.Set("Authorization", "Bearer "+creds[i])
				resp, err := hc.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNotModified {
						err = fmt.Errorf("poll = %d, want 304", resp.StatusCode)
					}
				}
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
				} else {
					lat.add(time.Since(start))
				}
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
			}
		}()
	}
	wg.Wait()
	smp.finish()
	if n := errs.Load(); n != 0 {
		t.Errorf("%d polls failed; first: %v", n, firstErr.Load())
	}
	share := smp.cpuShare()
	figure(t, "load/mirror-fleet", "%d mirrors polling every %v for %v: %d polls, all 304, %d errors; p50/p99 %v/%v; control plane CPU %.2f%% of a core",
		mirrors, every, dur, lat.count(), errs.Load(), lat.quantile(.5).Round(time.Microsecond), lat.quantile(.99).Round(time.Microsecond), 100*share)
	if soak() && share > 0.05 {
		t.Errorf("the control plane used %.1f%% of a core for %d idle mirrors, goal ≤ 5%%", 100*share, mirrors)
	}
}
