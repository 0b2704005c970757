package update

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/update/updatetest"
	"github.com/outpost/outpost/internal/wire"
)

func serve(t *testing.T, e *Engine) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Handle(w, r, e, now)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHandle_Behaviour(t *testing.T) {
	f := newFixture().product("prd_a", "open").
		release("rel_1", "prd_a", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
		release("rel_2", "prd_a", "stable", "1.1.0", "ACTIVE", "linux/x64/deb")
	srv := serve(t, f.engine(t))
	ok := "product=prd_a&channel=stable&platform=linux&arch=x64&version=1.0.0"
	tests := []struct {
		name, method, query string
		status              int
		body                string // substring
	}{
		{"offered", "GET", ok, 200, `"update_available":true`},
		{"head", "HEAD", ok, 200, ""},
		{"up to date", "GET", "product=prd_a&channel=stable&platform=linux&arch=x64&version=1.1.0", 200, `"reason":"no newer release"`},
		{"missing parameter", "GET", "product=prd_a", 400, `{"error":{"code":"invalid","message":"channel: is required","field":"channel"}}`},
		{"bad version", "GET", "product=prd_a&channel=stable&platform=linux&arch=x64&version=latest", 400, `version: \"latest\" is not a semantic version`},
		{"unknown product", "GET", "product=prd_b&channel=stable&platform=linux&arch=x64&version=1.0.0", 404, `{"error":{"code":"not_found","message":"product \"prd_b\" not found"}}`},
		{"unknown channel", "GET", "product=prd_a&channel=beta&platform=linux&arch=x64&version=1.0.0", 404, `"code":"not_found"`},
		{"post", "POST", ok, 404, `{"error":{"code":"not_found","message":"no route for POST /v1/updates/check"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/v1/updates/check?"+tc.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("content-type = %q", got)
			}
			if tc.method == "HEAD" {
				if len(body) != 0 {
					t.Errorf("HEAD has a body")
				}
				return
			}
			if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
				t.Errorf("content-length = %s, body %d bytes", got, len(body))
			}
			if !bytes.Contains(body, []byte(tc.body)) || !json.Valid(body) {
				t.Errorf("body %s, want it to contain %s", body, tc.body)
			}
		})
	}
	t.Run("no engine yet", func(t *testing.T) {
		srv := serve(t, nil)
		resp, err := http.Get(srv.URL + "/v1/updates/check?" + ok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want 503", resp.StatusCode)
		}
	})
}

// TestHandle_ByteIdenticalAcrossEngines builds two engines from the same
// snapshot bytes (as the control plane and a mirror do) and checks that
// 10,000 random requests get byte-identical answers, a few hundred of them
// over real loopback servers.
func TestHandle_ByteIdenticalAcrossEngines(t *testing.T) {
	opts := updatetest.Options{Products: 6, Releases: 120, Policies: 8}
	raw, err := json.Marshal(updatetest.Manifest(opts))
	if err != nil {
		t.Fatal(err)
	}
	load := func() *Engine {
		var m snapshot.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		e, err := New(&m)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := load(), load()
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	statuses := map[int]int{}
	offered := 0
	for i, rq := range updatetest.Queries(opts, 10_000, 42) {
		r := httptest.NewRequest("GET", "/v1/updates/check?"+rq, nil)
		wa, wb := httptest.NewRecorder(), httptest.NewRecorder()
		Handle(wa, r, a, at)
		Handle(wb, r, b, at)
		if wa.Code != wb.Code || !bytes.Equal(wa.Body.Bytes(), wb.Body.Bytes()) {
			t.Fatalf("query %d %s: %d %s vs %d %s", i, rq, wa.Code, wa.Body, wb.Code, wb.Body)
		}
		statuses[wa.Code]++
		if bytes.Contains(wa.Body.Bytes(), []byte(`"update_available":true`)) {
			offered++
		}
	}
	if statuses[200] < 9000 || statuses[400] == 0 || statuses[404] == 0 || offered < 5000 {
		t.Errorf("query mix too narrow: statuses %v, offered %d", statuses, offered)
	}
	sa, sb := serve(t, a), serve(t, b)
	for _, rq := range updatetest.Queries(opts, 300, 7) {
		ba, ca := get(t, sa.URL+"/v1/updates/check?"+rq)
		bb, cb := get(t, sb.URL+"/v1/updates/check?"+rq)
		if ca != cb || !bytes.Equal(ba, bb) {
			t.Fatalf("%s: %d %s vs %d %s", rq, ca, ba, cb, bb)
		}
	}
}

func get(t *testing.T, url string) ([]byte, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, resp.StatusCode
}

// TestEngine_RenderedMatchesHandle: what Rendered gives a server that
// parses requests itself is what Handle answers: the same document, or
// the error Handle writes in the wire shape; nothing when Handle renders
// the answer itself.
func TestEngine_RenderedMatchesHandle(t *testing.T) {
	f := newFixture().product("prd_a", "open").
		release("rel_1", "prd_a", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
		release("rel_2", "prd_a", "stable", "1.1.0", "ACTIVE", "linux/x64/deb")
	e := f.engine(t)
	for _, q := range []string{
		"product=prd_a&channel=stable&platform=linux&arch=x64&version=1.0.0",
		"product=prd_a&channel=stable&platform=linux&arch=x64&version=1.1.0",
		"product=prd_a",
		"product=prd_a&channel=stable&platform=linux&arch=x64&version=latest",
		"product=prd_b&channel=stable&platform=linux&arch=x64&version=1.0.0",
		"product=prd_a&channel=beta&platform=linux&arch=x64&version=1.0.0",
		"",
	} {
		t.Run(q, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handle(rec, httptest.NewRequest("GET", "/v1/updates/check?"+q, nil), e, now)
			body, err := e.Rendered(q, now)
			var wantStatus int
			var got []byte
			switch {
			case err != nil:
				rec2 := httptest.NewRecorder()
				wire.WriteError(rec2, nil, nil, err)
				wantStatus, got = rec2.Code, rec2.Body.Bytes()
			case body == nil:
				t.Fatalf("Rendered gave nothing for %q; the engine renders every answer of this tenant", q)
			default:
				wantStatus, got = http.StatusOK, body
			}
			if rec.Code != wantStatus || !bytes.Equal(rec.Body.Bytes(), got) {
				t.Errorf("Handle: %d %s\nRendered: %d %s", rec.Code, rec.Body.Bytes(), wantStatus, got)
			}
		})
	}
}
