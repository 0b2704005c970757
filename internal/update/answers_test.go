package update

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/update/updatetest"
)

// rendered is the answer Handle gave before answers were pre-rendered:
// the decision rendered on the spot (or the error in the wire shape).
func renderedDirect(t *testing.T, e *Engine, raw string, now time.Time) (int, []byte) {
	t.Helper()
	var q Query
	if err := parseRaw(raw, &q); err != nil {
		return 0, nil
	}
	p, err := q.prepare()
	if err != nil {
		return 0, nil
	}
	d, err := e.check(&p, now)
	if err != nil {
		return 0, nil
	}
	return http.StatusOK, append(d.AppendJSON(nil), '\n')
}

// TestHandle_PreRenderedAnswersIdentical asks a table of queries (offers,
// every reason, rollouts, bad ones) twice, so the second answer comes
// from the pre-rendered cache, and once more with the cache full: every
// 200 answer is byte for byte the directly rendered document, with the
// same headers.
func TestHandle_PreRenderedAnswersIdentical(t *testing.T) {
	o := updatetest.Options{Products: 4, Releases: 60, Policies: 6}
	e, err := New(updatetest.Manifest(o))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	queries := updatetest.Queries(o, 600, 7)
	run := func(t *testing.T, e *Engine, pass string) (offers, others int) {
		for i, raw := range queries {
			for _, method := range []string{"GET", "HEAD"} {
				w := httptest.NewRecorder()
				Handle(w, httptest.NewRequest(method, "/v1/updates/check?"+raw, nil), e, now)
				status, want := renderedDirect(t, e, raw, now)
				if status == 0 {
					if w.Code == http.StatusOK {
						t.Errorf("%s query %d %q: 200, want an error", pass, i, raw)
					}
					continue
				}
				if w.Code != status {
					t.Fatalf("%s query %d %q: status %d, want %d", pass, i, raw, w.Code, status)
				}
				if method == "GET" && !bytes.Equal(w.Body.Bytes(), want) {
					t.Fatalf("%s query %d %q:\n got %s\nwant %s", pass, i, raw, w.Body.Bytes(), want)
				}
				if method == "HEAD" && w.Body.Len() != 0 {
					t.Errorf("%s query %d: HEAD has a body", pass, i)
				}
				h := w.Header()
				if h.Get("Content-Length") != strconv.Itoa(len(want)) || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
					t.Errorf("%s query %d: headers %v", pass, i, h)
				}
				if method == "GET" {
					if bytes.Contains(want, []byte(`"update_available":true`)) {
						offers++
					} else {
						others++
					}
				}
			}
		}
		return offers, others
	}
	for _, pass := range []string{"first", "cached"} {
		t.Run(pass, func(t *testing.T) {
			offers, others := run(t, e, pass)
			if offers == 0 || others == 0 {
				t.Errorf("the table covers %d offers and %d other answers, want both", offers, others)
			}
		})
	}
	t.Run("cache full", func(t *testing.T) {
		full, err := New(updatetest.Manifest(o))
		if err != nil {
			t.Fatal(err)
		}
		full.rendered.m = map[answerKey]*answer{}
		for i := range maxAnswers {
			full.rendered.m[answerKey{reason: "filler " + strconv.Itoa(i)}] = &answer{}
		}
		run(t, full, "full")
		if got := len(full.rendered.m); got != maxAnswers {
			t.Errorf("cache grew to %d, want it bounded at %d", got, maxAnswers)
		}
	})
}
