package telemetry

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/inflate"
)

// MaxProfileSize is the largest profile, after decompression, that
// DecodePprof accepts. Decoding a profile takes memory proportional to its
// size, and pprof tools have been seen to need gigabytes for profiles of a
// few hundred megabytes (google/pprof#407, #936); real CPU profiles are
// well below a megabyte and Pyroscope caps them at 4 MiB.
const MaxProfileSize = 256 << 20

// pprof field numbers (github.com/google/pprof proto/profile.proto).
const (
	pprofSampleType        = 1
	pprofSample            = 2
	pprofLocation          = 4
	pprofFunction          = 5
	pprofStringTable       = 6
	pprofTimeNanos         = 9
	pprofDurationNanos     = 10
	pprofPeriodType        = 11
	pprofPeriod            = 12
	pprofComment           = 13
	pprofDefaultSampleType = 14
)

// Label keys that tie a sample to a span or a service. otel-profiling-go
// and Pyroscope's JFR conversion write span_id, span_name and trace_id;
// older clients wrote the span id as profile_id, which Pyroscope renames
// to span_id on ingest (protocols.md §3.5).
const (
	labelSpanID      = "span_id"
	labelProfileID   = "profile_id"
	labelSpanName    = "span_name"
	labelTraceID     = "trace_id"
	labelServiceName = "service_name"
	labelServiceDot  = "service.name"
)

// gzipMagic starts every gzip stream.
const gzipMagic = "\x1f\x8b"

// DecodePprof decodes a pprof profile (gzipped or raw protobuf) into
// batches: one, or one per service when samples carry different
// service_name labels (the batches then share Locations).
//
// It reads only what evident needs — sample types, period, time, the
// string table, functions, locations with their lines and samples with
// their labels — straight off the wire without building a profile.Profile.
//
// A sample of no weight (a count of 0 or less in the type evident weighs
// samples by) is left out: it does not show code that ran. A sample
// referencing a missing location, or a location or function with
// an out-of-range index, is dropped; the other samples are returned
// together with an error listing what was dropped (*RecordError). When the
// profile as a whole cannot be read (truncated, not protobuf, no sample
// types) the batches are nil.
func DecodePprof(data []byte, source string) ([]*ProfileBatch, error) {
	return Limits{}.DecodePprof(data, source)
}

// DecodePprof is DecodePprof within l: a profile over them is refused
// with an error naming the limit that matches ErrTooLarge, before its
// samples, locations and functions are decoded.
func (l Limits) DecodePprof(data []byte, source string) ([]*ProfileBatch, error) {
	return new(ProfileDecoder).DecodePprof(l, data, source)
}

// ProfileDecoder decodes profiles as DecodePprof and Limits.DecodeProfile
// do, keeping for the next profile what decoding one needs and does not
// return: the inflater's tables, the buffer a gzipped profile is inflated
// into and the pprof decoder's tables (where each message is, the strings
// converted, the id indexes). What it returns shares no memory with them,
// so a later decode leaves it as it was. It keeps at most what a profile
// of maxKeptProfile bytes needed; after a larger one it lets go of all.
//
// A ProfileDecoder is not safe for concurrent use: a receiver keeps one
// per request it decodes at a time. The zero value is ready to use.
type ProfileDecoder struct {
	inflater *inflate.Decoder
	inflated []byte
	pprof    pprofDecoder
}

// maxKeptProfile bounds the size, inflated, of a profile whose buffers a
// ProfileDecoder keeps. Pyroscope caps profiles at 4 MiB; real CPU
// profiles are well below a megabyte.
const maxKeptProfile = 4 << 20

// DecodePprof is l.DecodePprof, reusing d's buffers.
func (d *ProfileDecoder) DecodePprof(l Limits, data []byte, source string) ([]*ProfileBatch, error) {
	return d.decodePprof(l, data, source, nil)
}

// decodePprof is DecodePprof recording, when texts is not nil, where the
// texts of the profile are.
func (d *ProfileDecoder) decodePprof(l Limits, data []byte, source string, texts *pprofTexts) ([]*ProfileBatch, error) {
	raw, err := d.gunzip(data, source, MaxProfileSize)
	defer func() { d.release(len(raw)) }()
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("decode pprof %s: %w: empty profile", source, ErrMalformed)
	}
	pd := &d.pprof
	pd.reset(raw, source, l, texts)
	if err := pd.scan(); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("decode pprof %s: %w: %w", source, ErrMalformed, err)
	}
	batches, err := pd.build()
	if err != nil {
		return nil, fmt.Errorf("decode pprof %s: %w", source, err)
	}
	if texts != nil {
		pd.ownTexts(texts)
	}
	return batches, pd.errs.err()
}

