package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// tcpProxy forwards loopback TCP to target and can be cut (every
// connection closed, new ones reset) and restored, like a server that
// goes away and comes back on the same address, or black-holed (open
// connections go silent for good, new ones work), like a dropped NAT
// entry. It counts the bytes it forwards from target to the client.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     gosync.WaitGroup
	done   chan struct{}
	down   atomic.Bool
	hole   atomic.Int64 // connections of a generation below this are silent
	gen    atomic.Int64
	bytes  atomic.Int64

	mu    gosync.Mutex
	conns map[net.Conn]bool
	// at, when > 0, runs onAt once that many bytes were forwarded.
	at   int64
	onAt func()
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		close(p.done)
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// trigger runs f once n more bytes have been forwarded.
func (p *tcpProxy) trigger(n int64, f func()) {
	p.mu.Lock()
	p.at, p.onAt = p.bytes.Load()+n, f
	p.mu.Unlock()
}

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			reset(c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			reset(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		gen := p.gen.Add(1)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(up, c)
			up.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.pipe(c, up, gen)
			c.Close()
		}()
	}
}

// pipe copies target → client, counting and triggering.
func (p *tcpProxy) pipe(dst, src net.Conn, gen int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if gen < p.hole.Load() {
			<-p.done // silent until the test ends
			return
		}
		if n > 0 {
			p.mu.Lock()
			at, onAt := p.at, p.onAt
			b := buf[:n]
			sent := p.bytes.Load()
			fire := at > 0 && sent+int64(n) >= at
			if fire {
				b = buf[:at-sent]
				p.at, p.onAt = 0, nil
			}
			p.mu.Unlock()
			w, _ := dst.Write(b)
			p.bytes.Add(int64(w))
			if fire {
				onAt()
				if gen < p.hole.Load() {
					<-p.done
				}
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// blackhole silences every open connection for good.
func (p *tcpProxy) blackhole() { p.hole.Store(p.gen.Load() + 1) }

// cut closes every connection, as a dying server's kernel would (what was
// sent still arrives, then EOF), and resets new ones until restore.
func (p *tcpProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) restore() { p.down.Store(false) }

// reset closes c with an RST, as a dying server's kernel would.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// front puts an HTTP server in front of the fake control plane: timestamp
// requests (the first metadata of every sync) go to fault first (it
// answers by returning true), everything else is proxied.
func front(t *testing.T, cp *synctest.TUFControlPlane, fault func(n int, w http.ResponseWriter, r *http.Request) bool) (*httptest.Server, *[]time.Time) {
	t.Helper()
	u, _ := url.Parse(cp.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu gosync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/mirror/tuf/metadata/timestamp.json" {
			mu.Lock()
			times = append(times, time.Now())
			n := len(times)
			mu.Unlock()
			if fault(n, w, r) {
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &times
}

func dropConn(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		reset(c)
	}
}

func TestSyncer_MetadataRetry(t *testing.T) {
	status := func(code int, retryAfter string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, "fault", code)
		}
	}
	tests := []struct {
		name     string
		fail     func(w http.ResponseWriter) // the answer to the first failures
		failures int
		// maxBackoff is the syncer's cap (also on Retry-After).
		maxBackoff time.Duration
		wantOK     bool
		wantReqs   int
		// minGap is the least pause wanted between the first two
		// requests; maxGap the most.
		minGap, maxGap time.Duration
	}{
		{name: "503 then ok", fail: status(503, ""), failures: 2, wantOK: true, wantReqs: 3},
		{name: "502 then ok", fail: status(502, ""), failures: 1, wantOK: true, wantReqs: 2},
		{name: "408 then ok", fail: status(408, ""), failures: 1, wantOK: true, wantReqs: 2},
		{name: "connection reset then ok", fail: dropConn, failures: 2, wantOK: true, wantReqs: 3},
		{name: "429 Retry-After is respected", fail: status(429, "1"), failures: 1, maxBackoff: 3 * time.Second,
			wantOK: true, wantReqs: 2, minGap: 950 * time.Millisecond, maxGap: 2500 * time.Millisecond},
		{name: "503 Retry-After as a date", fail: status(503, time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat)), failures: 1,
			maxBackoff: 5 * time.Second, wantOK: true, wantReqs: 2, minGap: 500 * time.Millisecond, maxGap: 3500 * time.Millisecond},
		{name: "Retry-After is capped", fail: status(429, "3600"), failures: 1, maxBackoff: 300 * time.Millisecond,
			wantOK: true, wantReqs: 2, minGap: 250 * time.Millisecond, maxGap: 2 * time.Second},
		{name: "404 is not retried", fail: status(404, ""), failures: 5, wantReqs: 1},
		{name: "403 is not retried", fail: status(403, ""), failures: 5, wantReqs: 1},
		{name: "401 is not retried", fail: status(401, ""), failures: 5, wantReqs: 1},
		{name: "400 is not retried", fail: status(400, ""), failures: 5, wantReqs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			r.publish(t, 1, []synctest.Art{{ID: "art_a", Data: synctest.Random(1000)}})
			srv, times := front(t, r.cp, func(n int, w http.ResponseWriter, _ *http.Request) bool {
				if n <= tt.failures {
					tt.fail(w)
					return true
				}
				return false
			})
			src, err := sync.NewControlPlane(srv.URL, r.cp.Credential, nil)
			if err != nil {
				t.Fatal(err)
			}
			maxB := tt.maxBackoff
			if maxB == 0 {
				maxB = 20 * time.Millisecond
			}
			s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(),
				InitialBackoff: 5 * time.Millisecond, MaxBackoff: maxB, MaxElapsed: 10 * time.Second})
			// A Retry-After that escaped its cap would hold Once past this.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			res, err := s.Once(ctx)
			if got := err == nil; got != tt.wantOK {
				t.Fatalf("Once ok = %v (%v), want %v", got, err, tt.wantOK)
			}
			if tt.wantOK && (res.Sequence != 1 || !res.Changed) {
				t.Errorf("result = %+v, want sequence 1 committed", res)
			}
			if got := len(*times); got != tt.wantReqs {
				t.Errorf("timestamp requests = %d, want %d", got, tt.wantReqs)
			}
			if tt.minGap > 0 && len(*times) >= 2 {
				gap := (*times)[1].Sub((*times)[0])
				if gap < tt.minGap || gap > tt.maxGap {
					t.Errorf("pause before the retry = %s, want %s..%s", gap, tt.minGap, tt.maxGap)
				}
			}
		})
	}
}

