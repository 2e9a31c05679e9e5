package telemetry

import (
	"bytes"
	"fmt"
	"strings"
)

// The Pyroscope Java agent ties samples to spans through async-profiler's
// context id: each sample event carries a contextId field, and the agent
// sends beside the recording a LabelsSnapshot protobuf (form part
// "labels") saying which labels each context id stands for:
//
//	message Context { map<int64, int64> labels = 1; } // string id → string id
//	message LabelsSnapshot {
//	  map<int64, Context> contexts = 1;
//	  map<int64, string> strings = 2;
//	}
//
// The OpenTelemetry integration (pyroscope-otel) sets the labels
// profile_id (the span id, in hex) and span_name; span_id and trace_id
// are read too.

// jfrContexts maps a context id to the span it stands for.
type jfrContexts map[int64]spanLabels

// spanLabels are the span a sample belongs to.
type spanLabels struct {
	SpanID, SpanName, TraceID string
}

// parseLabelsSnapshot decodes a LabelsSnapshot; nil data gives no
// contexts.
func parseLabelsSnapshot(data []byte) (jfrContexts, error) {
	if len(data) == 0 {
		return nil, nil
	}
	raw := map[int64]map[int64]int64{}
	strs := map[int64]string{}
	err := forEachField(data, func(f field) error {
		if f.typ != 2 || (f.num != 1 && f.num != 2) {
			return nil
		}
		var key int64
		var val []byte
		var sval string
		err := forEachField(f.b, func(e field) error {
			switch {
			case e.num == 1 && e.typ == 0:
				key = int64(e.v)
			case e.num == 2 && e.typ == 2:
				val, sval = e.b, string(e.b)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if f.num == 2 {
			strs[key] = sval
			return nil
		}
		labels := map[int64]int64{}
		err = forEachField(val, func(c field) error {
			if c.num != 1 || c.typ != 2 {
				return nil
			}
			var k, v int64
			err := forEachField(c.b, func(e field) error {
				switch {
				case e.num == 1 && e.typ == 0:
					k = int64(e.v)
				case e.num == 2 && e.typ == 0:
					v = int64(e.v)
				}
				return nil
			})
			labels[k] = v
			return err
		})
		raw[key] = labels
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("labels snapshot: %w", err)
	}
	out := make(jfrContexts, len(raw))
	for id, labels := range raw {
		var s spanLabels
		var profileID string
		for k, v := range labels {
			switch strs[k] {
			case labelSpanID:
				s.SpanID = strings.ToLower(strs[v])
			case labelProfileID:
				profileID = strings.ToLower(strs[v])
			case labelSpanName:
				s.SpanName = strs[v]
			case labelTraceID:
				s.TraceID = strings.ToLower(strs[v])
			}
		}
		if s.SpanID == "" {
			// profile_id is the span id under the name the Java agent's
			// OpenTelemetry extension gives it; span_id comes first, as
			// in pprof labels, whatever order the map gives.
			s.SpanID = profileID
		}
		if s != (spanLabels{}) {
			out[id] = s
		}
	}
	return out, nil
}

// DecodePyroscopeJFR decodes a recording as the Pyroscope Java agent
// sends it to /ingest: the JFR (gzipped or raw) and the LabelsSnapshot
// of its context ids (nil when the agent sent none), which tie samples to
// spans.
func (l Limits) DecodePyroscopeJFR(jfr, labels []byte, source string) ([]*ProfileBatch, error) {
	contexts, err := parseLabelsSnapshot(labels)
	if err != nil {
		return nil, fmt.Errorf("decode jfr %s: %w: %w", source, ErrMalformed, err)
	}
	return l.decodeJFR(bytes.NewReader(jfr), source, contexts)
}