// release lets go of what the profile just decoded left in d: the
// references into it and into the input, and, after a profile of size
// bytes over maxKeptProfile, every buffer.
func (d *ProfileDecoder) release(size int) {
	if size > maxKeptProfile || cap(d.inflated) > maxKeptProfile {
		d.inflated = nil
		d.pprof = pprofDecoder{}
		return
	}
	d.pprof.clear()
}

// maybeGunzip returns data itself, or its decompressed content when it is
// gzipped, within MaxProfileSize.
func maybeGunzip(data []byte, source string) ([]byte, error) {
	return gunzipLimit(data, source, MaxProfileSize)
}

// gunzipLimit returns data itself, or, when it is gzipped, its
// decompressed content within limit.
func gunzipLimit(data []byte, source string, limit int) ([]byte, error) {
	return new(ProfileDecoder).gunzip(data, source, limit)
}

// gunzip returns data itself, or, when it is gzipped, its decompressed
// content within limit, in d's buffer: valid until d decodes again.
func (d *ProfileDecoder) gunzip(data []byte, source string, limit int) ([]byte, error) {
	if !hasPrefix(data, gzipMagic) {
		if len(data) > limit {
			return nil, fmt.Errorf("decode %s: %d bytes, limit %d: %w", source, len(data), limit, ErrTooLarge)
		}
		return data, nil
	}
	if d.inflater == nil {
		d.inflater = new(inflate.Decoder)
	}
	buf, err := d.inflater.Gunzip(d.inflated, data, limit)
	d.inflated = buf
	if errors.Is(err, inflate.ErrLimit) {
		return nil, fmt.Errorf("decode %s: more than %d bytes decompressed: %w", source, limit, ErrTooLarge)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: gzip: %w: %w", source, ErrMalformed, CutShort("gzip", int64(len(buf)), err))
	}
	return buf, nil
}

// valueType is a pprof ValueType: string-table indexes of type and unit.
type valueType struct{ typ, unit int64 }

// span is where a message or a string is in the profile: raw[off:end].
// Spans rather than sub-slices keep the decoder's tables free of
// pointers, which the garbage collector then does not scan, and which
// need not be cleared for the input to be let go of.
type span struct{ off, end uint32 }

// pprofDecoder holds the raw pieces of one profile between the scan and
// the build, and the tables of the build. A ProfileDecoder keeps it from
// one profile to the next; reset starts a profile.
type pprofDecoder struct {
	source string
	errs   recordErrors
	limits Limits
	raw    []byte

	strs     []span   // string table
	strCache []string // strs converted on first use ("" until then), so each is allocated once
	// frameStrs are the strings of functions' names and files, converted
	// on first use as strCache's are, but copied into frameText, one
	// buffer per profile: a string each cost an allocation per function.
	// They are apart from strCache because nothing keeps a frame's
	// strings past the batch (the Attributor copies what it caches),
	// while the model keeps label values and sample types, which would
	// pin the whole buffer.
	frameStrs []string
	frameText strings.Builder

	sampleTypes []valueType
	periodType  valueType
	period      int64
	timeNanos   int64
	duration    int64
	defaultType int64

	samples, locations, functions []span

	// The build's tables, kept for their storage.
	funcs           []attribution.Frame
	funcOK          []bool
	ids             []uint64
	funcIDs, locIDs idIndex
	locScratch      []int32
	values          []int64

	// texts, when not nil, gets the labels and comments met.
	texts *pprofTexts
}

// reset makes d ready to decode raw, keeping the storage of its tables.
func (d *pprofDecoder) reset(raw []byte, source string, l Limits, texts *pprofTexts) {
	*d = pprofDecoder{
		source: source, errs: recordErrors{source: source}, limits: l, raw: raw, texts: texts,
		strs: d.strs[:0], strCache: d.strCache[:0], frameStrs: d.frameStrs[:0], sampleTypes: d.sampleTypes[:0],
		samples: d.samples[:0], locations: d.locations[:0], functions: d.functions[:0],
		funcs: d.funcs[:0], funcOK: d.funcOK[:0], ids: d.ids[:0], funcIDs: d.funcIDs, locIDs: d.locIDs,
		locScratch: d.locScratch[:0], values: d.values[:0],
	}
}

// clear drops the references d holds into the profile it decoded and
// into what it returned.
func (d *pprofDecoder) clear() {
	clear(d.strCache)
	clear(d.frameStrs)
	d.frameText = strings.Builder{}
	clear(d.funcs)
	d.raw, d.texts, d.source, d.errs = nil, nil, "", recordErrors{}
}

// bytes returns the bytes at s.
func (d *pprofDecoder) bytes(s span) []byte { return d.raw[s.off:s.end] }

