package fleethttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/fleethttp"
	"github.com/outpost/outpost/internal/wire"
)

var now = time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

const ev = `{"type":"install_failed","client_id":"c-7f3a9b21","release_id":"rel_01jdk0000000000000000000aa","to_version":"1.1.0","error_code":"E_DISK","time":"2026-11-30T06:59:00Z"}`

func server(t *testing.T, limits fleet.BatchLimits) (*httptest.Server, *fleet.Aggregator) {
	t.Helper()
	a, err := fleet.NewAggregator(context.Background(), fleet.NewMemStore(), fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&fleethttp.Handler{Agg: a, Limits: limits, Now: func() time.Time { return now }})
	t.Cleanup(srv.Close)
	return srv, a
}

func TestHandler_Answers(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		body       string
		limits     fleet.BatchLimits
		wantStatus int
		wantCode   string // error answers
		accepted   int
		rejected   int
	}{
		{"batch", http.MethodPost, `{"events":[` + ev + `,` + ev + `]}`, fleet.BatchLimits{}, 200, "", 2, 0},
		{"partly rejected", http.MethodPost, `{"events":[` + ev + `,{"type":"nope"}]}`, fleet.BatchLimits{}, 200, "", 1, 1},
		{"too large", http.MethodPost, `{"events":[` + ev + `]}`, fleet.BatchLimits{MaxBytes: 64}, 413, "too_large", 0, 0},
		{"too many", http.MethodPost, `{"events":[` + ev + `,` + ev + `]}`, fleet.BatchLimits{MaxEvents: 1}, 413, "too_large", 0, 0},
		{"not json", http.MethodPost, `events`, fleet.BatchLimits{}, 400, "invalid", 0, 0},
		{"wrong method", http.MethodGet, ``, fleet.BatchLimits{}, 400, "invalid", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, a := server(t, tc.limits)
			req, _ := http.NewRequest(tc.method, srv.URL+"/v1/events", strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantCode != "" {
				if e := wire.ReadError(resp); e.Code != tc.wantCode {
					t.Errorf("error code = %q (%v), want %q", e.Code, e, tc.wantCode)
				}
				if n := len(a.Aggregates()); n != 0 {
					t.Errorf("a refused batch stored %d aggregates", n)
				}
				return
			}
			var ans fleethttp.Answer
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
				t.Fatal(err)
			}
			if ans.Accepted != tc.accepted || len(ans.Rejected) != tc.rejected || ans.LastSeq != uint64(tc.accepted) {
				t.Errorf("answer = %+v, want %d accepted (last seq %d), %d rejected", ans, tc.accepted, tc.accepted, tc.rejected)
			}
		})
	}
}
