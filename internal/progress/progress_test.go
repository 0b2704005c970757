package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// clock is a fake clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLine_Shapes(t *testing.T) {
	cases := []struct {
		name        string
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{"known total", 12 << 20, 100 << 20, 3 * time.Second, "up: 12.0 MiB / 100.0 MiB (12%), 4.0 MiB/s"},
		{"unknown total", 1536, -1, time.Second, "up: 1.5 KiB, 1.5 KiB/s"},
		{"empty total", 0, 0, 0, "up: 0 B / 0 B (100%)"},
		{"more than announced is 100%", 20, 10, 0, "up: 20 B / 10 B (100%)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Line("up", tc.done, tc.total, tc.elapsed); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMeter_LogForm(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	no := false
	m := New(&buf, "sync", 10<<20, Options{Terminal: &no, Now: c.now})
	m.Add(1 << 20) // before the interval: nothing
	if buf.Len() != 0 {
		t.Fatalf("reported before the interval: %q", buf.String())
	}
	c.t = c.t.Add(5 * time.Second)
	m.Add(4 << 20)
	c.t = c.t.Add(time.Second)
	m.Add(1 << 20) // within the next interval: nothing more
	c.t = c.t.Add(4 * time.Second)
	m.Add(4 << 20)
	m.Finish()
	want := "sync: 5.0 MiB / 10.0 MiB (50%), 1.0 MiB/s\n" +
		"sync: 10.0 MiB / 10.0 MiB (100%), 1.0 MiB/s\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMeter_TerminalForm(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	yes := true
	m := New(&buf, "upload", 2048, Options{Terminal: &yes, Now: c.now})
	c.t = c.t.Add(time.Second)
	m.Set(1024, -1)
	c.t = c.t.Add(time.Second)
	m.Set(2048, -1)
	m.Finish()
	got := buf.String()
	if strings.Count(got, "\r") != 3 || !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
		t.Fatalf("got %q, want three carriage-return redraws and one final newline", got)
	}
	if !strings.Contains(got, "\rupload: 1.0 KiB / 2.0 KiB (50%), 1.0 KiB/s") {
		t.Errorf("got %q", got)
	}
}

func TestMeter_QuickWorkPrintsNothing(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var buf bytes.Buffer
		m := New(&buf, "x", 10, Options{Terminal: &tty, Now: (&clock{t: time.Unix(1, 0)}).now})
		io.Copy(io.Discard, m.Reader(strings.NewReader("0123456789")))
		m.Finish()
		if buf.Len() != 0 {
			t.Errorf("tty %v: got %q, want nothing", tty, buf.String())
		}
	}
}

func TestMeter_NilIsQuiet(t *testing.T) {
	var m *Meter
	m.Add(1)
	m.Set(1, 2)
	m.AddTotal(3)
	m.Finish()
	r := m.Reader(strings.NewReader("abc"))
	if b, _ := io.ReadAll(r); string(b) != "abc" {
		t.Errorf("nil meter's reader read %q", b)
	}
}

func TestMeter_CountsThroughReader(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	no := false
	m := New(&buf, "import", -1, Options{Terminal: &no, Now: c.now, Every: time.Nanosecond})
	c.t = c.t.Add(2 * time.Second)
	io.Copy(io.Discard, m.Reader(strings.NewReader(strings.Repeat("x", 4096))))
	if !strings.Contains(buf.String(), "import: 4.0 KiB, 2.0 KiB/s") {
		t.Errorf("got %q", buf.String())
	}
}

func TestMeter_CountsThroughWriter(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	no := false
	m := New(&buf, "export", -1, Options{Terminal: &no, Now: c.now, Every: time.Nanosecond})
	c.t = c.t.Add(time.Second)
	var sink bytes.Buffer
	io.Copy(m.Writer(&sink), strings.NewReader(strings.Repeat("x", 2048)))
	if sink.Len() != 2048 || !strings.Contains(buf.String(), "export: 2.0 KiB, 2.0 KiB/s") {
		t.Errorf("wrote %d bytes, reported %q", sink.Len(), buf.String())
	}
}