// spanOf returns where b, a sub-slice of d.raw that runs to its capacity's
// end as the wire readers' slices do, is in d.raw.
func (d *pprofDecoder) spanOf(b []byte) span {
	off := uint32(cap(d.raw) - cap(b))
	return span{off, off + uint32(len(b))}
}

// pprofTexts says where the texts of a pprof profile are beyond its
// functions, files and mappings, as its decoder met them: the string
// indexes of the key and value of every string label of every sample, and
// of every comment (ProfileRequest.Masks).
type pprofTexts struct {
	// strs is where each entry of the string table is in buf, nil until
	// the profile decoded. Only the entries labels and comments refer to
	// are set: they are copied out of the profile, whose bytes may be the
	// decoder's buffer, which the next profile overwrites.
	strs     []span
	buf      []byte
	labels   [][2]uint32
	comments []uint64
	// other is set when the profile holds text these do not cover: a
	// sample dropped before all its labels were read.
	other bool
}

// str returns string-table entry i, which must be one the texts refer to.
func (t *pprofTexts) str(i uint64) string { return bytesString(t.buf[t.strs[i].off:t.strs[i].end]) }

// ownTexts copies the strings t refers to into t.buf.
func (d *pprofDecoder) ownTexts(t *pprofTexts) {
	strs := make([]span, len(d.strs))
	size := 0
	mark := func(i uint64) {
		if i < uint64(len(strs)) && strs[i].end == 0 {
			// A mark until the copy below sets the entry.
			strs[i].end = 1
			size += int(d.strs[i].end - d.strs[i].off)
		}
	}
	for _, l := range t.labels {
		mark(uint64(l[0]))
		mark(uint64(l[1]))
	}
	for _, c := range t.comments {
		mark(c)
	}
	buf := make([]byte, 0, size)
	for i := range strs {
		if strs[i].end != 0 {
			start := uint32(len(buf))
			buf = append(buf, d.bytes(d.strs[i])...)
			strs[i] = span{start, uint32(len(buf))}
		}
	}
	t.strs, t.buf = strs, buf
}

// scan walks the top-level fields once, noting where the repeated
// messages are: the string table comes last in most encoders, so nothing
// can be resolved before the whole message is seen. The limits are checked
// on the counts of the whole message, as if counted before: a profile over
// them is refused as too large even when a field after the limit is
// malformed.
func (d *pprofDecoder) scan() error {
	err := d.scanFields()
	if err == nil {
		// scanFields stops at the first count over a limit: the tables
		// are within them.
		return nil
	}
	// Counting again, only on this path, says whether the profile was over
	// a limit, which scanFields stopped at, and is the error to return
	// then.
	var counts [pprofStringTable + 1]int
	for off := 0; off < len(d.raw); {
		num, _, _, _, n, err := readField(d.raw[off:])
		if err != nil {
			break
		}
		if num <= pprofStringTable {
			counts[num]++
		}
		off += n
	}
	if lerr := d.checkCounts(counts[pprofSample], counts[pprofLocation], counts[pprofFunction], counts[pprofStringTable]); lerr != nil {
		return lerr
	}
	return err
}

// checkCounts refuses counts of a profile's samples, locations,
// functions and strings over the limits.
func (d *pprofDecoder) checkCounts(samples, locations, functions, strs int) error {
	if err := d.limits.check("pprof "+d.source, samples, locations, functions); err != nil {
		return err
	}
	if m := d.limits.maxStrings(); m > 0 && strs > m {
		return fmt.Errorf("decode pprof %s: %d strings, over %d (4 per allowed sample and location): %w", d.source, strs, m, ErrTooLarge)
	}
	return nil
}

// errOverLimit stops scanFields at a count over a limit; scan then counts
// the whole message for the error.
var errOverLimit = errors.New("over a limit")

