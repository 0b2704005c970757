package tufhttp

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/tuf"
)

// httpFetcher is a tuf.Fetcher over HTTP that asks for gzip and counts
// the bytes on the wire (bodies as sent) and once decoded.
type httpFetcher struct {
	base        string
	gzip        bool
	wire, plain atomic.Int64
}

func (f *httpFetcher) Fetch(ctx context.Context, path string, _ int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	if f.gzip {
		req.Header.Set("Accept-Encoding", "gzip") // set by hand: the transport does not decode
	} else {
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: status %d", path, resp.StatusCode)
	}
	body := &counting{r: resp.Body, n: &f.wire}
	var r io.Reader = body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			resp.Body.Close()
			return nil, err
		}
		r = zr
	}
	return struct {
		io.Reader
		io.Closer
	}{&counting{r: r, n: &f.plain}, resp.Body}, nil
}

type counting struct {
	r io.Reader
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestHandler_WireGzip(t *testing.T) {
	v := newVendor(t, tuf.ProductOptions{PerBin: 4})
	m := view(2, 100, 1)
	v.build(m)
	srv := v.serve(Options{})
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			f := &httpFetcher{base: srv.URL + "/tuf", gzip: gz}
			s := tuf.NewMemStore()
			if err := tuf.Init(context.Background(), s, v.tenantID, v.rootData); err != nil {
				t.Fatal(err)
			}
			c := tuf.NewClient(v.tenantID, f, s, tuf.ClientOptions{Now: func() time.Time { return v.now }})
			ch, err := c.Update(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := f.plain.Load(); got != ch.BytesFetched {
				t.Fatalf("decoded %d bytes, the client counted %d", got, ch.BytesFetched)
			}
			if gz && f.wire.Load()*2 > f.plain.Load() {
				t.Fatalf("gzip: %d bytes on the wire for %d, want at most half", f.wire.Load(), f.plain.Load())
			}
			if !gz && f.wire.Load() != f.plain.Load() {
				t.Fatalf("identity: %d bytes on the wire for %d", f.wire.Load(), f.plain.Load())
			}
		})
	}
}

// BenchmarkWire_OneRelease measures the bytes on the wire, through the
// handler with gzip, for a synced client after one new release in a
// 100,000-release tenant (10 products x 10,000 releases x 1 artifact,
// default bins), and for a freshness-only refresh.
//
//	go test -run XXX -bench Wire -benchtime 1x ./internal/tuf/tufhttp
func BenchmarkWire_OneRelease(b *testing.B) {
	ctx := context.Background()
	v := newVendor(b, tuf.ProductOptions{})
	m := view(10, 10_000, 1)
	v.build(m)
	srv := v.serve(Options{})
	f := &httpFetcher{base: srv.URL + "/tuf", gzip: true}
	s := tuf.NewMemStore()
	if err := tuf.Init(ctx, s, v.tenantID, v.rootData); err != nil {
		b.Fatal(err)
	}
	c := tuf.NewClient(v.tenantID, f, s, tuf.ClientOptions{Now: func() time.Time { return v.now }})
	if _, err := c.Update(ctx); err != nil {
		b.Fatal(err)
	}
	firstRaw, firstWire := f.plain.Load(), f.wire.Load()
	var oneWire, oneRaw, refWire, refRaw int64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		addRelease(m, i%10, 100+i)
		v.build(m)
		f.wire.Store(0)
		f.plain.Store(0)
		b.StartTimer()
		if _, err := c.Update(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		oneWire, oneRaw = f.wire.Load(), f.plain.Load()
		st, files, err := v.builder.Refresh(ctx, v.state, v.now.Add(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		v.state = st
		v.repo.Publish(files)
		f.wire.Store(0)
		f.plain.Store(0)
		if _, err := c.Update(ctx); err != nil {
			b.Fatal(err)
		}
		refWire, refRaw = f.wire.Load(), f.plain.Load()
		b.StartTimer()
	}
	b.ReportMetric(float64(firstRaw), "first-raw-B")
	b.ReportMetric(float64(firstWire), "first-wire-B")
	b.ReportMetric(float64(oneRaw), "one-release-raw-B")
	b.ReportMetric(float64(oneWire), "one-release-wire-B")
	b.ReportMetric(float64(refRaw), "refresh-raw-B")
	b.ReportMetric(float64(refWire), "refresh-wire-B")
}
