package ui

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// templateFuncs are the helpers the templates format numbers and times
// with; now is the clock of "ago".
func templateFuncs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"percent":     percent,
		"duration":    duration,
		"rate":        formatRate,
		"short":       shortFrame,
		"join":        strings.Join,
		"servicePath": servicePath,
		"add":         func(a, b int) int { return a + b },
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return duration(now().Sub(t).Seconds()) + " ago"
		},
		// stale marks telemetry older than an hour.
		"stale": func(t time.Time) bool { return t.IsZero() || now().Sub(t) > time.Hour },
	}
}

// percent formats a share: 0.0312 is "3.1%", small shares keep two
// significant digits.
func percent(share float64) string {
	p := share * 100
	switch {
	case p == 0:
		return "0%"
	case p >= 10:
		return fmt.Sprintf("%.0f%%", p)
	case p >= 0.1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", p), "0"), ".") + "%"
	}
	return fmt.Sprintf("%.2g%%", p)
}

// duration formats seconds for people: "45 s", "12 min", "3.5 h", "2 d".
func duration(s float64) string {
	switch {
	case s < 0:
		return "0 s"
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 120:
		return fmt.Sprintf("%.0f s", s)
	case s < 2*3600:
		return fmt.Sprintf("%.0f min", s/60)
	case s < 2*86400:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", s/3600), ".0") + " h"
	}
	return fmt.Sprintf("%.0f d", math.Floor(s/86400))
}

// formatRate formats calls per second; 0 (too short to tell) is empty.
func formatRate(r float64) string {
	switch {
	case r == 0:
		return ""
	case r >= 10:
		return fmt.Sprintf("%.0f/s", r)
	case r >= 0.1:
		return fmt.Sprintf("%.1f/s", r)
	}
	return fmt.Sprintf("%.1f/min", r*60)
}