// scanFields is scan's one pass. The tables grow by appending into the
// storage the decoder keeps from its last profile: a counting pass before
// it, to size them, took more work than the appends (a tenth of a profile's
// decoding before attribution). It stops at the first count over a limit,
// so that a profile's tables hold no more than the limits allow.
func (d *pprofDecoder) scanFields() error {
	raw := d.raw
	maxSamples, maxLocations, maxStrs := d.limits.MaxSamples, d.limits.MaxLocations, d.limits.maxStrings()
	if maxSamples == 0 {
		maxSamples = math.MaxInt
	}
	if maxLocations == 0 {
		maxLocations = math.MaxInt
	}
	if maxStrs == 0 {
		maxStrs = math.MaxInt
	}
	for off := 0; off < len(raw); {
		num, p, n := shortBytesField(raw[off:])
		var typ protowire.Type = protowire.BytesType
		var v uint64
		if n == 0 {
			var err error
			if num, typ, v, p, n, err = readField(raw[off:]); err != nil {
				return fmt.Errorf("at byte %d: %w", off, err)
			}
		}
		off += n
		switch num {
		case pprofSampleType, pprofPeriodType:
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d: wire type %d, want message", num, typ)
			}
			vt, err := decodeValueType(p)
			if err != nil {
				return fmt.Errorf("sample_type %d: %w", len(d.sampleTypes), err)
			}
			if num == pprofSampleType {
				d.sampleTypes = append(d.sampleTypes, vt)
			} else {
				d.periodType = vt
			}
		case pprofSample, pprofLocation, pprofFunction, pprofStringTable:
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d: wire type %d, want message", num, typ)
			}
			s := d.spanOf(p)
			switch num {
			case pprofSample:
				if len(d.samples) == maxSamples {
					return errOverLimit
				}
				d.samples = append(d.samples, s)
			case pprofLocation:
				if len(d.locations) == maxLocations {
					return errOverLimit
				}
				d.locations = append(d.locations, s)
			case pprofFunction:
				if len(d.functions) == maxLocations {
					return errOverLimit
				}
				d.functions = append(d.functions, s)
			default:
				if len(d.strs) == maxStrs {
					return errOverLimit
				}
				d.strs = append(d.strs, s)
			}
		case pprofTimeNanos:
			d.timeNanos = int64(v)
		case pprofDurationNanos:
			d.duration = int64(v)
		case pprofPeriod:
			d.period = int64(v)
		case pprofDefaultSampleType:
			d.defaultType = int64(v)
		case pprofComment:
			if d.texts == nil {
				break
			}
			if typ != protowire.BytesType {
				d.texts.comments = append(d.texts.comments, v)
				break
			}
			for b := p; len(b) > 0; {
				v, n := protowire.ConsumeVarint(b)
				if n < 0 {
					d.texts.other = true
					break
				}
				d.texts.comments, b = append(d.texts.comments, v), b[n:]
			}
		}
	}
	return nil
}

func decodeValueType(b []byte) (valueType, error) {
	var vt valueType
	err := forEachField(b, func(f field) error {
		switch f.num {
		case 1:
			vt.typ = int64(f.v)
		case 2:
			vt.unit = int64(f.v)
		}
		return nil
	})
	return vt, err
}

// str returns string-table entry i, converted once.
func (d *pprofDecoder) str(i int64) (string, error) {
	if i < 0 || i >= int64(len(d.strs)) {
		return "", fmt.Errorf("string index %d out of range [0,%d)", i, len(d.strs))
	}
	s := d.strCache[i]
	if s == "" && d.strs[i].end > d.strs[i].off {
		s = string(d.bytes(d.strs[i]))
		d.strCache[i] = s
	}
	return s, nil
}

// frameStr is str for the name and file of a function: copied into
// d.frameText, which holds every string of the table at most once, so that
// it is never grown.
func (d *pprofDecoder) frameStr(i int64) (string, error) {
	if i < 0 || i >= int64(len(d.strs)) {
		return "", fmt.Errorf("string index %d out of range [0,%d)", i, len(d.strs))
	}
	s := d.frameStrs[i]
	if s == "" && d.strs[i].end > d.strs[i].off {
		if d.frameText.Cap() == 0 {
			size := 0
			for _, sp := range d.strs {
				size += int(sp.end - sp.off)
			}
			d.frameText.Grow(size)
		}
		start := d.frameText.Len()
		d.frameText.Write(d.bytes(d.strs[i]))
		s = d.frameText.String()[start:]
		d.frameStrs[i] = s
	}
	return s, nil
}

// labelKeys are where the string table holds the label keys a sample is
// tied to a span or a service by (labelSlot), by slot: the first index of
// each, or -1.
type labelKeys struct {
	index [6]int64
	// repeated is set when one of them is in the table more than once: a
	// label is then known by its key's text, as profile.Parse knows it,
	// whichever index it names.
	repeated bool
}

// labelKeys finds the label keys of the profile's string table.
func (d *pprofDecoder) labelKeys() labelKeys {
	k := labelKeys{index: [6]int64{-1, -1, -1, -1, -1, -1}}
	for i, sp := range d.strs {
		if slot := labelSlot(d.bytes(sp)); slot >= 0 {
			if k.index[slot] >= 0 {
				k.repeated = true
			} else {
				k.index[slot] = int64(i)
			}
		}
	}
	return k
}

// labelSlot returns the slot of a label key sampleLabel reads, or -1.
func labelSlot(key []byte) int {
	switch string(key) {
	case labelSpanID:
		return 0
	case labelProfileID:
		return 1
	case labelSpanName:
		return 2
	case labelTraceID:
		return 3
	case labelServiceName:
		return 4
	case labelServiceDot:
		return 5
	}
	return -1
}

