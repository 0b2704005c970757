// Package svgchart renders small, accessible charts as inline SVG on the
// server: a line chart over time and a (stacked) bar chart, each with axes,
// tick labels, a legend and a <title>/<desc> for screen readers. The output
// is deterministic, needs no JavaScript and no external assets, so pages
// that embed it stay readable in an air-gapped browser.
package svgchart

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Point is one sample of a time series.
type Point struct {
	T time.Time
	V float64
}

// Series is one named line.
type Series struct {
	Name   string
	Points []Point
}

// Line is a line chart of one or more series over time.
type Line struct {
	ID     string // unique on the page; used for the title/desc ids
	Title  string
	Desc   string // a sentence describing the data, for screen readers
	YLabel string
	// YMax fixes the top of the y axis (e.g. 100 for percentages); 0
	// picks a rounded maximum from the data.
	YMax    float64
	YFormat func(float64) string // tick labels; default %g
	Series  []Series
	Width   int // default 640
	Height  int // default 220
}

// Bar is one bar of a bar chart; several Values stack.
type Bar struct {
	Label  string
	Values []float64
}

// Bars is a bar chart; with more than one value per bar the bars stack
// and Stack names the segments.
type Bars struct {
	ID      string
	Title   string
	Desc    string
	YLabel  string
	YMax    float64
	YFormat func(float64) string
	Stack   []string
	Bars    []Bar
	Width   int
	Height  int
}

const (
	padLeft   = 56
	padRight  = 16
	padTop    = 28
	padBottom = 44
	ticks     = 4
)

// palette is a colour-blind-safe set (Okabe-Ito).
var palette = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"}

// Color returns the colour used for series i, for legends drawn outside.
func Color(i int) string { return palette[i%len(palette)] }

func esc(s string) string { return template.HTMLEscapeString(s) }

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// niceMax rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func defaultFormat(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func clean(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

type frame struct {
	b       strings.Builder
	w, h    int
	plotW   float64
	plotH   float64
	ymax    float64
	yfmt    func(float64) string
	titleID string
	descID  string
}

