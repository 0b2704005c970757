package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
)

func TestParseSchedule_Steps(t *testing.T) {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		text string
		want []console.RolloutStep
	}{
		{"", nil},
		{"   ", nil},
		{"100", []console.RolloutStep{{At: start, Percentage: 100}}},
		{"5 for 24h, 25 for 2d, 100", []console.RolloutStep{
			{At: start, Percentage: 5}, {At: start.Add(24 * time.Hour), Percentage: 25}, {At: start.Add(72 * time.Hour), Percentage: 100}}},
		{" 10% for 90m ,50%  for 0s,100 for 1h", []console.RolloutStep{
			{At: start, Percentage: 10}, {At: start.Add(90 * time.Minute), Percentage: 50}, {At: start.Add(90 * time.Minute), Percentage: 100}}},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			got, err := console.ParseSchedule(c.text, start)
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d steps %+v, want %+v", len(got), got, c.want)
			}
			for i := range got {
				if !got[i].At.Equal(c.want[i].At) || got[i].Percentage != c.want[i].Percentage {
					t.Errorf("step %d: got %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestParseSchedule_Refusals(t *testing.T) {
	cases := []struct{ text, want string }{
		{"0", "not a whole percentage"},
		{"101", "not a whole percentage"},
		{"5.5 for 1h, 100", "not a whole percentage"},
		{"x", "not a whole percentage"},
		{"50 for 1h, 25", "step 2: 25% is not above"},
		{"50 for 1h, 50", "not above"},
		{"5, 100", "say how long to stay at 5%"},
		{"5 for soon, 100", "\"soon\" is not a duration"},
		{"5 for -1h, 100", "not a duration"},
		{"5 for 366d, 100", "not a duration"},
		{"5 for 9000h, 100", "not a duration"},
		{strings.Repeat("1 for 1h, ", 20) + "100", "at most 20"},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			_, err := console.ParseSchedule(c.text, time.Now())
			if catalog.ErrorCode(err) != catalog.EINVALID || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an invalid error saying %q", err, c.want)
			}
		})
	}
}
