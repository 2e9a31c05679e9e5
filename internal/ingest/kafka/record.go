package kafka

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evidentsec/evident/internal/safegob"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/telemetry"
)

// The headers of a record; its key is the service, its value the
// payload in the encoding the format header names.
const (
	headerTenant = "evident-tenant"
	headerFormat = "evident-format"
)

// The formats of a record's value, each a name and a version. Spans go
// as an OTLP ExportTraceServiceRequest in protobuf, or with encoding/gob
// when OTLP cannot carry them as they are (telemetry.ErrNotEncodable);
// profiles go with encoding/gob, or as received (formatProfileRequest).
// A name/version this reader does not know was written by a newer evident
// (errNewerFormat): the reader stops there rather than misread or skip it.
const (
	formatOTLPTraces = "otlp-traces/1"
	formatGobSpans   = "gob-spans/3"
	formatGobProfile = "gob-profiles/1"
	// formatGobSpansV1 is gob-spans before telemetry.Attrs had
	// MessagingOperation, formatGobSpansV2 before telemetry.Span had
	// Links and LinksDropped: the versions before wrote them, and they
	// decode as gob-spans/3 does, without those.
	formatGobSpansV1 = "gob-spans/1"
	formatGobSpansV2 = "gob-spans/2"
)

// formatProfileRequest is a request of profiles of one service as
// received, the engine's log's encoding of it
// (telemetry.AppendProfileRequest), which the engine decodes with the
// receivers' decoders (Producer.Profiles says when profiles go so). The
// request's version byte is the format's version: a request of another
// version goes under another format, so one under this format that is
// not of version 1 is damaged, skipped rather than taken for a newer
// evident's (which would stop its partition). A new
// telemetry.ProfileFormat needs a new version too: this version's
// decoders would take a profile of it for a malformed one.
const formatProfileRequest = "profile-request/1"

// errNewerFormat marks a record whose format header is a name/version
// this reader does not know: a newer evident's receiver wrote it.
var errNewerFormat = errors.New("a newer evident wrote it")

// newerFormat reports whether format is a name/version, as every writer
// of the log writes them, that this reader does not know: a newer
// writer's, rather than a header no evident wrote (which is malformed).
func newerFormat(format string) bool {
	switch format {
	case formatOTLPTraces, formatGobSpans, formatGobSpansV1, formatGobSpansV2, formatGobProfile:
		return false
	case formatProfileRequest:
		return false
	}
	name, version, ok := strings.Cut(format, "/")
	n, err := strconv.Atoi(version)
	return ok && name != "" && err == nil && n > 0
}

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

// splitProfile splits a profile that does not fit in a record alone into
// two with half of its samples each, each with the locations its samples
// use, indexed anew. An engine aggregates the two as the whole: their
// samples add, and they cover the same window. ok is false for a profile
// of one sample.
func splitProfile(b *telemetry.ProfileBatch) (first, rest *telemetry.ProfileBatch, ok bool) {
	if len(b.Samples) < 2 {
		return nil, nil, false
	}
	half := len(b.Samples) / 2
	return profilePart(b, b.Samples[:half]), profilePart(b, b.Samples[half:]), true
}

// profilePart is b with only samples, and only the locations they use.
func profilePart(b *telemetry.ProfileBatch, samples []telemetry.Sample) *telemetry.ProfileBatch {
	part := *b
	part.Locations = nil
	part.Samples = make([]telemetry.Sample, len(samples))
	index := map[int32]int32{}
	for i, smp := range samples {
		locs := make([]int32, len(smp.Locations))
		for j, li := range smp.Locations {
			if li < 0 || int(li) >= len(b.Locations) {
				// The decoders check indexes; one out of range stays
				// out of range, for the engine to skip as it would.
				locs[j] = -1
				continue
			}
			k, seen := index[li]
			if !seen {
				k = int32(len(part.Locations))
				index[li] = k
				part.Locations = append(part.Locations, b.Locations[li])
			}
			locs[j] = k
		}
		smp.Locations = locs
		part.Samples[i] = smp
	}
	return &part
}

// decode reads a record of the log.
func decode(r *kgo.Record) (Record, error) {
	rec := Record{Service: string(r.Key), Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp}
	rec.Tenant = header(r, headerTenant)
	format := header(r, headerFormat)
	where := fmt.Sprintf("record %s/%d@%d", r.Topic, r.Partition, r.Offset)
	if newerFormat(format) {
		// Before the other headers: a newer format may not have them.
		return rec, fmt.Errorf("decode %s: format %q is not one this evident knows: %w", where, format, errNewerFormat)
	}
	if rec.Tenant == "" {
		return rec, fmt.Errorf("decode %s: no %s header", where, headerTenant)
	}
	if err := store.ValidateTenant(rec.Tenant); err != nil {
		// No receiver writes it (its guard decides valid tenants only),
		// and no engine could keep it: applying it would fail for ever
		// and hold up every partition of the engine.
		return rec, fmt.Errorf("decode %s: %s header: %w", where, headerTenant, err)
	}
	var err error
	switch format {
	case formatOTLPTraces:
		// The spans that decode, as the receiver took them: a request is
		// written as received, with the spans it refused (a partial
		// success), whose errors were the client's to hear.
		rec.Spans, err = telemetry.TraceRequestSpans(r.Value, "value")
	case formatGobSpans, formatGobSpansV1, formatGobSpansV2:
		err = safegob.Decode(r.Value, &rec.Spans)
	case formatGobProfile:
		err = safegob.Decode(r.Value, &rec.Profiles)
	case formatProfileRequest:
		rec.Profiles, err = profileRequestBatches(r.Value)
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return rec, fmt.Errorf("decode %s: %w", where, err)
	}
	return rec, nil
}

// profileRequestBatches decodes a record of a profile request: the
// batches its profiles decode to, as the receiver decoded them. A
// profile that decodes in part gives what decoded, as it did in the
// receiver, which handed that on; only a record of which nothing
// decodes is an error.
func profileRequestBatches(v []byte) ([]*telemetry.ProfileBatch, error) {
	req, err := telemetry.ParseProfileRequest(v)
	if err != nil {
		return nil, err
	}
	ps, err := req.Decode()
	if len(ps) > 0 {
		return ps, nil
	}
	if err == nil {
		err = errors.New("no profile")
	}
	return nil, err
}

// header returns the value of r's header key, the last if there are
// several, or "".
func header(r *kgo.Record, key string) string {
	var v string
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}