func TestSyncer_MetadataVerificationNotRetried(t *testing.T) {
	r := newRig(t)
	r.publish(t, 1, []synctest.Art{{ID: "art_a", Data: []byte("a")}})
	// The timestamp signed by a key the root does not name.
	rogue := tuftest.Signer(t, 200)
	bad := tuftest.Resign[metadata.TimestampType](t, r.v.TUF, "metadata/timestamp.json", func(*metadata.Metadata[metadata.TimestampType]) {}, rogue)
	srv, times := front(t, r.cp, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.Write(bad)
		return true
	})
	src, _ := sync.NewControlPlane(srv.URL, r.cp.Credential, nil)
	_, err := r.syncer(src).Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("Once error = %v, want the timestamp refused", err)
	}
	if got := len(*times); got != 1 {
		t.Errorf("timestamp requests = %d, want 1 (a verification failure is final)", got)
	}
	if got := r.heldSeq(t); got != 0 {
		t.Errorf("held sequence = %d, want 0", got)
	}
}

// An unreachable control plane (connection refused, first sync: even the
// mirror record is out of reach) that comes back within the backoff
// window: one sync finishes, with the control plane's channels.
func TestSyncer_UnreachableSourceComesBack(t *testing.T) {
	r := newRig(t)
	stable := synctest.Art{ID: "art_a", Data: synctest.Random(10 << 10)}
	beta := synctest.Art{ID: "art_b", Channel: "beta", Data: synctest.Random(10)}
	r.publish(t, 1, []synctest.Art{stable, beta})
	u, _ := url.Parse(r.cp.URL)
	p := newTCPProxy(t, u.Host)
	p.cut()
	time.AfterFunc(300*time.Millisecond, p.restore)
	src, _ := sync.NewControlPlane("http://"+p.Addr(), r.cp.Credential, nil)
	s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(),
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxElapsed: 10 * time.Second})
	start := time.Now()
	res, err := s.Once(context.Background())
	if err != nil || res.Sequence != 1 || res.Downloaded != 1 {
		t.Fatalf("Once = %+v, %v; want sequence 1 with 1 download", res, err)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("Once took %s: the source was down for 300ms", el)
	}
	if got := r.cp.Requests(synctest.SHA(beta.Data)); got != 0 {
		t.Errorf("beta artifact requests = %d, want 0 (channels from the mirror record)", got)
	}
}