// build resolves the scanned pieces into batches.
func (d *pprofDecoder) build() ([]*ProfileBatch, error) {
	if len(d.strs) == 0 || d.strs[0].end != d.strs[0].off {
		return nil, fmt.Errorf("%w: string table must start with the empty string", ErrMalformed)
	}
	d.strCache = resize(d.strCache, len(d.strs))
	d.frameStrs = resize(d.frameStrs, len(d.strs))
	if len(d.sampleTypes) == 0 {
		return nil, fmt.Errorf("%w: no sample types", ErrMalformed)
	}
	types := make([][2]string, len(d.sampleTypes))
	for i, vt := range d.sampleTypes {
		t, err := d.str(vt.typ)
		if err != nil {
			return nil, fmt.Errorf("%w: sample_type %d: %w", ErrMalformed, i, err)
		}
		u, err := d.str(vt.unit)
		if err != nil {
			return nil, fmt.Errorf("%w: sample_type %d: %w", ErrMalformed, i, err)
		}
		types[i] = [2]string{t, u}
	}
	defaultType, err := d.str(d.defaultType)
	if err != nil {
		return nil, fmt.Errorf("%w: default_sample_type: %w", ErrMalformed, err)
	}
	periodUnit, err := d.str(d.periodType.unit)
	if err != nil {
		return nil, fmt.Errorf("%w: period_type: %w", ErrMalformed, err)
	}
	vi, ci := chooseSampleType(types, defaultType)
	b := &ProfileBatch{
		Source:     d.source,
		SampleType: types[vi][0],
		Unit:       types[vi][1],
		Period:     d.period,
		Duration:   time.Duration(d.duration),
	}
	if d.timeNanos != 0 {
		b.Start = time.Unix(0, d.timeNanos).UTC()
	}
	// Derive the count from the value only when the period is in the same
	// unit, so that value/period is a number of samples.
	perPeriod := ci < 0 && types[vi][1] != "count" && d.period > 0 && periodUnit == types[vi][1]

	d.buildFunctions()
	d.buildLocations(b)
	return d.buildSamples(b, vi, ci, perPeriod), nil
}

// chooseSampleType picks the value evident weighs samples by, and the
// index of a count type matching it (-1 if none). CPU time comes first;
// then a plain sample count (wall-clock profilers, py-spy); then allocated
// space, because every sampled allocation shows code that ran while
// in-use space forgets what was freed; then the profile's default type;
// then the last type, which pprof tools treat as the default. A space is
// counted by its objects, a delay by its contentions.
func chooseSampleType(types [][2]string, defaultType string) (value, count int) {
	find := func(typ, unit string) int {
		for i, t := range types {
			if t[0] == typ && (unit == "" || t[1] == unit) {
				return i
			}
		}
		return -1
	}
	samples := find("samples", "count")
	if samples < 0 {
		samples = find("sample", "count")
	}
	value = find("cpu", "nanoseconds")
	count = samples
	switch {
	case value >= 0:
	case samples >= 0:
		value = samples
	case find("alloc_space", "") >= 0:
		value, count = find("alloc_space", ""), find("alloc_objects", "count")
	default:
		value = len(types) - 1
		if defaultType != "" {
			if i := find(defaultType, ""); i >= 0 {
				value = i
			}
		}
		switch t := types[value][0]; {
		case len(t) > 6 && t[len(t)-6:] == "_space":
			count = find(t[:len(t)-6]+"_objects", "count")
		case t == "delay":
			// Go's mutex and block profiles: a stack's contentions are
			// how many times it waited; delay is how long in all.
			count = find("contentions", "count")
		}
	}
	if types[value][1] == "count" {
		count = value
	}
	return value, count
}

// idIndex maps pprof ids (usually 1..n, but any uint64) to positions.
type idIndex struct {
	dense   []int32 // id → position+1, when ids are small
	sparse  map[uint64]int32
	isDense bool
}

func (x *idIndex) set(id uint64, pos int32) {
	if x.isDense {
		x.dense[id] = pos + 1
		return
	}
	x.sparse[id] = pos + 1
}

// get returns the position of id, or -1.
func (x *idIndex) get(id uint64) int32 {
	if x.isDense {
		if id < uint64(len(x.dense)) {
			return x.dense[id] - 1
		}
		return -1
	}
	return x.sparse[id] - 1
}

