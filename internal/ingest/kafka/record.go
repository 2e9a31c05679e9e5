package kafka

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evidentsec/evident/internal/safegob"
	"github.com/evidentsec/evident/internal/telemetry"
)

// The headers of a record; its key is the service, its value the
// payload in the encoding the format header names.
const (
	headerTenant = "evident-tenant"
	headerFormat = "evident-format"
)

// The formats of a record's value. Spans go as an OTLP
// ExportTraceServiceRequest in protobuf, or with encoding/gob when OTLP
// cannot carry them as they are (telemetry.ErrNotEncodable); profiles go
// with encoding/gob. A reader refuses a format it does not know, so that
// a newer writer's record is reported rather than misread.
const (
	formatOTLPTraces = "otlp-traces/1"
	formatGobSpans   = "gob-spans/1"
	formatGobProfile = "gob-profiles/1"
)

// Record is one record of the ingest log as an engine applies it: the
// telemetry of one service of one request.
type Record struct {
	Tenant, Service string
	// Partition and Offset say where the record is in the log; an
	// applier keeps them (Offsets) to skip a record it applied already.
	Partition int32
	Offset    int64
	// Time is when the receiver wrote the record.
	Time time.Time
	// Exactly one of Spans and Profiles is set.
	Spans    []telemetry.Span
	Profiles []*telemetry.ProfileBatch
}

// encodeSpans returns the value and format of a record of spans.
func encodeSpans(spans []telemetry.Span) ([]byte, string, error) {
	b, err := telemetry.AppendTraceRequest(make([]byte, 0, 320*len(spans)), spans)
	if err == nil {
		return b, formatOTLPTraces, nil
	}
	if !errors.Is(err, telemetry.ErrNotEncodable) {
		return nil, "", err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(spans); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), formatGobSpans, nil
}

// encodeProfiles returns the value and format of a record of profiles.
func encodeProfiles(ps []*telemetry.ProfileBatch) ([]byte, string, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(ps); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), formatGobProfile, nil
}

// decode reads a record of the log.
func decode(r *kgo.Record) (Record, error) {
	rec := Record{Service: string(r.Key), Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}
	var format string
	for _, h := range r.Headers {
		switch h.Key {
		case headerTenant:
			rec.Tenant = string(h.Value)
		case headerFormat:
			format = string(h.Value)
		}
	}
	where := fmt.Sprintf("record %s/%d@%d", r.Topic, r.Partition, r.Offset)
	if rec.Tenant == "" {
		return rec, fmt.Errorf("decode %s: no %s header", where, headerTenant)
	}
	var err error
	switch format {
	case formatOTLPTraces:
		err = telemetry.DecodeTraceRequest(r.Value, where, func(s []telemetry.Span) error {
			rec.Spans = append(rec.Spans, s...)
			return nil
		})
	case formatGobSpans:
		err = safegob.Decode(r.Value, &rec.Spans)
	case formatGobProfile:
		err = safegob.Decode(r.Value, &rec.Profiles)
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return rec, fmt.Errorf("decode %s: %w", where, err)
	}
	return rec, nil
}
