package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"

	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/testenv"
)

// --- Toxiproxy, embedded in the test process on 127.0.0.1 ---

// countToxic passes everything through and counts the bytes in a named
// counter: placed last downstream, it counts what the client received.
type countToxic struct {
	Counter string `json:"counter"`
}

var byteCounters sync.Map // name → *atomic.Int64

func byteCounter(name string) *atomic.Int64 {
	c, _ := byteCounters.LoadOrStore(name, new(atomic.Int64))
	return c.(*atomic.Int64)
}

func (c *countToxic) Pipe(stub *toxics.ToxicStub) {
	ctr := byteCounter(c.Counter)
	for {
		select {
		case <-stub.Interrupt:
			return
		case ch := <-stub.Input:
			if ch == nil {
				stub.Close()
				return
			}
			ctr.Add(int64(len(ch.Data)))
			// Removing toxics while a body is in flight interrupts this
			// one; a send that waits on a stalled reader must not block
			// the removal forever (it would hang ResetToxics).
			select {
			case stub.Output <- ch:
			case <-stub.Interrupt:
				return
			}
		}
	}
}

func init() { toxics.Register("outpost_count", new(countToxic)) }

var toxiServer = sync.OnceValue(func() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
})

// faultLink is one TCP link through Toxiproxy: clients dial addr, it
// dials upstream.
type faultLink struct {
	t     *testing.T
	p     *toxiproxy.Proxy
	addr  string
	count string // the downstream byte counter's name
}

