package ui

import (
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/model"
)

// Sample chart geometry, in SVG user units: one bar a minute.
const (
	seriesBar    = 10.0
	seriesHeight = 48.0
)

// seriesChart is a vulnerable function's samples per minute over the
// hour up to its service's newest profile, as bars.
type seriesChart struct {
	Symbol     string
	Start, End time.Time
	Width      float64
	Height     float64
	Bars       []seriesBarData
	// Minutes are the minutes with samples, oldest first: the chart's
	// text alternative.
	Minutes []model.Bucket
	// Samples is the hour's total, Peak its busiest minute.
	Samples int64
	Peak    model.Bucket
}

// seriesBarData is one minute's bar; a minute without samples has none.
type seriesBarData struct {
	X, Y, H float64
	model.Bucket
}

// newSeriesCharts draws the series of each vulnerable function seen that
// the model keeps one of.
func newSeriesCharts(r assess.Reachability) []seriesChart {
	var out []seriesChart
	for _, e := range r.Evidence {
		hour := model.Hour(e.Series, e.SeriesEnd)
		if hour == nil {
			continue
		}
		c := seriesChart{
			Symbol: e.Symbol, Start: hour[0].Start, End: e.SeriesEnd,
			Width: seriesBar * float64(len(hour)), Height: seriesHeight, Minutes: e.Series,
		}
		for _, b := range hour {
			c.Samples += b.Samples
			if b.Samples > c.Peak.Samples {
				c.Peak = b
			}
		}
		for i, b := range hour {
			if b.Samples == 0 {
				continue
			}
			// At least 2 units high, so that a minute with one sample shows.
			h := max(2, seriesHeight*float64(b.Samples)/float64(c.Peak.Samples))
			c.Bars = append(c.Bars, seriesBarData{X: seriesBar * float64(i), Y: seriesHeight - h, H: h, Bucket: b})
		}
		out = append(out, c)
	}
	return out
}