// index indexes the ids of Function or Location messages, read while
// decoding them, by position, in x's storage.
func (x *idIndex) index(ids []uint64) {
	var maxID uint64
	for _, id := range ids {
		maxID = max(maxID, id)
	}
	x.isDense = maxID <= uint64(4*len(ids)+64)
	if x.isDense {
		x.dense = resize(x.dense, int(maxID)+1)
		clear(x.dense)
	} else if x.sparse == nil {
		x.sparse = make(map[uint64]int32, len(ids))
	} else {
		clear(x.sparse)
	}
	for i, id := range ids {
		if id != 0 {
			x.set(id, int32(i))
		}
	}
}

// resize returns s with length n, reusing its storage when it is large
// enough; the elements are not cleared.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// buildFunctions resolves functions to frames (d.funcs) and indexes their
// ids (d.funcIDs). A function with a bad string index is reported and its
// frame left out of the locations using it (d.funcOK false), whose other
// lines are kept.
func (d *pprofDecoder) buildFunctions() {
	n := len(d.functions)
	d.funcs, d.funcOK, d.ids = resize(d.funcs, n), resize(d.funcOK, n), resize(d.ids, n)
	frames, ok, idList := d.funcs, d.funcOK, d.ids
	for i, sp := range d.functions {
		var name, sysName, file int64
		idList[i] = 0
		var err error
		msg := d.bytes(sp)
		for off := 0; off < len(msg); {
			num, v, n := shortVarintField(msg[off:])
			if n == 0 {
				var ferr error
				if num, _, v, _, n, ferr = readField(msg[off:]); ferr != nil {
					err = fmt.Errorf("at byte %d: %w", off, ferr)
					break
				}
			}
			switch num {
			case 1:
				idList[i] = v
			case 2:
				name = int64(v)
			case 3:
				sysName = int64(v)
			case 4:
				file = int64(v)
			}
			off += n
		}
		frames[i], ok[i] = attribution.Frame{}, false
		if err == nil {
			if name == 0 {
				name = sysName
			}
			frames[i].Function, err = d.frameStr(name)
		}
		if err == nil {
			frames[i].File, err = d.frameStr(file)
		}
		if err != nil {
			d.errs.addf(err, "function %d (id %d)", i, idList[i])
			continue
		}
		ok[i] = true
	}
	d.funcIDs.index(idList)
}

// moreLines adds to the error of a location's first bad line how many
// more it had: the location is reported once, however many lines.
func moreLines(err error, more int) error {
	switch more {
	case 0:
		return err
	case 1:
		return fmt.Errorf("%w, and 1 more line", err)
	}
	return fmt.Errorf("%w, and %d more lines", err, more)
}

// buildLocations fills b.Locations, one entry per location message, and
// indexes the locations' ids (d.locIDs).
func (d *pprofDecoder) buildLocations(b *ProfileBatch) {
	funcs, funcOK := d.funcs, d.funcOK
	d.ids = resize(d.ids, len(d.locations))
	idList := d.ids
	b.Locations = make([][]attribution.Frame, len(d.locations))
	// One backing array for all frames: a location has one line per
	// inlined function, seldom more than a few.
	backing := make([]attribution.Frame, 0, len(d.locations)+len(d.locations)/2)
	for i, sp := range d.locations {
		start := len(backing)
		idList[i] = 0
		var err, badLine error
		var badLines int
		msg := d.bytes(sp)
		line := 0 // the index of the next line, for errors
		for off := 0; off < len(msg); {
			// A location's fields: its id, mapping id and address
			// (varints) and its lines (messages), read inline when short.
			typ := protowire.VarintType
			num, v, n := shortVarintField(msg[off:])
			var p []byte
			if n == 0 {
				// The address, a long varint whose value a location's
				// frames do not need, is skipped (longVarintField); a
				// long id is read.
				if num, p, n = shortBytesField(msg[off:]); n != 0 {
					typ = protowire.BytesType
				} else if num, n = longVarintField(msg[off:]); n == 0 || num == 1 {
					var ferr error
					if num, typ, v, p, n, ferr = readField(msg[off:]); ferr != nil {
						err = fmt.Errorf("at byte %d: %w", off, ferr)
						break
					}
				}
			}
			off += n
			if num == 1 {
				idList[i] = v
			}
			if num != 4 {
				continue
			}
			if typ != protowire.BytesType {
				err = fmt.Errorf("line: wire type %d, want message", typ)
				break
			}
			var fid uint64
			for loff := 0; loff < len(p); {
				lnum, lv, ln := shortVarintField(p[loff:])
				if ln == 0 {
					var lerr error
					if lnum, _, lv, _, ln, lerr = readField(p[loff:]); lerr != nil {
						err = fmt.Errorf("line %d: at byte %d: %w", line, loff, lerr)
						break
					}
				}
				if lnum == 1 {
					fid = lv
				}
				loff += ln
			}
			if err != nil {
				break
			}
			fi := d.funcIDs.get(fid)
			if fi < 0 {
				// The location's other lines are frames of their own
				// (inlined calls), as good as any: they stay, as in
				// DecodeOTLPProfiles.
				if badLines == 0 {
					badLine = fmt.Errorf("line %d: function id %d does not exist", line, fid)
				}
				badLines++
				line++
				continue
			}
			line++
			if funcOK[fi] {
				backing = append(backing, funcs[fi])
			}
		}
		switch {
		case err != nil:
			d.errs.addf(err, "location %d (id %d)", i, idList[i])
			backing = backing[:start]
			// The location stays (empty) so that samples through it keep
			// their other frames.
		case badLines > 0:
			d.errs.addf(moreLines(badLine, badLines-1), "location %d (id %d)", i, idList[i])
		}
		b.Locations[i] = backing[start:len(backing):len(backing)]
	}
	d.locIDs.index(idList)
}

