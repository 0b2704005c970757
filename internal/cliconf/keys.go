package cliconf

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// checkKeys refuses a key in the file at path that no default names,
// suggesting the nearest known key: a typo must not silently leave a
// setting at its default.
func checkKeys(path string, defaults func(*viper.Viper)) error {
	known := viper.New()
	defaults(known)
	knownKeys := known.AllKeys()
	f := viper.New()
	f.SetConfigFile(path)
	f.SetConfigType("yaml")
	if err := f.ReadInConfig(); err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	var unknown []string
	for _, k := range f.AllKeys() {
		if !isKnown(k, knownKeys) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	var b strings.Builder
	for i, k := range unknown {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "unknown key %q in %s", k, path)
		if s := nearest(k, knownKeys); s != "" {
			fmt.Fprintf(&b, "; did you mean %q?", s)
		} else {
			b.WriteString(" (the keys are listed with comments in configs/)")
		}
	}
	return fmt.Errorf("%s", b.String())
}

// isKnown: k is a known key, or sits under one whose value is a map.
func isKnown(k string, known []string) bool {
	for _, c := range known {
		if k == c || strings.HasPrefix(k, c+".") {
			return true
		}
	}
	return false
}

// nearest returns the known key closest to k by edit distance, or "" when
// none is close enough to be a plausible typo.
func nearest(k string, known []string) string {
	best, bestD := "", len(k)/3+2
	for _, c := range known {
		if d := distance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance with adjacent transpositions.
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// checkDurations checks every key whose default is a duration, so that a
// bad value is reported with the value and an example, not mapstructure's
// "time: unknown unit".
func checkDurations(v *viper.Viper, defaults func(*viper.Viper), where string) error {
	known := viper.New()
	defaults(known)
	for _, k := range known.AllKeys() {
		if _, ok := known.Get(k).(time.Duration); !ok {
			continue
		}
		s, ok := v.Get(k).(string)
		if !ok {
			continue
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("%s: %s: %q is not a duration (e.g. 90s, 15m, 24h; units ns, us, ms, s, m, h)", where, k, s)
		}
	}
	return nil
}
