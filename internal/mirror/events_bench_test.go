package mirror_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/mirror"
)

// peakRSSMiB is the process's peak RSS (VmHWM) in MiB, 0 when unknown.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkMirror_EventsIngestHTTP posts batches of client events to a
// running Mirror (the daemon type over a real loopback listener, client
// token checked, rate limits off, events stored in mirror.db): one op is
// one event. peak-RSS-MiB is the whole test process (client, server and
// bbolt's map).
//
//	go test -run '^$' -bench Mirror_EventsIngest -benchtime 200000x ./internal/mirror/
func BenchmarkMirror_EventsIngestHTTP(b *testing.B) {
	const batch = 500
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM where allowed
	dir := b.TempDir()
	m, err := mirror.Open(context.Background(), mirror.Config{
		DBPath: filepath.Join(dir, "mirror.db"), DataDir: dir, Listen: "127.0.0.1:0",
		ClientTokens: []string{"bench-token"},
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	defer func() {
		m.Close(context.Background())
		<-done
	}()
	rel := catalog.NewID(catalog.PrefixRelease)
	now := time.Now().UTC().Format(time.RFC3339)
	var body bytes.Buffer
	body.WriteString(`{"events":[`)
	types := []string{"check", "download_ok", "install_ok", "install_failed"}
	for i := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		t := types[i%len(types)]
		extra := ""
		if t != "check" {
			extra = `,"release_id":"` + rel + `","to_version":"1.2.3"`
		}
		if t == "install_failed" {
			extra += `,"error_code":"E_DISK_FULL"`
		}
		fmt.Fprintf(&body, `{"type":%q,"client_id":"c-%08d","from_version":"1.2.2","duration_ms":1200,"time":%q%s}`, t, i, now, extra)
	}
	body.WriteString(`]}`)
	payload := body.Bytes()
	url := "http://" + m.Addr().String() + "/v1/events"
	hc := &http.Client{}
	b.SetBytes(int64(len(payload) / batch))
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += batch {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer bench-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("POST /v1/events = %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	sent := (b.N + batch - 1) / batch * batch
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}