// buildSamples decodes the samples into b, splitting them by service
// label when they disagree.
func (d *pprofDecoder) buildSamples(b *ProfileBatch, vi, ci int, perPeriod bool) []*ProfileBatch {
	keys := d.labelKeys()
	b.Samples = make([]Sample, 0, len(d.samples))
	var services []string // per kept sample, only when some sample has a service label
	var chunk []int32
	scratch, values := d.locScratch[:0], d.values[:0]
	defer func() { d.locScratch, d.values = scratch[:0], values[:0] }()
	for i, sp := range d.samples {
		var s Sample
		var service string
		var err error
		scratch, values, err = d.decodeSample(d.bytes(sp), keys, &s, &service, scratch[:0], values[:0])
		if err == nil && len(values) != len(d.sampleTypes) {
			err = fmt.Errorf("%d values for %d sample types", len(values), len(d.sampleTypes))
		}
		if err != nil {
			d.errs.addf(err, "sample %d", i)
			if d.texts != nil {
				d.texts.other = true
			}
			continue
		}
		s.Value = values[vi]
		switch {
		case ci >= 0:
			s.Count = values[ci]
		case perPeriod:
			s.Count = (s.Value + d.period/2) / d.period
			if s.Count == 0 && s.Value > 0 {
				s.Count = 1
			}
		case s.Value > 0:
			s.Count = 1
		}
		if s.Count <= 0 {
			// No weight, no sign that the code ran in the profile's
			// window: godeltaprof's heap profiles keep the stacks of
			// memory still in use with no allocation since the last
			// profile, and a diff profile's base is negative.
			continue
		}
		scratch = d.limits.depth(scratch)
		// Location indexes go into shared chunks: one allocation per
		// many samples, and unlike one growing slice nothing is copied
		// twice.
		if cap(chunk)-len(chunk) < len(scratch) {
			// Sized for the samples left at a guessed 16 frames each, so
			// a small profile does not get a large chunk.
			chunk = make([]int32, 0, max(min(locChunk, 16*(len(d.samples)-i)), len(scratch)))
		}
		start := len(chunk)
		chunk = append(chunk, scratch...)
		s.Locations = chunk[start:len(chunk):len(chunk)]
		if service != "" && services == nil {
			services = make([]string, len(b.Samples), cap(b.Samples))
		}
		if services != nil {
			services = append(services, service)
		}
		b.Samples = append(b.Samples, s)
	}
	return splitByService(b, services)
}

// locChunk is the number of location indexes per shared chunk.
const locChunk = 1 << 16

