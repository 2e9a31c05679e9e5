package model

import (
	"time"
)

// SeriesBuckets is the length of a function's time series, in one-minute
// buckets: the last hour before the newest profile of its service.
const SeriesBuckets = 60

// seriesStep is the width of a bucket.
const seriesStep = time.Minute

// series is a ring of the samples of one function per minute: the slot
// of minute m is m mod SeriesBuckets, and holds minute m only while no
// later minute has taken it.
type series [SeriesBuckets]struct {
	minute  int64 // Unix minute; 0 for a slot never written
	samples int64
}

// add counts samples at a Unix minute, unless the slot holds a later
// minute already (a profile that arrived over an hour late).
func (r *series) add(minute, samples int64) {
	slot := &r[minute%SeriesBuckets]
	switch {
	case slot.minute == minute:
		slot.samples += samples
	case slot.minute < minute:
		slot.minute, slot.samples = minute, samples
	}
}

// Bucket is the number of samples with a function on the stack in the
// minute from Start.
type Bucket struct {
	Start   time.Time `json:"start"`
	Samples int64     `json:"samples"`
}

// addSeries adds the samples of a batch's stacks, which hold them in
// their batch field, to the series of their functions at the batch's
// start: a function counts once per stack however often it recurses on
// it, as in Function.Samples.
func (s *service) addSeries(touched []int32, start time.Time, limit int) {
	minute := start.Unix() / int64(seriesStep/time.Second)
	if minute <= 0 {
		// A profile with no time (or one before 1970) has no minute:
		// its samples count in the totals only.
		for _, si := range touched {
			s.stacks[si].batch = 0
		}
		return
	}
	s.seriesLast = max(s.seriesLast, minute)
	for len(s.stamp) < len(s.funcs) {
		s.stamp = append(s.stamp, -1)
	}
	s.growSeries()
	for _, si := range touched {
		st := &s.stacks[si]
		for _, f := range st.funcs {
			if s.stamp[f] == si {
				continue
			}
			s.stamp[f] = si
			r := s.series[f]
			if r == nil {
				if s.nseries >= limit {
					s.overflow.Series += st.batch
					continue
				}
				r = new(series)
				s.series[f] = r
				s.nseries++
			}
			r.add(minute, st.batch)
		}
		st.batch = 0
	}
	// The stamps name stack indexes, which the next batch reuses.
	for _, si := range touched {
		for _, f := range s.stacks[si].funcs {
			s.stamp[f] = -1
		}
	}
}

// Hour returns a function's series as the SeriesBuckets buckets of the
// hour that ends at a service's SeriesEnd, empty minutes included,
// oldest first; nil if the function has no series.
func Hour(series []Bucket, end time.Time) []Bucket {
	if series == nil {
		return nil
	}
	out := make([]Bucket, SeriesBuckets)
	start := end.Add(-SeriesBuckets * seriesStep)
	for i := range out {
		out[i].Start = start.Add(time.Duration(i) * seriesStep)
	}
	for _, b := range series {
		if i := int(b.Start.Sub(start) / seriesStep); i >= 0 && i < SeriesBuckets {
			out[i].Samples += b.Samples
		}
	}
	return out
}

// growSeries makes room for a series of every function.
func (s *service) growSeries() {
	if n := len(s.funcs) - len(s.series); n > 0 {
		s.series = append(s.series, make([]*series, n)...)
	}
}

// seriesEnd returns the end of the newest minute of the service's series.
func (s *service) seriesEnd() time.Time {
	if s.seriesLast == 0 {
		return time.Time{}
	}
	return time.Unix((s.seriesLast+1)*int64(seriesStep/time.Second), 0).UTC()
}

// buckets returns the non-empty buckets of the last SeriesBuckets
// minutes up to the service's newest, oldest first.
func (s *service) buckets(f int32) []Bucket {
	if int(f) >= len(s.series) || s.series[f] == nil {
		return nil
	}
	r := s.series[f]
	var out []Bucket
	for m := max(1, s.seriesLast-SeriesBuckets+1); m <= s.seriesLast; m++ {
		if slot := r[m%SeriesBuckets]; slot.minute == m && slot.samples != 0 {
			out = append(out, Bucket{Start: time.Unix(m*int64(seriesStep/time.Second), 0).UTC(), Samples: slot.samples})
		}
	}
	return out
}
