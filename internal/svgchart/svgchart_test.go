package svgchart

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

// elements parses svg as XML (failing the test if it is not well formed)
// and counts elements by name.
func elements(t *testing.T, svg string) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	got := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			got[se.Name.Local]++
		}
	}
}

func TestLine_SVG(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c := Line{
		ID: "adoption", Title: "Adoption <1.2.0>", Desc: "share of devices & more", YLabel: "%", YMax: 100,
		Series: []Series{
			{Name: "adoption", Points: []Point{{t0, 0}, {t0.Add(time.Hour), 50}, {t0.Add(2 * time.Hour), 100}}},
			{Name: "failures", Points: []Point{{t0, 1}, {t0.Add(2 * time.Hour), 2}}},
		},
	}
	svg := string(c.SVG())
	els := elements(t, svg)
	t.Run("accessible", func(t *testing.T) {
		for _, want := range []string{`role="img"`, `aria-labelledby="adoption-title adoption-desc"`, `<title id="adoption-title">Adoption &lt;1.2.0&gt;</title>`, `<desc id="adoption-desc">share of devices &amp; more</desc>`} {
			if !strings.Contains(svg, want) {
				t.Errorf("missing %s in\n%s", want, svg)
			}
		}
	})
	t.Run("one polyline per series and a point per sample", func(t *testing.T) {
		if got, want := els["polyline"], 2; got != want {
			t.Errorf("polylines = %d, want %d", got, want)
		}
		if got, want := els["circle"], 5; got != want {
			t.Errorf("circles = %d, want %d", got, want)
		}
	})
	t.Run("y axis maps the fixed max to the top and 0 to the baseline", func(t *testing.T) {
		// padTop=28, plot height 220-28-44=148: 100 → y 28.0, 0 → y 176.0.
		if !strings.Contains(svg, `cy="28.0"`) || !strings.Contains(svg, `cy="176.0"`) {
			t.Errorf("expected points at y=28.0 and y=176.0:\n%s", svg)
		}
	})
	t.Run("x axis spans first to last sample", func(t *testing.T) {
		// padLeft=56, plot width 640-56-16=568: first at 56, last at 624.
		if !strings.Contains(svg, `cx="56.0"`) || !strings.Contains(svg, `cx="624.0"`) {
			t.Errorf("expected points at x=56.0 and x=624.0:\n%s", svg)
		}
	})
	t.Run("tick labels and legend", func(t *testing.T) {
		for _, want := range []string{">00:00<", ">02:00<", ">100<", ">adoption<", ">failures<"} {
			if !strings.Contains(svg, want) {
				t.Errorf("missing %s", want)
			}
		}
	})
}

func TestLine_SVGEmpty(t *testing.T) {
	svg := string(Line{ID: "x", Title: "Nothing"}.SVG())
	elements(t, svg)
	if !strings.Contains(svg, "No data yet") {
		t.Errorf("an empty chart should say so:\n%s", svg)
	}
}

func TestBars_SVGStacked(t *testing.T) {
	c := Bars{ID: "seats", Title: "Seats", Stack: []string{"leased", "free"}, Bars: []Bar{
		{Label: "ent_a", Values: []float64{3, 7}},
		{Label: "ent_b", Values: []float64{10, 0}},
	}}
	svg := string(c.SVG())
	els := elements(t, svg)
	if got, want := els["rect"], 4+2; got != want { // 4 segments + 2 legend swatches
		t.Errorf("rects = %d, want %d", got, want)
	}
	// Max 10 → nice max 10; a full bar reaches the top (y=28.0).
	if !strings.Contains(svg, `y="28.0"`) {
		t.Errorf("a full stacked bar should reach the top:\n%s", svg)
	}
	for _, want := range []string{"<title>ent_a leased: 3</title>", "<title>ent_a free: 7</title>", ">ent_b<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestNiceMax(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {-3, 1}, {0.7, 1}, {3, 5}, {12, 20}, {24, 25}, {100, 100}, {101, 200}} {
		if got := niceMax(tc.in); got != tc.want {
			t.Errorf("niceMax(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
