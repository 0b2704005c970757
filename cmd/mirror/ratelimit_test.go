package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/sync/synctest"
)

// limitedDaemon starts the real binary with extra config lines.
func limitedDaemon(t *testing.T, extra string) *daemon {
	t.Helper()
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	dir := t.TempDir()
	cfg := trustConfig(t, dir, v) + fmt.Sprintf("source: none\nlog_level: error\n%s", extra)
	path := filepath.Join(dir, "mirror.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, bin, path)
}

// hit sends one request and returns its status and Retry-After.
func hit(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestMirror_RateLimits drives the real daemon past its per-client
// limits on the lease route: 429 with Retry-After once the burst is
// spent, keyed by client token when tokens are configured (another
// token still passes), by IP otherwise, and off with rate 0.
func TestMirror_RateLimits(t *testing.T) {
	const burst = 3
	limits := fmt.Sprintf("rate_limit:\n  leases: {rate: 0.01, burst: %d}\n  events: {rate: 0.01, burst: %d}\n", burst, burst)
	lease := `{"entitlement_id":"ent_x","subject_type":"device"}`

	t.Run("keyed by client token", func(t *testing.T) {
		d := limitedDaemon(t, limits+"client_tokens: [tok-a, tok-b]\n")
		for i := range burst {
			if code, _ := hit(t, "PUT", d.base+"/v1/leases/dev1", "tok-a", lease); code == http.StatusTooManyRequests {
				t.Fatalf("request %d within the burst got 429", i+1)
			}
		}
		code, after := hit(t, "PUT", d.base+"/v1/leases/dev1", "tok-a", lease)
		if code != http.StatusTooManyRequests {
			t.Fatalf("request past the burst = %d, want 429", code)
		}
		if n, err := strconv.Atoi(after); err != nil || n < 1 {
			t.Errorf("Retry-After = %q, want a positive number of seconds", after)
		}
		if code, _ := hit(t, "PUT", d.base+"/v1/leases/dev2", "tok-b", lease); code == http.StatusTooManyRequests {
			t.Error("another client token was limited by tok-a's requests")
		}
		if code, _ := hit(t, "PUT", d.base+"/v1/leases/dev1", "wrong", lease); code != http.StatusUnauthorized {
			t.Errorf("a bad token = %d, want 401", code)
		}
		if code, _ := hit(t, "GET", d.base+"/v1/status", "tok-a", ""); code != http.StatusOK {
			t.Errorf("status for a limited client = %d, want 200 (only leases and events are limited)", code)
		}
		_, body := get(t, d.base+"/metrics")
		if !strings.Contains(body, `outpost_mirror_rate_limited_total{route="leases"} 1`) {
			t.Errorf("/metrics lacks the leases 429 count")
		}
	})
	t.Run("the event route, keyed by client token", func(t *testing.T) {
		d := limitedDaemon(t, limits+"client_tokens: [tok-a, tok-b]\n")
		batch := `{"events":[{"type":"check","client_id":"c-7f3a9b21","release_id":"rel_00000000000000000000000001","to_version":"1.1.0"}]}`
		for i := range burst {
			if code, _ := hit(t, "POST", d.base+"/v1/events", "tok-a", batch); code == http.StatusTooManyRequests {
				t.Fatalf("event batch %d within the burst got 429", i+1)
			}
		}
		code, after := hit(t, "POST", d.base+"/v1/events", "tok-a", batch)
		if code != http.StatusTooManyRequests {
			t.Fatalf("event batch past the burst = %d, want 429", code)
		}
		if n, err := strconv.Atoi(after); err != nil || n < 1 {
			t.Errorf("Retry-After = %q, want a positive number of seconds", after)
		}
		if code, _ := hit(t, "POST", d.base+"/v1/events", "tok-b", batch); code == http.StatusTooManyRequests {
			t.Error("another client token was limited by tok-a's batches")
		}
		_, body := get(t, d.base+"/metrics")
		if !strings.Contains(body, `outpost_mirror_rate_limited_total{route="events"} 1`) {
			t.Errorf("/metrics lacks the events 429 count")
		}
	})
	t.Run("keyed by IP without client tokens", func(t *testing.T) {
		d := limitedDaemon(t, limits)
		got := 0
		for range burst + 2 {
			if code, _ := hit(t, "DELETE", d.base+"/v1/leases/dev1", "", ""); code == http.StatusTooManyRequests {
				got++
			}
		}
		if got != 2 {
			t.Errorf("%d of %d requests got 429, want 2", got, burst+2)
		}
	})
	t.Run("rate 0 disables", func(t *testing.T) {
		d := limitedDaemon(t, "rate_limit:\n  leases: {rate: 0}\n")
		for i := range 30 {
			if code, _ := hit(t, "PUT", d.base+"/v1/leases/dev1", "", lease); code == http.StatusTooManyRequests {
				t.Fatalf("request %d got 429 with the limit disabled", i+1)
			}
		}
	})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