// outageSize is the artifact the outage tests download.
const outageSize = 4 << 20

// outageSources are the sources the outage tests put a tcpProxy in front
// of: setup stores a and returns the address to proxy and how to make the
// source through the proxy's address.
var outageSources = []struct {
	name  string
	setup func(t *testing.T, r *rig, a synctest.Art) (target string, mk func(addr string) sync.Source)
}{
	{"control plane", func(t *testing.T, r *rig, a synctest.Art) (string, func(string) sync.Source) {
		r.publish(t, 1, []synctest.Art{a})
		u, _ := url.Parse(r.cp.URL)
		return u.Host, func(addr string) sync.Source {
			src, _ := sync.NewControlPlane("http://"+addr, r.cp.Credential, nil)
			return src
		}
	}},
	{"s3 bucket", func(t *testing.T, r *rig, a synctest.Art) (string, func(string) sync.Source) {
		ctx := context.Background()
		cfg := testenv.S3(t)
		direct, err := s3.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.publish(t, 1, []synctest.Art{a})
		putRepo(t, direct, "outpost/", r.v.TUF.Repo, nil)
		return cfg.Endpoint, func(addr string) sync.Source {
			c := cfg
			c.Endpoint = addr
			st, err := s3.New(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			return sync.NewBucket(st, "outpost/")
		}
	}},
}

// The source goes away in the middle of an artifact and comes back: the
// same sync resumes from the partial file and finishes, and what crosses
// the wire after the outage is only the bytes that were not yet on disk.
func TestSyncer_SourceOutageMidArtifact(t *testing.T) {
	const size = outageSize
	for _, tt := range outageSources {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			a := synctest.Art{ID: "art_big", Data: synctest.Random(size)}
			sha := synctest.SHA(a.Data)
			target, mk := tt.setup(t, r, a)
			p := newTCPProxy(t, target)
			src := mk(p.Addr())
			var onDisk, before atomic.Int64
			restored := make(chan struct{})
			p.trigger(size/2, func() {
				p.cut()
				go func() {
					time.Sleep(400 * time.Millisecond) // down for a while
					// Nothing is read while the source is down: this is
					// what the first attempt got onto disk.
					onDisk.Store(r.cache.PartialSize(sha))
					before.Store(p.bytes.Load())
					p.restore()
					close(restored)
				}()
			})
			s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(),
				InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxElapsed: 20 * time.Second})
			res, err := s.Once(context.Background())
			if err != nil || res.Sequence != 1 || res.Downloaded != 1 {
				t.Fatalf("Once = %+v, %v; want sequence 1 with 1 download", res, err)
			}
			select {
			case <-restored:
			default:
				t.Fatal("the source was never cut")
			}
			if !r.cache.Has(sha, size) {
				t.Fatal("artifact not cached")
			}
			t.Logf("partial at the outage %d, bytes before %d, after %d", onDisk.Load(), before.Load(), p.bytes.Load()-before.Load())
			if got := onDisk.Load(); got < size/4 {
				t.Fatalf("partial at the outage = %d bytes, want a good part of the %d sent", got, size/2)
			}
			// Headers and S3's XML cost a few KiB; a download from scratch
			// would cost all of it again.
			after := p.bytes.Load() - before.Load()
			if want := size - onDisk.Load(); after < want || after > want+64<<10 {
				t.Errorf("bytes after the outage = %d, want %d plus headers (partial %d kept)", after, want, onDisk.Load())
			}
		})
	}
}

// The source goes silent in the middle of an artifact without closing the
// connection (a dropped NAT entry, a hung server): the watchdog abandons
// the attempt and the retry resumes on a new connection, so the sync
// finishes and no byte crosses the wire twice.
func TestSyncer_SourceStallsMidArtifact(t *testing.T) {
	const size = outageSize
	for _, tt := range outageSources {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			a := synctest.Art{ID: "art_big", Data: synctest.Random(size)}
			target, mk := tt.setup(t, r, a)
			p := newTCPProxy(t, target)
			src := mk(p.Addr())
			start := p.bytes.Load()
			p.trigger(size/2, p.blackhole)
			s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(), StallTimeout: 300 * time.Millisecond,
				InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxElapsed: 20 * time.Second})
			// Without the watchdog the sync would wait on the silent
			// connection until this deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := s.Once(ctx)
			if err != nil || res.Sequence != 1 || res.Downloaded != 1 {
				t.Fatalf("Once = %+v, %v; want sequence 1 with 1 download", res, err)
			}
			if p.hole.Load() == 0 {
				t.Fatal("the source never went silent")
			}
			if got := p.bytes.Load() - start; got < size || got > size+64<<10 {
				t.Errorf("bytes through the proxy = %d, want %d plus headers", got, size)
			}
		})
	}
}