// decodeSample decodes one Sample message: its location ids resolved to
// indexes (appended to locs), its values, and its labels. It is the
// innermost loop of pprof decoding, so it reads the wire inline.
func (d *pprofDecoder) decodeSample(msg []byte, keys labelKeys, s *Sample, service *string, locs []int32, values []int64) ([]int32, []int64, error) {
	for off := 0; off < len(msg); {
		var num protowire.Number
		var typ protowire.Type
		n := 1
		if c := msg[off]; c < 0x80 && c>>3 != 0 {
			num, typ = protowire.Number(c>>3), protowire.Type(c&7)
		} else if num, typ, n = protowire.ConsumeTag(msg[off:]); n < 0 {
			return locs, values, fmt.Errorf("at byte %d: %w", off, protowire.ParseError(n))
		}
		off += n
		switch {
		case num == 1 && typ == protowire.BytesType:
			packed, n := protowire.ConsumeBytes(msg[off:])
			if n < 0 {
				return locs, values, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			off += n
			var err error
			if locs, err = d.appendLocations(locs, packed); err != nil {
				return locs, values, err
			}
		case num == 2 && typ == protowire.BytesType:
			packed, n := protowire.ConsumeBytes(msg[off:])
			if n < 0 {
				return locs, values, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			off += n
			for len(packed) > 0 {
				v, m := protowire.ConsumeVarint(packed)
				if m < 0 {
					return locs, values, fmt.Errorf("packed field %d: %w", num, protowire.ParseError(m))
				}
				values, packed = append(values, int64(v)), packed[m:]
			}
		case (num == 1 || num == 2) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(msg[off:])
			if n < 0 {
				return locs, values, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			off += n
			if num == 2 {
				values = append(values, int64(v))
				continue
			}
			li := d.locIDs.get(v)
			if li < 0 {
				return locs, values, fmt.Errorf("location id %d does not exist", v)
			}
			locs = append(locs, li)
		case num == 3 && typ == protowire.BytesType:
			label, n := protowire.ConsumeBytes(msg[off:])
			if n < 0 {
				return locs, values, fmt.Errorf("label: %w", protowire.ParseError(n))
			}
			off += n
			if err := d.sampleLabel(label, keys, s, service); err != nil {
				return locs, values, err
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, msg[off:])
			if n < 0 {
				return locs, values, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			off += n
		}
	}
	return locs, values, nil
}

// appendLocations appends to locs the positions of the location ids
// packed in a sample's location_id field. Ids up to 16383, most of them,
// take one or two bytes, read here without a call.
func (d *pprofDecoder) appendLocations(locs []int32, packed []byte) ([]int32, error) {
	x := &d.locIDs
	for i := 0; i < len(packed); {
		var v uint64
		if c := packed[i]; c < 0x80 {
			v = uint64(c)
			i++
		} else if i+1 < len(packed) && packed[i+1] < 0x80 {
			v = uint64(c&0x7f) | uint64(packed[i+1])<<7
			i += 2
		} else {
			var m int
			v, m = protowire.ConsumeVarint(packed[i:])
			if m < 0 {
				return locs, fmt.Errorf("packed field 1: %w", protowire.ParseError(m))
			}
			i += m
		}
		li := int32(-1)
		switch {
		case !x.isDense:
			li = x.sparse[v] - 1
		case v < uint64(len(x.dense)):
			li = x.dense[v] - 1
		}
		if li < 0 {
			return locs, fmt.Errorf("location id %d does not exist", v)
		}
		locs = append(locs, li)
	}
	return locs, nil
}

// sampleLabel applies one pprof label to the sample.
func (d *pprofDecoder) sampleLabel(msg []byte, keys labelKeys, s *Sample, service *string) error {
	var key, str int64
	for off := 0; off < len(msg); {
		num, v, n := shortVarintField(msg[off:])
		if n == 0 {
			var err error
			if num, _, v, _, n, err = readField(msg[off:]); err != nil {
				return fmt.Errorf("label: at byte %d: %w", off, err)
			}
		}
		switch num {
		case 1:
			key = int64(v)
		case 2:
			str = int64(v)
		}
		off += n
	}
	if key < 0 || key >= int64(len(d.strs)) {
		return fmt.Errorf("label key: string index %d out of range [0,%d)", key, len(d.strs))
	}
	if str < 0 || str >= int64(len(d.strs)) {
		return fmt.Errorf("label %s: string index %d out of range [0,%d)", d.bytes(d.strs[key]), str, len(d.strs))
	}
	if d.texts != nil && str > 0 {
		d.texts.labels = append(d.texts.labels, [2]uint32{uint32(key), uint32(str)})
	}
	slot := -1
	for i, k := range keys.index {
		if k > 0 && key == k {
			slot = i
			break
		}
	}
	if slot < 0 && keys.repeated {
		slot = labelSlot(d.bytes(d.strs[key]))
	}
	if slot < 0 {
		return nil
	}
	v, _ := d.str(str)
	switch slot {
	case 0:
		s.SpanID = v
	case 1:
		if s.SpanID == "" {
			s.SpanID = v
		}
	case 2:
		s.SpanName = v
	case 3:
		s.TraceID = v
	case 4:
		*service = v
	case 5:
		if *service == "" {
			*service = v
		}
	}
	return nil
}

// splitByService sets b.Service when every labelled sample agrees, or
// returns one batch per service (unlabelled samples in a batch with no
// service) sharing b.Locations.
func splitByService(b *ProfileBatch, services []string) []*ProfileBatch {
	if services == nil {
		return []*ProfileBatch{b}
	}
	order := []string{}
	groups := map[string][]Sample{}
	for i, s := range b.Samples {
		svc := services[i]
		if _, ok := groups[svc]; !ok {
			order = append(order, svc)
		}
		groups[svc] = append(groups[svc], s)
	}
	out := make([]*ProfileBatch, 0, len(order))
	for _, svc := range order {
		nb := *b
		nb.Service = svc
		nb.Samples = groups[svc]
		out = append(out, &nb)
	}
	return out
}
