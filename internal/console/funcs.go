package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func staticHandler(fsys fs.FS) http.Handler {
	fh := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fh.ServeHTTP(w, r)
	})
}

// bytesText writes a size for people (binary units).
func bytesText(n int64) string {
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

// durationText writes a duration coarsely: "3d 4h", "2h 5m", "40s".
func durationText(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// relative writes t relative to now: "in 3h 2m" or "5m ago".
func relative(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := t.Sub(now)
	if d >= 0 {
		return "in " + durationText(d)
	}
	return durationText(d) + " ago"
}

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"bytes": bytesText,
		"rel": func(t any, now time.Time) string {
			switch v := t.(type) {
			case time.Time:
				return relative(v, now)
			case *time.Time:
				if v == nil {
					return "never"
				}
				return relative(*v, now)
			}
			return ""
		},
		"ts": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return ""
				}
				return v.UTC().Format(time.RFC3339)
			case *time.Time:
				if v == nil {
					return ""
				}
				return v.UTC().Format(time.RFC3339)
			}
			return ""
		},
		"day": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return "—"
				}
				return v.UTC().Format("2006-01-02 15:04 UTC")
			case *time.Time:
				if v == nil {
					return "—"
				}
				return v.UTC().Format("2006-01-02 15:04 UTC")
			}
			return ""
		},
		"pct":   func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + "%" },
		"lower": strings.ToLower,
		"json": func(raw json.RawMessage) string {
			if len(raw) == 0 {
				return ""
			}
			var v any
			if json.Unmarshal(raw, &v) != nil {
				return string(raw)
			}
			b, _ := json.MarshalIndent(v, "", "  ")
			return string(b)
		},
		"short": func(id string) string {
			if len(id) > 16 {
				return id[:12] + "…"
			}
			return id
		},
		"path": func(parts ...string) string { return s.prefix + strings.Join(parts, "/") },
		"usagePct": func(used, maxv int) int {
			if maxv <= 0 {
				return 0
			}
			return min(100, used*100/maxv)
		},
		"hasPrefix": strings.HasPrefix,
		"rt": func(rows []*RolloutInfo, v *view) map[string]any {
			return map[string]any{"Rows": rows, "Prefix": v.Prefix}
		},
		"mt": func(rows []*mirrorRow, v *view) map[string]any {
			return map[string]any{"Rows": rows, "Now": v.Now, "Prefix": v.Prefix, "ShowTenant": v.Tenant == nil}
		},
	}
}