// recordingProxy is an HTTP reverse proxy in front of the S3 server that
// records what reaches it.
type recordingProxy struct {
	*httptest.Server
	mu    gosync.Mutex
	reqs  []*http.Request
	bytes atomic.Int64
}

func newRecordingProxy(t *testing.T, endpoint string) *recordingProxy {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: endpoint})
	p := &recordingProxy{}
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &p.bytes}
		return nil
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, r.Clone(context.Background()))
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// The control plane answers an artifact with a 302 to a real presigned S3
// URL: the mirror credential never reaches S3, and a partial download
// resumes across the redirect with Range.
func TestHTTPSource_PresignedS3Redirect(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.S3(t)
	direct, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	data := synctest.Random(size)
	sha := synctest.SHA(data)
	key := "artifacts/" + sha
	if _, err := direct.Put(ctx, key, bytes.NewReader(data), blob.Expect{}); err != nil {
		t.Fatal(err)
	}
	proxy := newRecordingProxy(t, cfg.Endpoint)
	pcfg := cfg
	pcfg.Endpoint = strings.TrimPrefix(proxy.URL, "http://")
	presigner, err := s3.New(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy.mu.Lock()
	proxy.reqs = nil // forget s3.New's own requests
	proxy.mu.Unlock()

	r := newRig(t)
	r.publish(t, 1, []synctest.Art{{ID: "art_s3", Data: data}})
	var cpRange string
	r.cp.Fault = func(sha string, w http.ResponseWriter, req *http.Request) bool {
		if sha == "" {
			return false // metadata
		}
		cpRange = req.Header.Get("Range")
		u, err := presigner.PresignGet(req.Context(), key, 5*time.Minute)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return true
		}
		http.Redirect(w, req, u, http.StatusFound)
		return true
	}
	// An earlier attempt left the first 300 KiB.
	const have = 300 << 10
	_, err = r.cache.Fetch(ctx, sha, size, func(context.Context, int64) (*fetch.Body, error) {
		return &fetch.Body{ReadCloser: io.NopCloser(io.MultiReader(bytes.NewReader(data[:have]), iotestErr{})), Total: -1}, nil
	})
	if err == nil || r.cache.PartialSize(sha) != have {
		t.Fatalf("seeding the partial: %v, partial %d", err, r.cache.PartialSize(sha))
	}

	res, err := r.s.Once(ctx)
	if err != nil || res.Sequence != 1 {
		t.Fatalf("Once = %+v, %v", res, err)
	}
	if !r.cache.Has(sha, size) {
		t.Fatal("artifact not cached")
	}
	if cpRange != fmt.Sprintf("bytes=%d-", have) {
		t.Errorf("control plane got Range %q, want bytes=%d-", cpRange, have)
	}
	proxy.mu.Lock()
	reqs := proxy.reqs
	proxy.mu.Unlock()
	if len(reqs) != 1 {
		t.Fatalf("S3 requests = %d, want 1", len(reqs))
	}
	got := reqs[0]
	if a := got.Header.Get("Authorization"); a != "" {
		t.Errorf("S3 received Authorization %q", a)
	}
	for k, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, r.cp.Credential) {
				t.Errorf("S3 received the credential in header %s", k)
			}
		}
	}
	if got.URL.Query().Get("X-Amz-Signature") == "" {
		t.Errorf("S3 request %s is not the presigned URL", got.URL)
	}
	if rg := got.Header.Get("Range"); rg != fmt.Sprintf("bytes=%d-", have) {
		t.Errorf("S3 got Range %q, want bytes=%d-", rg, have)
	}
	if n := proxy.bytes.Load(); n != size-have {
		t.Errorf("bytes from S3 = %d, want %d (the rest only)", n, size-have)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection lost") }

// countingSource counts the artifact bytes the syncer reads from a source.
type countingSource struct {
	sync.Source
	read atomic.Int64
}

func (c *countingSource) TUFTarget(ctx context.Context, path string, off int64) (*fetch.Body, error) {
	b, err := c.Source.TUFTarget(ctx, path, off)
	if err != nil {
		return nil, err
	}
	b.ReadCloser = &countingBody{ReadCloser: b.ReadCloser, n: &c.read}
	return b, nil
}

// endless writes zeros until the client goes away.
func endless(done chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}
}

