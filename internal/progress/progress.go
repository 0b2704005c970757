// Package progress reports the progress of long work (uploads, mirror
// syncs, bundle imports) on a writer, usually stderr: on a terminal, one
// line rewritten in place (carriage return) a few times a second; on
// anything else (a log file, a pipe, journald), a line every few seconds.
// Each line gives the bytes done, the total when known, and the rate.
//
// A nil *Meter is valid and reports nothing, so callers pass one only
// when progress is wanted.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Options tune a Meter; the zero value detects a terminal and uses the
// default intervals and the real clock.
type Options struct {
	// Terminal forces the terminal (true) or log (false) form; nil
	// detects it from the writer.
	Terminal *bool
	// Every is the interval between log lines (default 5s) or terminal
	// redraws (default 200ms); the environment's OUTPOST_PROGRESS_INTERVAL
	// (a Go duration) sets both when Every is zero.
	Every time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Meter reports one piece of work. It is safe for concurrent use.
type Meter struct {
	mu      sync.Mutex
	w       io.Writer
	label   string
	total   int64 // -1: unknown
	done    int64
	tty     bool
	every   time.Duration
	now     func() time.Time
	start   time.Time
	last    time.Time
	drawn   int // width of the terminal line drawn, 0 if none
	printed bool
	shown   int64 // done at the last log line
}

// New starts a meter for label with total bytes (-1 when unknown).
func New(w io.Writer, label string, total int64, o Options) *Meter {
	m := &Meter{w: w, label: label, total: total, now: o.Now, every: o.Every}
	if m.now == nil {
		m.now = time.Now
	}
	if o.Terminal != nil {
		m.tty = *o.Terminal
	} else {
		m.tty = IsTerminal(w)
	}
	if m.every <= 0 {
		if d, err := time.ParseDuration(os.Getenv("OUTPOST_PROGRESS_INTERVAL")); err == nil && d > 0 {
			m.every = d
		}
	}
	if m.every <= 0 {
		m.every = 5 * time.Second
		if m.tty {
			m.every = 200 * time.Millisecond
		}
	}
	m.start = m.now()
	m.last = m.start
	return m
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Add counts n more bytes done and reports if it is time to.
func (m *Meter) Add(n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += n
	m.tick()
}

// Set sets the bytes done and the total (-1: unchanged) and reports if it
// is time to.
func (m *Meter) Set(done, total int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = done
	if total >= 0 {
		m.total = total
	}
	m.tick()
}

// AddTotal raises the total by n (work found along the way).
func (m *Meter) AddTotal(n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.total < 0 {
		m.total = 0
	}
	m.total += n
}

func (m *Meter) tick() {
	now := m.now()
	if now.Sub(m.last) < m.every {
		return
	}
	m.last = now
	m.report(now)
}

// report writes the current state: a redraw or a log line.
func (m *Meter) report(now time.Time) {
	line := Line(m.label, m.done, m.total, now.Sub(m.start))
	if m.tty {
		pad := ""
		if n := len(line); n < m.drawn {
			pad = strings.Repeat(" ", m.drawn-n)
		}
		fmt.Fprint(m.w, "\r"+line+pad)
		m.drawn = len(line)
		return
	}
	fmt.Fprintln(m.w, line)
	m.printed, m.shown = true, m.done
}

// Finish reports the final state: the terminal line is completed with a
// newline; in log form a last line is written if any was.
func (m *Meter) Finish() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tty && m.drawn == 0 || !m.tty && (!m.printed || m.shown == m.done) {
		return // quicker than one report, or the last line said it all
	}
	m.report(m.now())
	if m.tty {
		fmt.Fprintln(m.w)
	}
}

// Reader counts what is read through r.
func (m *Meter) Reader(r io.Reader) io.Reader {
	if m == nil {
		return r
	}
	return &reader{r: r, m: m}
}

// Writer counts what is written through w.
func (m *Meter) Writer(w io.Writer) io.Writer {
	if m == nil {
		return w
	}
	return &writer{w: w, m: m}
}

type writer struct {
	w io.Writer
	m *Meter
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.m.Add(int64(n))
	return n, err
}

type reader struct {
	r io.Reader
	m *Meter
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.m.Add(int64(n))
	return n, err
}

// Line is one report: "LABEL: 12.0 MiB / 100.0 MiB (12%), 4.0 MiB/s"; the
// total and the share are left out when the total is unknown (-1).
func Line(label string, done, total int64, elapsed time.Duration) string {
	var b strings.Builder
	b.WriteString(label)
	b.WriteString(": ")
	b.WriteString(Bytes(done))
	if total >= 0 {
		pct := 100
		if total > 0 {
			pct = int(min(max(float64(done)/float64(total), 0), 1) * 100)
		}
		fmt.Fprintf(&b, " / %s (%d%%)", Bytes(total), pct)
	}
	if s := elapsed.Seconds(); s > 0 {
		fmt.Fprintf(&b, ", %s/s", Bytes(int64(float64(done)/s)))
	}
	return b.String()
}

// Bytes formats n in binary units: "512 B", "1.5 KiB", "3.0 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
