package model

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestSeries feeds profiles over more than SeriesBuckets minutes and
// checks each function's buckets: one per minute with samples, the last
// hour up to the service's newest profile, a recursing function counted
// once per sample, a profile older than the hour left out.
func TestSeries(t *testing.T) {
	profile := func(at time.Time, count int64) *telemetry.ProfileBatch {
		return &telemetry.ProfileBatch{
			Service: "orders", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: at, Duration: 15 * time.Second,
			Locations: [][]attribution.Frame{{frameParse}, {frameHandler}},
			// Parse recurses: it is on the first stack twice.
			Samples: []telemetry.Sample{
				{Locations: []int32{0, 0, 1}, Count: count, Value: count},
				{Locations: []int32{1}, Count: 1, Value: 1},
			},
		}
	}
	bucket := func(minute int, samples int64) Bucket {
		return Bucket{Start: t0.Add(time.Duration(minute) * time.Minute), Samples: samples}
	}
	tests := []struct {
		name string
		at   []time.Duration // profile starts after t0; the i-th has i+1 samples of Parse
		// allocs are the starts of heap profiles, of 1000 objects
		// allocated in Parse each: they show that it ran, but their
		// objects are no samples of its time, and a minute of 3 CPU
		// samples showed as 1003.
		allocs  []time.Duration
		parse   []Bucket
		handler []Bucket
	}{
		{
			name:    "two profiles in a minute add up",
			at:      []time.Duration{0, 15 * time.Second, 2 * time.Minute},
			parse:   []Bucket{bucket(0, 1+2), bucket(2, 3)},
			handler: []Bucket{bucket(0, 1+1+2+1), bucket(2, 3+1)},
		},
		{
			name:    "an hour on, the first minute is gone",
			at:      []time.Duration{0, time.Minute, 60 * time.Minute},
			parse:   []Bucket{bucket(1, 2), bucket(60, 3)},
			handler: []Bucket{bucket(1, 2+1), bucket(60, 3+1)},
		},
		{
			name:    "a profile with no time has no minute",
			at:      []time.Duration{-t0.Sub(time.Time{}), time.Minute},
			parse:   []Bucket{bucket(1, 2)},
			handler: []Bucket{bucket(1, 2+1)},
		},
		{
			name:    "a profile older than the hour is left out",
			at:      []time.Duration{90 * time.Minute, 10 * time.Minute, 89 * time.Minute},
			parse:   []Bucket{bucket(89, 3), bucket(90, 1)},
			handler: []Bucket{bucket(89, 3+1), bucket(90, 1+1)},
		},
		{
			name:    "allocated objects are no samples of time",
			at:      []time.Duration{0, 2 * time.Minute},
			allocs:  []time.Duration{0, time.Minute, 2 * time.Minute},
			parse:   []Bucket{bucket(0, 1), bucket(2, 2)},
			handler: []Bucket{bucket(0, 1+1), bucket(2, 2+1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			for i, d := range tt.at {
				m.AddProfile(profile(t0.Add(d), int64(i+1)))
			}
			for _, d := range tt.allocs {
				m.AddProfile(&telemetry.ProfileBatch{
					Service: "orders", SampleType: "alloc_objects", Unit: "count", Period: 512 * 1024, Start: t0.Add(d), Duration: 15 * time.Second,
					Locations: [][]attribution.Frame{{frameParse}, {frameHandler}},
					Samples:   []telemetry.Sample{{Locations: []int32{0, 1}, Count: 1000, Value: 1000}},
				})
			}
			got := map[string][]Bucket{}
			for _, fn := range m.Snapshot().Service("orders").Functions {
				got[fn.Symbol] = fn.Series
			}
			want := map[string][]Bucket{"Parse": tt.parse, "Server.products": tt.handler}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("series by function (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSeriesCheckpointRefused: a checkpoint whose series do not hold
// together is refused.
func TestSeriesCheckpointRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		series []seriesState
	}{
		{"function out of range", []seriesState{{Func: 9, Minutes: []int64{1}, Samples: []int64{1}}}},
		{"function twice", []seriesState{{Func: 0}, {Func: 0}}},
		{"counts missing", []seriesState{{Func: 0, Minutes: []int64{1, 2}, Samples: []int64{1}}}},
		{"minute unwritten", []seriesState{{Func: 0, Minutes: []int64{0}, Samples: []int64{1}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := modelState{Version: stateVersion, Services: []serviceState{{Name: "a", Funcs: []attribution.Func{{Symbol: "F"}}, Series: tt.series}}}
			if err := st.check(); err == nil {
				t.Errorf("check() = nil, want an error")
			}
		})
	}
}