func newFaultLink(t *testing.T, name, upstream string) *faultLink {
	t.Helper()
	p := toxiproxy.NewProxy(toxiServer(), name+"-"+randHex(3), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("toxiproxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	l := &faultLink{t: t, p: p, addr: p.Listen, count: p.Name}
	return l
}

// toxic adds a toxic (Toxiproxy's names and attributes).
func (l *faultLink) toxic(name, typ, stream string, toxicity float32, attrs map[string]any) {
	l.t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": toxicity, "attributes": attrs})
	if _, err := l.p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		l.t.Fatalf("toxic %s on %s: %v", name, l.p.Name, err)
	}
}

// counting adds the byte counter last on the downstream side.
func (l *faultLink) counting() {
	l.t.Helper()
	l.toxic("count", "outpost_count", "downstream", 1, map[string]any{"counter": l.count})
}

func (l *faultLink) received() int64 { return byteCounter(l.count).Load() }

func (l *faultLink) clear() { l.p.Toxics.ResetToxics(context.Background()) }

// fault is one toxic setup; resume cases also bound the bytes received.
type fault struct {
	name   string
	apply  func(l *faultLink)
	resume bool // connections are cut mid-body: completed bytes must not be fetched again
}

// faults are the toxics every link gets, sized so a sync of a few
// hundred KiB takes seconds, not minutes.
func faults() []fault {
	return []fault{
		{name: "latency+jitter", apply: func(l *faultLink) {
			l.toxic("lat", "latency", "downstream", 1, map[string]any{"latency": 40, "jitter": 40})
			l.toxic("latu", "latency", "upstream", 1, map[string]any{"latency": 20, "jitter": 20})
		}},
		{name: "bandwidth", apply: func(l *faultLink) {
			l.toxic("bw", "bandwidth", "downstream", 1, map[string]any{"rate": pick(512, 2048)})
		}},
		{name: "reset mid-body", resume: true, apply: func(l *faultLink) {
			// Every connection is cut after 24 KiB: only resuming finishes.
			l.toxic("cut", "limit_data", "downstream", 1, map[string]any{"bytes": pick(24<<10, 512<<10)})
		}},
		{name: "reset_peer", apply: func(l *faultLink) {
			// Half the connections swallow their first request and are
			// reset (RST) 150 ms later.
			l.toxic("rst", "reset_peer", "upstream", 0.5, map[string]any{"timeout": 150})
		}},
		{name: "stall", apply: func(l *faultLink) {
			// Half the connections swallow everything for 700 ms, then close.
			l.toxic("stall", "timeout", "downstream", 0.5, map[string]any{"timeout": 700})
		}},
		{name: "slicer 1-byte writes", apply: func(l *faultLink) {
			l.toxic("slice", "slicer", "downstream", 1, map[string]any{"average_size": 1, "size_variation": 0, "delay": 0})
		}},
	}
}

// servedWhole polls a mirror while it syncs: whatever it serves must be
// one complete version whose artifacts all hash right. It returns the
// number of checks made and the first violation.
func servedWhole(ctx context.Context, m *mirrorDaemon) (checks int, bad error) {
	return servedWholeN(ctx, m, 0)
}

// servedWholeN is servedWhole stopping after n whole checks (0: until
// ctx ends). What the mirror serves is read as a TUF client reads it,
// from the tenant's root (servedManifest).
func servedWholeN(ctx context.Context, m *mirrorDaemon, n int) (checks int, bad error) {
	c := &http.Client{Timeout: 10 * time.Second}
	base := m.url
	for ctx.Err() == nil && (n == 0 || checks < n) {
		man, err := servedManifest(ctx, m)
		if err != nil {
			if ctx.Err() != nil {
				return checks, nil
			}
			return checks, err
		}
		if man == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		notYet := false
		for _, a := range state.Needed(man, []string{"stable"}) {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/artifacts/by-sha256/"+a.SHA256, nil)
			resp, err := c.Do(req)
			if err != nil {
				if ctx.Err() != nil {
					return checks, nil
				}
				return checks, fmt.Errorf("GET artifact %s: %w", a.ArtifactID, err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil && ctx.Err() != nil {
				return checks, nil // stopped mid-body by the test, not by the mirror
			}
			if resp.StatusCode == http.StatusServiceUnavailable {
				// /tuf/ serves a version from its commit on; the routes
				// of /v1/ from the view the server loads right after it:
				// the first version may be listed a moment before its
				// artifacts are served, never the other way round.
				notYet = true
				break
			}
			if resp.StatusCode != http.StatusOK || n != a.SizeBytes || hex.EncodeToString(h.Sum(nil)) != a.SHA256 {
				return checks, fmt.Errorf("version %d lists %s but it is served %d, %d bytes, hash ok %v",
					man.Sequence, a.ArtifactID, resp.StatusCode, n, hex.EncodeToString(h.Sum(nil)) == a.SHA256)
			}
		}
		if notYet {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		checks++
		time.Sleep(10 * time.Millisecond)
	}
	return checks, nil
}

// verifyClean runs `mirror verify` on a stopped mirror: every blob must
// re-hash right (nothing quarantined).
func verifyClean(t *testing.T, m *mirrorDaemon) {
	t.Helper()
	r := m.cmd("verify", "--output", "json")
	var rep struct {
		Checked     int      `json:"checked"`
		Quarantined []string `json:"quarantined"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 0 || err != nil || len(rep.Quarantined) != 0 || rep.Checked == 0 {
		t.Errorf("%s: mirror verify: exit %d: %s %s", m.name, r.code, r.stdout, r.stderr)
	}
}

// TestFaults_Network mounts Toxiproxy faults on each link a mirror has
// (control plane, S3 bucket, upstream mirror) and between updatectl and a
// mirror: latency and jitter, a bandwidth limit, connections cut mid-body
// (limit_data) or reset (reset_peer), stalls (timeout) and 1-byte writes
// (slicer). Every sync must commit the control plane's snapshot and bytes
// while a poller sees only whole snapshots; where connections are cut
// mid-body, the bytes received must not exceed what was needed (a resume
// never fetches completed bytes again).
func TestFaults_Network(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	files := t.TempDir()
	tenant := cp.cli("tenant", "create", "Flakynet")
	product := cp.cli("product", "create", "Netware", "--distribution", "open")
	sizes := pick([]int{32 << 10, 96 << 10}, []int{512 << 10, 2 << 20})
	byHash := map[string]string{}
	var total int64
	var lastSum string
	for i, n := range sizes {
		f, sum := randomFile(t, files, fmt.Sprintf("net-%d.tar.gz", i), n)
		cp.release(product, fmt.Sprintf("1.%d.0", i), f)
		byHash[sum] = f
		total += int64(n)
		lastSum = sum
	}
	_, seq := cp.snapshot(tenant)

	// The healthy sources behind the faulty links.
	bucketCfg := testenv.S3(t)
	const prefix = "outpost/"
	bucket, err := s3.New(context.Background(), bucketCfg)
	if err != nil {
		t.Fatal(err)
	}
	replicate(t, bucket, prefix, cp.exportBundle(tenant, 0))
	timestamp := cp.timestamp(tenant)
	root := cp.rootFile(tenant)
	upstream := newMirror(t, tl, "upstream", mirrorConfig{tenant: tenant, root: root, source: "none"})
	_, upCred := cp.registerMirror(tenant, "upstream", upstream.publicKey)
	upstream.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: upCred})
	upstream.serve()
	upstream.waitSequence(seq)

	type linkKind struct {
		name     string
		upstream string
		config   func(m *mirrorDaemon, addr string) mirrorConfig
	}
	links := []linkKind{
		{"mirror-controlplane", cp.addr, func(m *mirrorDaemon, addr string) mirrorConfig {
			_, cred := cp.registerMirror(tenant, "net-"+randHex(4), m.publicKey)
			return mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: "http://" + addr, credential: cred}
		}},
		{"mirror-s3", bucketCfg.Endpoint, func(m *mirrorDaemon, addr string) mirrorConfig {
			c := bucketCfg
			c.Endpoint = addr
			return mirrorConfig{tenant: tenant, root: root, source: "s3", s3: &c, s3Prefix: prefix}
		}},
		{"mirror-upstream", upstream.addr, func(m *mirrorDaemon, addr string) mirrorConfig {
			return mirrorConfig{tenant: tenant, root: root, source: "upstream", upstream: "http://" + addr}
		}},
	}
	// The fault cases are independent (a mirror or a client and a link
	// each) and mostly wait on backoff: they run -parallel at a time.
	t.Run("faults", func(t *testing.T) {
		for _, lk := range links {
			for _, f := range faults() {
				t.Run(lk.name+"/"+f.name, func(t *testing.T) {
					t.Parallel()
					link := newFaultLink(t, lk.name, lk.upstream)
					f.apply(link)
					link.counting()
					m := newMirror(t, tl, strings.ReplaceAll(lk.name+"-"+f.name, " ", "-"), mirrorConfig{tenant: tenant, root: root, source: "none"})
					m.configure(lk.config(m, link.addr))
					start := time.Now()
					m.serve()
					ctx, cancel := context.WithCancel(context.Background())
					var checks int
					var bad error
					polled := make(chan struct{})
					go func() { defer close(polled); checks, bad = servedWhole(ctx, m) }()
					m.waitSequence(seq)
					took := time.Since(start)
					time.Sleep(100 * time.Millisecond) // the poller sees the committed snapshot
					cancel()
					<-polled
					if bad != nil {
						t.Errorf("partial state served during the fault: %v", bad)
					}
					if code, got := get(t, m.url+"/tuf/metadata/timestamp.json"); code != http.StatusOK || !bytes.Equal(got, timestamp) {
						t.Errorf("GET /tuf/metadata/timestamp.json = %d, %d bytes; want the control plane's %d bytes", code, len(got), len(timestamp))
					}
					recv := link.received()
					// The mirror first: with its connections closed no body
					// is in flight while the toxics are removed.
					m.stop()
					link.clear()
					verifyClean(t, m)
					// What must cross the link at least once: the envelope and
					// every artifact; protocol overhead is small.
					need := total + int64(len(timestamp))
					slack := need/10 + 64<<10
					if f.resume && recv > need+slack {
						t.Errorf("received %d bytes through the link for %d needed: completed bytes were fetched again", recv, need)
					}
					figure(t, "net/"+lk.name+"/"+f.name, "synced %d B in %v; %d B crossed the link (%.2fx of needed); poller %d whole-snapshot checks, 0 partial",
						total, took.Round(10*time.Millisecond), recv, float64(recv)/float64(need), checks)
				})
			}
		}

		// updatectl ↔ mirror: the client resumes and verifies.
		for _, f := range faults() {
			t.Run("client-mirror/"+f.name, func(t *testing.T) {
				t.Parallel()
				link := newFaultLink(t, "client", upstream.addr)
				f.apply(link)
				link.counting()
				start := time.Now()
				dir := t.TempDir()
				// updatectl resumes the download body (--retries) and retries
				// the check and the snapshot fetch (--request-tries, within
				// --request-within): one run must do.
				env := baseEnv("OUTPOST_RETRIES=20", "OUTPOST_REQUEST_TRIES=20", "OUTPOST_REQUEST_WITHIN=60s")
				r := run(t, env, tl.updatectl, "download", "--server", "http://"+link.addr, "--tenant", tenant, "--tuf-root", root,
					"--product", product, "--channel", "stable", "--platform", "linux", "--arch", "x64",
					"--version", "0.0.1", "--out", dir)
				took := time.Since(start)
				recv := link.received()
				link.clear()
				if r.code != 0 {
					t.Fatalf("updatectl download through %s: exit %d: %s", f.name, r.code, r.stderr)
				}
				path := strings.TrimSpace(r.stdout)
				if got := fileSHA256(t, path); got != lastSum {
					t.Fatalf("downloaded %s sha256 %s, want %s", path, got, lastSum)
				}
				size := int64(sizes[len(sizes)-1])
				need := size + int64(len(timestamp))
				slack := need/10 + 64<<10
				if f.resume && recv > need+slack {
					t.Errorf("received %d bytes for %d needed: the client fetched completed bytes again", recv, need)
				}
				figure(t, "net/client-mirror/"+f.name, "downloaded %d B in %v (1 run), sha256 ok; %d B crossed the link (%.2fx of needed)",
					size, took.Round(10*time.Millisecond), recv, float64(recv)/float64(need))
			})
		}
	})

	// A mirror restarted while its source is unreachable (every
	// connection reset) must come up and serve what it holds, then
	// catch up once the link heals.
	seq2 := seq
	for _, lk := range links {
		t.Run("boot with "+lk.name+" down", func(t *testing.T) {
			link := newFaultLink(t, lk.name, lk.upstream)
			m := newMirror(t, tl, "boot-"+lk.name, mirrorConfig{tenant: tenant, root: root, source: "none"})
			m.configure(lk.config(m, link.addr))
			m.serve()
			m.waitSequence(seq2)
			held := m.status().Snapshot.Sequence
			m.stop()
			link.toxic("down", "reset_peer", "upstream", 1, map[string]any{"timeout": 0})
			m.proc = startProc(t, m.name, filepath.Join(m.dir, "serve.log"), baseEnv(), tl.mirror, "serve", "--config", m.config)
			deadline := time.Now().Add(20 * time.Second)
			for {
				if m.proc.exited() {
					t.Fatalf("%s exited at start with its source down; log:\n%s", m.name, m.proc.logTail())
				}
				if mf, err := servedManifest(context.Background(), m); err == nil && mf != nil {
					if mf.Sequence != held {
						t.Fatalf("with the source down the mirror serves version %d, want its held sequence %d", mf.Sequence, held)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s did not serve its held snapshot within 20s with its source down; log:\n%s", m.name, m.proc.logTail())
				}
				time.Sleep(50 * time.Millisecond)
			}
			link.clear()
			// The next snapshot arrives once the link heals.
			f, _ := randomFile(t, files, "boot-"+lk.name+".tar.gz", 48<<10)
			cp.release(product, fmt.Sprintf("2.%d.0", seq2), f)
			_, seqN := cp.snapshot(tenant)
			replicate(t, bucket, prefix, cp.exportBundle(tenant, 0))
			seq2 = seqN
			m.waitSequence(seqN)
			figure(t, "net/boot/"+lk.name, "started with its source down: served held sequence %d; synced %d after the heal", held, seqN)
		})
	}
}

// Toxiproxy logs through zerolog's global logger: keep the test output
// for the test.
func init() { zerolog.SetGlobalLevel(zerolog.Disabled) }