// Every source that sends more than size_bytes is read to one byte over
// and no further; nothing is cached or committed.
func TestSyncer_OversizeStoppedAtOneByte(t *testing.T) {
	const size = 200 << 10
	data := synctest.Random(size)
	sha := synctest.SHA(data)
	over := append(append([]byte(nil), data...), synctest.Random(1<<20)...)
	tests := []struct {
		name string
		// src serves v's repository and, for the artifact, more than
		// size bytes; done, when not nil, is closed once the server
		// stopped writing.
		src func(t *testing.T, v *synctest.TUFVendor) (sync.Source, chan struct{})
	}{
		{"control plane", func(t *testing.T, v *synctest.TUFVendor) (sync.Source, chan struct{}) {
			cp := synctest.NewTUFControlPlane(t, v)
			cp.Fault = func(sha string, w http.ResponseWriter, r *http.Request) bool {
				if sha == "" {
					return false
				}
				w.Write(over)
				return true
			}
			src, _ := sync.NewControlPlane(cp.URL, cp.Credential, nil)
			return src, nil
		}},
		{"control plane, endless", func(t *testing.T, v *synctest.TUFVendor) (sync.Source, chan struct{}) {
			cp := synctest.NewTUFControlPlane(t, v)
			done := make(chan struct{})
			h := endless(done)
			cp.Fault = func(sha string, w http.ResponseWriter, r *http.Request) bool {
				if sha == "" {
					return false
				}
				h(w, r)
				return true
			}
			src, _ := sync.NewControlPlane(cp.URL, cp.Credential, nil)
			return src, done
		}},
		{"upstream mirror, endless", func(t *testing.T, v *synctest.TUFVendor) (sync.Source, chan struct{}) {
			done := make(chan struct{})
			src := upstreamWithTarget(t, v, sha, endless(done))
			return src, done
		}},
		{"upstream mirror", func(t *testing.T, v *synctest.TUFVendor) (sync.Source, chan struct{}) {
			return upstreamWithTarget(t, v, sha, func(w http.ResponseWriter, r *http.Request) { w.Write(over) }), nil
		}},
		{"s3 bucket", func(t *testing.T, v *synctest.TUFVendor) (sync.Source, chan struct{}) {
			st, err := s3.New(context.Background(), testenv.S3(t))
			if err != nil {
				t.Fatal(err)
			}
			putRepo(t, st, "", v.TUF.Repo, map[string][]byte{sha: over})
			return sync.NewBucket(st, ""), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := synctest.NewTUFVendor(t)
			v.Publish(v.Manifest(1, []synctest.Art{{ID: "art_a", Data: data}}))
			inner, done := tt.src(t, v)
			src := &countingSource{Source: inner}
			st, c := newMirror(t)
			s := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}, Attempts: 1,
				InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxElapsed: 2 * time.Second})
			_, err := s.Once(context.Background())
			if !errors.Is(err, cache.ErrTooLarge) {
				t.Fatalf("Once error = %v, want %v", err, cache.ErrTooLarge)
			}
			if got := src.read.Load(); got != size+1 {
				t.Errorf("bytes read from the source = %d, want %d (one over)", got, size+1)
			}
			if c.Has(sha, size) || c.PartialSize(sha) != 0 {
				t.Errorf("cached = %v, partial = %d; want neither", c.Has(sha, size), c.PartialSize(sha))
			}
			if h, _ := st.Current(); h != nil {
				t.Errorf("held sequence %d, want none", h.Sequence)
			}
			if done != nil {
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Error("the endless source is still writing: the connection was not closed")
				}
			}
		})
	}
}