func open(id, title, desc, ylabel string, w, h int, ymax float64, yfmt func(float64) string) *frame {
	if w <= 0 {
		w = 640
	}
	if h <= 0 {
		h = 220
	}
	if yfmt == nil {
		yfmt = defaultFormat
	}
	if id == "" {
		id = "chart"
	}
	f := &frame{w: w, h: h, ymax: ymax, yfmt: yfmt, titleID: id + "-title", descID: id + "-desc"}
	f.plotW = float64(w - padLeft - padRight)
	f.plotH = float64(h - padTop - padBottom)
	fmt.Fprintf(&f.b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s %s">`,
		esc(id), w, h, w, h, esc(f.titleID), esc(f.descID))
	fmt.Fprintf(&f.b, `<title id="%s">%s</title><desc id="%s">%s</desc>`, esc(f.titleID), esc(title), esc(f.descID), esc(desc))
	fmt.Fprintf(&f.b, `<text class="chart-title" x="%d" y="16">%s</text>`, padLeft, esc(title))
	// Y grid and tick labels.
	for i := 0; i <= ticks; i++ {
		v := f.ymax * float64(i) / ticks
		y := f.y(v)
		fmt.Fprintf(&f.b, `<line class="grid" x1="%d" x2="%s" y1="%s" y2="%s"/>`, padLeft, num(float64(padLeft)+f.plotW), num(y), num(y))
		fmt.Fprintf(&f.b, `<text class="tick" x="%d" y="%s" text-anchor="end">%s</text>`, padLeft-6, num(y+4), esc(f.yfmt(v)))
	}
	if ylabel != "" {
		fmt.Fprintf(&f.b, `<text class="axis-label" transform="translate(12 %s) rotate(-90)" text-anchor="middle">%s</text>`, num(float64(padTop)+f.plotH/2), esc(ylabel))
	}
	// Axes.
	fmt.Fprintf(&f.b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%s"/>`, padLeft, padLeft, padTop, num(float64(padTop)+f.plotH))
	fmt.Fprintf(&f.b, `<line class="axis" x1="%d" x2="%s" y1="%s" y2="%s"/>`, padLeft, num(float64(padLeft)+f.plotW), num(float64(padTop)+f.plotH), num(float64(padTop)+f.plotH))
	return f
}

func (f *frame) y(v float64) float64 {
	if v < 0 {
		v = 0
	}
	if v > f.ymax {
		v = f.ymax
	}
	return float64(padTop) + f.plotH - v/f.ymax*f.plotH
}

func (f *frame) legend(names []string) {
	x := float64(padLeft)
	y := float64(f.h - 8)
	for i, n := range names {
		if n == "" {
			continue
		}
		fmt.Fprintf(&f.b, `<rect class="legend-swatch" x="%s" y="%s" width="10" height="10" fill="%s"/>`, num(x), num(y-9), Color(i))
		fmt.Fprintf(&f.b, `<text class="legend" x="%s" y="%s">%s</text>`, num(x+14), num(y), esc(n))
		x += 14 + float64(len(n))*6.5 + 18
	}
}

func (f *frame) empty() {
	fmt.Fprintf(&f.b, `<text class="empty" x="%s" y="%s" text-anchor="middle">No data yet</text>`, num(float64(padLeft)+f.plotW/2), num(float64(padTop)+f.plotH/2))
}

func (f *frame) close() template.HTML {
	f.b.WriteString(`</svg>`)
	return template.HTML(f.b.String()) // #nosec: every text and attribute value above is escaped
}

// SVG renders the line chart.
func (c Line) SVG() template.HTML {
	var lo, hi time.Time
	maxV := 0.0
	n := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if n == 0 || p.T.Before(lo) {
				lo = p.T
			}
			if n == 0 || p.T.After(hi) {
				hi = p.T
			}
			maxV = math.Max(maxV, clean(p.V))
			n++
		}
	}
	ymax := c.YMax
	if ymax <= 0 {
		ymax = niceMax(maxV)
	}
	f := open(c.ID, c.Title, c.Desc, c.YLabel, c.Width, c.Height, ymax, c.YFormat)
	if n == 0 {
		f.empty()
		return f.close()
	}
	span := hi.Sub(lo)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return float64(padLeft) + f.plotW/2
		}
		return float64(padLeft) + float64(t.Sub(lo))/float64(span)*f.plotW
	}
	// X tick labels: first, middle and last time.
	layout := "Jan 2 15:04"
	if span >= 72*time.Hour {
		layout = "Jan 2"
	} else if span < 24*time.Hour && lo.YearDay() == hi.YearDay() {
		layout = "15:04"
	}
	xs := []time.Time{lo}
	if span > 0 {
		xs = append(xs, lo.Add(span/2), hi)
	}
	base := float64(padTop) + f.plotH
	for i, t := range xs {
		anchor := "middle"
		if len(xs) > 1 && i == 0 {
			anchor = "start"
		} else if len(xs) > 1 && i == len(xs)-1 {
			anchor = "end"
		}
		fmt.Fprintf(&f.b, `<text class="tick" x="%s" y="%s" text-anchor="%s">%s</text>`, num(x(t)), num(base+16), anchor, esc(t.UTC().Format(layout)))
	}
	names := make([]string, len(c.Series))
	for i, s := range c.Series {
		names[i] = s.Name
		if len(s.Points) == 0 {
			continue
		}
		fmt.Fprintf(&f.b, `<g class="series" data-series="%s">`, esc(s.Name))
		if len(s.Points) > 1 {
			var pts []string
			for _, p := range s.Points {
				pts = append(pts, num(x(p.T))+","+num(f.y(clean(p.V))))
			}
			fmt.Fprintf(&f.b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, Color(i), strings.Join(pts, " "))
		}
		for _, p := range s.Points {
			fmt.Fprintf(&f.b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s: %s at %s</title></circle>`,
				num(x(p.T)), num(f.y(clean(p.V))), Color(i), esc(s.Name), esc(f.yfmt(clean(p.V))), esc(p.T.UTC().Format(time.RFC3339)))
		}
		f.b.WriteString(`</g>`)
	}
	f.legend(names)
	return f.close()
}

// SVG renders the bar chart.
func (c Bars) SVG() template.HTML {
	maxV := 0.0
	for _, b := range c.Bars {
		sum := 0.0
		for _, v := range b.Values {
			sum += math.Max(clean(v), 0)
		}
		maxV = math.Max(maxV, sum)
	}
	ymax := c.YMax
	if ymax <= 0 {
		ymax = niceMax(maxV)
	}
	f := open(c.ID, c.Title, c.Desc, c.YLabel, c.Width, c.Height, ymax, c.YFormat)
	if len(c.Bars) == 0 {
		f.empty()
		return f.close()
	}
	slot := f.plotW / float64(len(c.Bars))
	bw := math.Max(slot*0.6, 1)
	base := float64(padTop) + f.plotH
	for i, b := range c.Bars {
		x := float64(padLeft) + slot*float64(i) + (slot-bw)/2
		acc := 0.0
		fmt.Fprintf(&f.b, `<g class="bar" data-label="%s">`, esc(b.Label))
		for j, v := range b.Values {
			v = math.Max(clean(v), 0)
			y0, y1 := f.y(acc), f.y(acc+v)
			acc += v
			name := b.Label
			if j < len(c.Stack) && c.Stack[j] != "" {
				name = b.Label + " " + c.Stack[j]
			}
			fmt.Fprintf(&f.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %s</title></rect>`,
				num(x), num(y1), num(bw), num(y0-y1), Color(j), esc(name), esc(f.yfmt(v)))
		}
		f.b.WriteString(`</g>`)
		fmt.Fprintf(&f.b, `<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x+bw/2), num(base+16), esc(b.Label))
	}
	if len(c.Stack) > 1 {
		f.legend(c.Stack)
	}
	return f.close()
}
