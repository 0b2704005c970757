package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/progress"
)

// progressBar draws one line with a bar on a terminal, at most ten times
// a second (byte counts and terminal detection: internal/progress).
type progressBar struct {
	w     io.Writer
	name  string
	last  time.Time
	drawn bool
	done  int64
	total int64
}

func newProgressBar(w io.Writer, name string) *progressBar {
	return &progressBar{w: w, name: name}
}

func (p *progressBar) update(done, total int64) {
	p.done, p.total = done, total
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || done == total {
		p.last = now
		p.draw()
	}
}

func (p *progressBar) draw() {
	fmt.Fprint(p.w, "\r"+renderBar(p.name, p.done, p.total, 30))
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

// renderBar is the pure part: "name [#####.....]  50%  1.0 MiB / 2.0 MiB".
func renderBar(name string, done, total int64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	return fmt.Sprintf("%s [%s%s] %3d%%  %s / %s", name, strings.Repeat("#", n), strings.Repeat(".", width-n),
		int(frac*100), progress.Bytes(done), progress.Bytes(total))
}