// The last gate before a commit.
func TestSyncer_CommitGate(t *testing.T) {
	t.Run("snapshot expires while its artifacts download", func(t *testing.T) {
		r := newRig(t)
		var skew atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		a := synctest.Art{ID: "art_a", Data: synctest.Random(1000)}
		r.publish(t, 1, []synctest.Art{a})
		r.cp.Fault = func(sha string, _ http.ResponseWriter, _ *http.Request) bool {
			if sha != "" {
				skew.Store(int64(48 * time.Hour)) // the download took two days
			}
			return false
		}
		src, _ := sync.NewControlPlane(r.cp.URL, r.cp.Credential, nil)
		s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(), Now: now})
		_, err := s.Once(context.Background())
		if !errors.Is(err, sync.ErrExpired) {
			t.Fatalf("Once error = %v, want %v", err, sync.ErrExpired)
		}
		if got := r.heldSeq(t); got != 0 {
			t.Errorf("held sequence = %d, want 0", got)
		}
	})
	t.Run("two artifacts share a sha256 but not a size", func(t *testing.T) {
		r := newRig(t)
		d := synctest.Random(1000)
		arts := []synctest.Art{{ID: "art_a", Data: d}, {ID: "art_b", Data: d, SizeBytes: int64(len(d)) + 1}}
		r.publish(t, 1, arts)
		res, err := r.s.Once(context.Background())
		if err == nil {
			t.Fatalf("Once = %+v: committed with art_b (%d bytes) never fetched", res, len(d)+1)
		}
		if !strings.Contains(err.Error(), "art_b") {
			t.Errorf("Once error = %v, want it to name art_b", err)
		}
		if got := r.heldSeq(t); got != 0 {
			t.Errorf("held sequence = %d, want 0", got)
		}
	})
}

// A first sync whose control plane never answers gives up after
// MaxElapsed without fetching anything: it does not know its channels.
func TestSyncer_FirstSyncNeedsMirrorRecord(t *testing.T) {
	r := newRig(t)
	r.publish(t, 1, []synctest.Art{{ID: "art_a", Data: []byte("a")}})
	u, _ := url.Parse(r.cp.URL)
	p := newTCPProxy(t, u.Host)
	p.cut()
	src, _ := sync.NewControlPlane("http://"+p.Addr(), r.cp.Credential, nil)
	s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(),
		InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxElapsed: 200 * time.Millisecond})
	start := time.Now()
	_, err := s.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "allowed channels unknown") {
		t.Fatalf("Once error = %v, want the mirror record's failure", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Once took %s, want about MaxElapsed (200ms)", el)
	}
	if _, known, _ := r.st.AllowedChannels(); known {
		t.Error("allowed channels recorded without a mirror record")
	}
}

// Some servers answer 206 with the whole body to a request without
// Range; that is a full download, not an error to retry.
func TestHTTPSource_PartialContentFromZero(t *testing.T) {
	r := newRig(t)
	data := synctest.Random(10 << 10)
	r.publish(t, 1, []synctest.Art{{ID: "art_a", Data: data}})
	r.cp.Fault = func(sha string, w http.ResponseWriter, req *http.Request) bool {
		if sha == "" {
			return false
		}
		start := synctest.RangeStart(req)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data[start:])
		return true
	}
	res, err := r.s.Once(context.Background())
	if err != nil || res.Sequence != 1 {
		t.Fatalf("Once = %+v, %v", res, err)
	}
	if got := r.cp.Requests(synctest.SHA(data)); got != 1 {
		t.Errorf("artifact requests = %d, want 1", got)
	}
}

// putRepo puts every file of repo into st under prefix, the bytes of a
// target whose sha256 is a key of replace replaced by its value.
func putRepo(t *testing.T, st blob.Store, prefix string, repo *tufhttp.MemRepo, replace map[string][]byte) {
	t.Helper()
	for _, p := range repo.Paths() {
		data := repo.Get(p)
		for sha, b := range replace {
			if strings.Contains(p, "/"+sha+".") {
				data = b
			}
		}
		if _, err := st.Put(context.Background(), prefix+p, bytes.NewReader(data), blob.Expect{}); err != nil {
			t.Fatal(err)
		}
	}
}

// upstreamWithTarget serves v's repository as an upstream mirror does
// (/tuf/), the artifact with this sha256 answered by h.
func upstreamWithTarget(t *testing.T, v *synctest.TUFVendor, sha string, h http.HandlerFunc) sync.Source {
	t.Helper()
	repo := tufhttp.New(v.TUF.Repo, tufhttp.Options{Prefix: "/tuf/"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tuf/targets/") && strings.Contains(r.URL.Path, "/"+sha+".") {
			h(w, r)
			return
		}
		repo.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	src, err := sync.NewUpstream(srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}
