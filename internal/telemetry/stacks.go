package telemetry

import (
	"encoding/binary"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
)

// stackBuilder builds profiles from stacks given frame by frame (JFR,
// folded stacks): one location per distinct frame, one sample per distinct
// stack of a sample type.
type stackBuilder struct {
	source    string
	limits    Limits
	errs      recordErrors
	locs      map[attribution.Frame]int32
	locations [][]attribution.Frame
	byType    map[sampleKind]*stackProfile
	order     []sampleKind
	start     time.Time
	end       time.Time
	stackBuf  []int32
}

// sampleKind is what a profile's values measure.
type sampleKind struct {
	Type, Unit string
	// Period is the sampling period in Unit, 0 if unknown.
	Period int64
}

// countOf is the kind of profiles that count samples of a type.
func countOf(sampleType string) sampleKind { return sampleKind{Type: sampleType, Unit: "count"} }

type stackProfile struct {
	samples map[string]int // stack key → index in list
	list    []Sample
}

func newStackBuilder(source string, l Limits) *stackBuilder {
	return &stackBuilder{source: source, limits: l, errs: recordErrors{source: source},
		locs: map[attribution.Frame]int32{}, byType: map[sampleKind]*stackProfile{}}
}

// window widens the profiles' time window to hold [start, start+d).
func (b *stackBuilder) window(start time.Time, d time.Duration) {
	if b.start.IsZero() || start.Before(b.start) {
		b.start = start
	}
	if end := start.Add(d); end.After(b.end) {
		b.end = end
	}
}

// add counts n samples of the stack, given leaf first, in the span, worth
// value in the kind's unit.
func (b *stackBuilder) add(kind sampleKind, frames []attribution.Frame, n, value int64, span spanLabels) error {
	locs := b.stackBuf[:0]
	for _, f := range frames {
		i, ok := b.locs[f]
		if !ok {
			i = int32(len(b.locations))
			if err := b.limits.check(b.source, 0, len(b.locations)+1, 0); err != nil {
				return err
			}
			b.locs[f] = i
			b.locations = append(b.locations, []attribution.Frame{f})
		}
		locs = append(locs, i)
	}
	locs = b.limits.depth(locs)
	b.stackBuf = locs
	p := b.byType[kind]
	if p == nil {
		p = &stackProfile{samples: map[string]int{}}
		b.byType[kind] = p
		b.order = append(b.order, kind)
	}
	key := stackKey(locs, span)
	if i, ok := p.samples[key]; ok {
		p.list[i].Count += n
		p.list[i].Value += value
		return nil
	}
	if err := b.limits.check(b.source, len(p.list)+1, 0, 0); err != nil {
		return err
	}
	p.samples[key] = len(p.list)
	p.list = append(p.list, Sample{Locations: append([]int32(nil), locs...), Count: n, Value: value,
		SpanID: span.SpanID, SpanName: span.SpanName, TraceID: span.TraceID})
	return nil
}

// stackKey is a map key for a stack of location indexes in a span.
func stackKey(locs []int32, span spanLabels) string {
	buf := make([]byte, 4+4*len(locs), 4+4*len(locs)+len(span.SpanID)+len(span.SpanName)+len(span.TraceID)+3)
	binary.LittleEndian.PutUint32(buf, uint32(len(locs)))
	for i, l := range locs {
		binary.LittleEndian.PutUint32(buf[4+4*i:], uint32(l))
	}
	if span != (spanLabels{}) {
		buf = append(append(append(append(append(append(buf, 0), span.SpanID...), 0), span.SpanName...), 0), span.TraceID...)
	}
	return string(buf)
}

func (b *stackBuilder) batches() []*ProfileBatch {
	var out []*ProfileBatch
	for _, k := range b.order {
		p := b.byType[k]
		bt := &ProfileBatch{
			Source: b.source, SampleType: k.Type, Unit: k.Unit, Period: k.Period,
			Start: b.start, Duration: max(0, b.end.Sub(b.start)),
			Locations: b.locations, Samples: p.list,
		}
		out = append(out, bt)
	}
	return out
}
