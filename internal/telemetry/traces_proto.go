package telemetry

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxInterned bounds the strings one decode keeps for reuse, so that
// high-cardinality values (URLs with ids, query texts) cannot grow it
// without limit; beyond it strings are still decoded, just not shared.
const maxInterned = 1 << 16

// interner shares the strings that repeat across spans (names, methods,
// routes, service names), so a batch holds one copy of each.
type interner struct {
	m map[string]string
	// size is the bytes of the strings in m.
	size int
	// last holds the value last decoded of each attribute, and of the
	// span name at nameSlot: most spans of a request repeat the values of
	// the span before, which a comparison finds without hashing.
	last [nameSlot + 1]string
}

// nameSlot is the slot of interner.last that holds span names.
const nameSlot = numAttrs

// bytesAt is bytes for a value of the attribute (or span name) in slot,
// and whether it is the slot's last value. Every caller passes the value
// on to Texts.textAt with that answer, which relies on seeing every value
// of a slot. (A helper doing both cost 0.9 % more instructions on the
// serve path: it is not inlined, and its arguments spill.)
func (in *interner) bytesAt(slot attrID, b []byte) (string, bool) {
	if s := in.last[slot]; s == string(b) {
		return s, true
	}
	s := in.bytes(b)
	in.last[slot] = s
	return s, false
}

func (in *interner) bytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	return in.add(string(b))
}

// string returns the shared copy of s.
func (in *interner) string(s string) string {
	if s == "" {
		return ""
	}
	if t, ok := in.m[s]; ok {
		return t
	}
	return in.add(s)
}

func (in *interner) add(s string) string {
	if in.m == nil {
		in.m = make(map[string]string, 256)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
		in.size += len(s)
	}
	return s
}

// traceDecoder decodes OTLP trace protobuf (ExportTraceServiceRequest,
// TracesData, Tempo's Trace: all hold ResourceSpans as field 1) straight
// off the wire. It is the fast path for the binary form: pdata builds the
// whole object tree and then the model copies out of it, which measured
// below half the span rate the model needs (perf-reliability.md §9.2).
// The tests decode the same inputs with ptrace.ProtoUnmarshaler and
// compare.
type traceDecoder struct {
	errs *recordErrors
	// prefix names the enclosing record in record names ("message 3: ")
	// when a file holds several requests.
	prefix string
	in     interner
	attrs  attrBuilder
	res    attrBuilder
	// texts, when set, gets where every text of the request is, as the
	// decoder meets it (Texts).
	texts *Texts
	// appending makes the spans of every resource follow those of the
	// resources before in spans, one slice for the request
	// (DecodeReceivedTraceRequest); otherwise each resource's spans are a
	// slice of their own.
	appending bool
	spans     []Span
	// links holds the links of the request's spans, each span's a part
	// of it (Span.Links): one slice for a request, none for a request
	// without links, the most common.
	links []Link
}

// minSpanWire is the fewest bytes a span field with both ids takes: its
// tag and length, and the ids' (16 and 8 bytes, each with its tag and
// length).
const minSpanWire = 2 + 2 + 16 + 2 + 8

// OTLP trace field numbers (opentelemetry/proto/trace/v1/trace.proto).
const (
	rsResource   = 1
	rsScopeSpans = 2
	ssSpans      = 2

	spanTraceID      = 1
	spanSpanID       = 2
	spanParentID     = 4
	spanName         = 5
	spanKind         = 6
	spanStart        = 7
	spanEnd          = 8
	spanAttributes   = 9
	spanLinks        = 13
	spanDroppedLinks = 14
	spanStatus       = 15
	statusCode       = 3

	linkTraceID = 1
	linkSpanID  = 2
)

// decodeRequest decodes every ResourceSpans of msg and emits the spans of
// each. A malformed span is dropped and reported; a malformed or
// truncated resource or scope keeps the spans before the damage.
func (d *traceDecoder) decodeRequest(msg []byte, emit func([]Span) error) error {
	i := 0
	for off := 0; off < len(msg); {
		num, typ, p, n, truncated, err := readFieldTruncated(msg[off:])
		if err != nil {
			err = fmt.Errorf("at byte %d: %w", off, err)
			if i == 0 {
				d.errs.addf(err, "%srequest", d.prefix)
			} else {
				d.errs.addf(err, "%safter resource_spans[%d]", d.prefix, i-1)
			}
			return nil
		}
		off += n
		if num != 1 {
			d.texts.unknown(typ)
			continue
		}
		record := fmt.Sprintf("%sresource_spans[%d]", d.prefix, i)
		i++
		if typ != protowire.BytesType {
			d.errs.add(record, fmt.Errorf("wire type %d, want message", typ))
			continue
		}
		if truncated {
			d.errs.add(record, fmt.Errorf("truncated: %w", io.ErrUnexpectedEOF))
		}
		var spans []Span
		if d.appending {
			spans = d.spans
		}
		start := len(spans)
		spans = d.decodeResourceSpans(p, record, truncated, spans)
		if d.appending {
			d.spans = spans
		}
		if len(spans) > start {
			if err := emit(spans[start:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeResourceSpans appends the spans of a ResourceSpans to spans. cut
// says that msg was itself cut short, which its caller reported: a field
// that runs past its end is then read as far as it goes. In a message that
// was not cut, such a field is damage, reported too: the bytes it claims
// were read by no decoder (and by no redaction that trusts the decoder's
// texts), and spans among them are lost.
func (d *traceDecoder) decodeResourceSpans(msg []byte, record string, cut bool, spans []Span) []Span {
	first := len(spans)
	d.res.reset()
	scope := 0
	for off := 0; off < len(msg); {
		num, typ, p, n, short, err := readFieldTruncated(msg[off:])
		if err != nil {
			d.errs.addf(fmt.Errorf("at byte %d: %w", off, err), "%s", record)
			break
		}
		if short && !cut {
			d.errs.addf(fmt.Errorf("at byte %d: field %d: %w", off, num, io.ErrUnexpectedEOF), "%s", record)
		}
		off += n
		switch {
		case typ != protowire.BytesType:
			d.texts.unknown(typ)
		case num == rsResource:
			d.resource(p, record)
		case num == rsScopeSpans:
			spans = d.decodeScopeSpans(p, spans, record, scope, cut || short)
			scope++
		case num != 3: // schema_url
			d.texts.unknown(typ)
		}
	}
	service := d.service()
	namespace := d.res.strs[attrServiceNamespace]
	image := d.res.image()
	for i := first; i < len(spans); i++ {
		spans[i].Service, spans[i].Namespace, spans[i].Image = service, namespace, image
	}
	return spans
}

// resource adds the attributes of msg, the Resource of the ResourceSpans
// record, to d.res.
func (d *traceDecoder) resource(msg []byte, record string) {
	if err := forEachField(msg, func(rf field) error {
		if rf.num == 1 && rf.typ == protowire.BytesType {
			return d.keyValue(rf.b, &d.res)
		}
		if rf.num != 3 || rf.typ == protowire.StartGroupType { // entity_refs hold attribute keys
			d.texts.unknown(rf.typ)
		}
		return nil
	}); err != nil {
		d.errs.addf(err, "%s: resource", record)
	}
}

// service is the service of the spans of the resource d.res holds.
func (d *traceDecoder) service() string {
	return cmp.Or(d.res.strs[attrServiceName], UnknownService)
}

// decodeScopeSpans appends the spans of a ScopeSpans to spans; cut is as
// for decodeResourceSpans.
func (d *traceDecoder) decodeScopeSpans(msg []byte, spans []Span, record string, scope int, cut bool) []Span {
	// Room for the spans the message can hold: as many as it has span
	// fields, but no more than fit in its bytes as spans with both ids,
	// the least a span that is not dropped takes. Empty span fields, two
	// bytes each, would otherwise grow the slice to hundreds of times
	// the request's size before any span is decoded or reserved.
	spans = slices.Grow(spans, min(countFields(msg, ssSpans), len(msg)/minSpanWire))
	n := 0
	for off := 0; off < len(msg); {
		num, typ, p, m, truncated, err := readFieldTruncated(msg[off:])
		if err != nil {
			d.errs.addf(fmt.Errorf("at byte %d: %w", off, err), "%s: scope_spans[%d]", record, scope)
			break
		}
		if truncated && !cut && num != ssSpans {
			d.errs.addf(fmt.Errorf("at byte %d: field %d: %w", off, num, io.ErrUnexpectedEOF), "%s: scope_spans[%d]", record, scope)
		}
		off += m
		if num != ssSpans || typ != protowire.BytesType {
			switch {
			case num == 1 && typ == protowire.BytesType:
				d.scope(p)
			case num != 3 || typ == protowire.StartGroupType: // schema_url
				d.texts.unknown(typ)
			}
			continue
		}
		if truncated {
			// A span cut short has lost fields it needs; drop it.
			d.errs.addf(fmt.Errorf("truncated: %w", io.ErrUnexpectedEOF), "%s: scope_spans[%d]: span %d", record, scope, n)
			break
		}
		// The span is decoded in the slice's spare capacity, whatever it
		// holds (decodeSpan writes every field once): zeroing it first,
		// or copying a whole span in, while the garbage collector runs
		// costs as much as decoding the span, and a slice given back by
		// the engine is decoded into as it is.
		if len(spans) == cap(spans) {
			spans = slices.Grow(spans, 1)
		}
		spans = spans[:len(spans)+1]
		links := len(d.links)
		if err := d.decodeSpan(p, &spans[len(spans)-1]); err != nil {
			d.errs.addf(err, "%s: scope_spans[%d]: span %d", record, scope, n)
			spans = spans[:len(spans)-1]
			// The links of a span dropped are no span's.
			d.links = d.links[:links]
		}
		n++
	}
	return spans
}

func (d *traceDecoder) decodeSpan(msg []byte, sp *Span) error {
	d.attrs.reset()
	var status int32
	var haveTrace, haveSpan bool
	// The span's fields are gathered here and written once each at the
	// end (with Service, Namespace and Image, which decodeResourceSpans
	// writes), so that what sp held before does not matter.
	var traceID [16]byte
	var spanID, parentID [8]byte
	var kind SpanKind
	var name string
	var start, end time.Time
	var linksDropped, sdkDropped uint32
	firstLink, nlinks := len(d.links), 0
	for off := 0; off < len(msg); {
		num, typ, v, b, n, err := readField(msg[off:])
		if err != nil {
			return fmt.Errorf("at byte %d: %w", off, err)
		}
		off += n
		if typ == protowire.StartGroupType {
			// Skipped here whatever its number, left out by the
			// redaction: not read, so not vouched for.
			d.texts.unknown(typ)
			continue
		}
		switch num {
		// An id given more than once is its last, as protobuf reads a
		// field that is not repeated; an empty or all-zero one is no id
		// (OTLP: all zeroes is invalid; pdata reads both as empty).
		case spanTraceID:
			switch len(b) {
			case 0:
				traceID, haveTrace = [16]byte{}, false
			case 16:
				copy(traceID[:], b)
				haveTrace = traceID != [16]byte{}
			default:
				return fmt.Errorf("trace_id has %d bytes, want 16", len(b))
			}
		case spanSpanID:
			switch len(b) {
			case 0:
				spanID, haveSpan = [8]byte{}, false
			case 8:
				copy(spanID[:], b)
				haveSpan = spanID != [8]byte{}
			default:
				return fmt.Errorf("span_id has %d bytes, want 8", len(b))
			}
		case spanParentID:
			switch len(b) {
			case 0:
				parentID = [8]byte{}
			case 8:
				copy(parentID[:], b)
			default:
				return fmt.Errorf("parent_span_id has %d bytes, want 8", len(b))
			}
		case spanName:
			var same bool
			name, same = d.in.bytesAt(nameSlot, b)
			d.texts.textAt(nameSlot, same, nil, b)
		case 3: // trace_state
			d.texts.text(nil, b)
		case 11: // events
			d.texts.unknown(protowire.BytesType)
		case spanLinks:
			// A link's trace_state and attributes are left to the
			// redaction, which walks them.
			d.texts.unknown(protowire.BytesType)
			if typ != protowire.BytesType {
				return fmt.Errorf("link %d: wire type %d, want message", nlinks, typ)
			}
			l, ok, err := decodeLink(b)
			if err != nil {
				return fmt.Errorf("link %d: %w", nlinks, err)
			}
			nlinks++
			switch {
			case !ok:
			case len(d.links)-firstLink < MaxSpanLinks:
				d.links = append(d.links, l)
			default:
				linksDropped++
			}
		case spanDroppedLinks:
			d.texts.unknown(typ)
			// A uint32, the last one given counting; sent
			// length-delimited, it is a field OTLP does not define,
			// which the redaction leaves out.
			if typ == protowire.VarintType {
				sdkDropped = uint32(v)
			}
		// A number sent length-delimited is a field OTLP does not
		// define there, which the redaction leaves out (unknown).
		case spanKind:
			d.texts.unknown(typ)
			// An unknown kind is kept as unspecified, as pdata keeps it,
			// even after a known one: the last counts.
			kind = SpanKindUnspecified
			if v <= uint64(SpanKindConsumer) {
				kind = SpanKind(v)
			}
		case spanStart:
			d.texts.unknown(typ)
			start = unixNano(v)
		case spanEnd:
			d.texts.unknown(typ)
			end = unixNano(v)
		case spanAttributes:
			if typ != protowire.BytesType {
				return fmt.Errorf("attribute: wire type %d, want message", typ)
			}
			if err := d.keyValue(b, &d.attrs); err != nil {
				return err
			}
		case spanStatus:
			for soff := 0; soff < len(b); {
				snum, styp, sv, sb, sn, err := readField(b[soff:])
				if err != nil {
					return fmt.Errorf("status: at byte %d: %w", soff, err)
				}
				soff += sn
				switch {
				case styp == protowire.StartGroupType:
					d.texts.unknown(styp)
				case snum == statusCode:
					d.texts.unknown(styp)
					status = int32(sv)
				case snum == 2: // message
					d.texts.text(nil, sb)
				default:
					d.texts.unknown(styp)
				}
			}
		default:
			d.texts.unknown(typ)
		}
	}
	if err := spanIDsError(haveTrace, haveSpan); err != nil {
		return err
	}
	sp.Links = nil
	if len(d.links) > firstLink {
		sp.Links = d.links[firstLink:len(d.links):len(d.links)]
	}
	sp.LinksDropped = addDropped(sdkDropped, linksDropped)
	sp.TraceID, sp.SpanID, sp.ParentSpanID = traceID, spanID, parentID
	sp.Kind, sp.Name, sp.Start, sp.End = kind, name, start, end
	d.attrs.finish(kind, &sp.Attrs)
	sp.Error = spanError(status, kind, &sp.Attrs)
	return nil
}

// decodeLink decodes a Span.Link: its ids, and whether it names a span
// (ok). Its ids are read as a span's own are: the last one given counts,
// an empty or all-zero one is none, one of another length is an error.
func decodeLink(msg []byte) (l Link, ok bool, err error) {
	for off := 0; off < len(msg); {
		num, typ, _, b, n, err := readField(msg[off:])
		if err != nil {
			return Link{}, false, fmt.Errorf("at byte %d: %w", off, err)
		}
		off += n
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case linkTraceID:
			switch len(b) {
			case 0:
				l.TraceID = [16]byte{}
			case 16:
				copy(l.TraceID[:], b)
			default:
				return Link{}, false, fmt.Errorf("trace_id has %d bytes, want 16", len(b))
			}
		case linkSpanID:
			switch len(b) {
			case 0:
				l.SpanID = [8]byte{}
			case 8:
				copy(l.SpanID[:], b)
			default:
				return Link{}, false, fmt.Errorf("span_id has %d bytes, want 8", len(b))
			}
		}
	}
	return l, l.SpanID != [8]byte{}, nil
}

// addDropped is the links of a span dropped by its SDK and by the
// decoder, at most the largest uint32.
func addDropped(sdk, decoder uint32) uint32 {
	if sdk > math.MaxUint32-decoder {
		return math.MaxUint32
	}
	return sdk + decoder
}

// unixNano converts an OTLP timestamp; 0 means unset and stays the zero
// time rather than becoming 1970.
func unixNano(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v)).UTC()
}

// keyValue decodes one KeyValue into b, reading the value only when the
// key is one evident keeps.
func (d *traceDecoder) keyValue(msg []byte, b *attrBuilder) error {
	var key, value []byte
	nvalues := 0
	// Attributes are most of a span; loops without closures keep them
	// cheap.
	for off := 0; off < len(msg); {
		num, typ, _, p, n, err := readField(msg[off:])
		if err != nil {
			return fmt.Errorf("attribute: at byte %d: %w", off, err)
		}
		off += n
		switch {
		case typ == protowire.StartGroupType:
			d.texts.unknown(typ)
		case num == 1:
			key = p
		case num == 2:
			value = p
			nvalues++
		default:
			d.texts.unknown(typ)
		}
	}
	if nvalues > 1 {
		// A message given more than once is its occurrences merged, as
		// protobuf reads them: their fields one after the other, so the
		// value is the last member of any (lastValue). The redaction
		// walks the others.
		d.texts.unknown(protowire.BytesType)
		value = lastValue(msg)
	}
	id := lookupAttr(key)
	header := id == attrNone && bytes.HasPrefix(key, []byte(headerPrefix))
	if id == attrNone && !header {
		if d.texts != nil {
			d.otherValue(key, value)
		}
		return nil
	}
	// Captured headers and some resource attributes are arrays of
	// strings (a single string is taken as an array of one).
	list := header || isList(id)
	// An AnyValue is a oneof: of its members (fields 1 to 8) the last one
	// counts, as protobuf and pdata read it (oneFieldRequests). A value
	// almost always holds one field, read at once; one of more fields is
	// read from its last member on, and the members before it are left to
	// the redaction, which walks them all.
	var values []string
	for off := 0; off < len(value); {
		num, typ, v, p, n, err := readField(value[off:])
		if err != nil {
			return fmt.Errorf("attribute %q: at byte %d: %w", key, off, err)
		}
		if off == 0 && n < len(value) {
			if from, members := lastMember(value); members > 1 {
				d.texts.unknown(protowire.BytesType)
				off = from
				continue
			}
		}
		off += n
		if droppedFromValue(num, typ) {
			d.texts.unknown(typ)
		}
		switch {
		case num == 1 && list: // string_value
			values = append(values, d.in.bytes(p))
			d.texts.text(key, p)
		case num == 1:
			s, same := d.in.bytesAt(id, p)
			b.setString(id, s)
			d.texts.textAt(id, same, key, p)
		case num == 3 && !list: // int_value
			b.setInt(id, int64(v))
		case num == 5 && list: // array_value
			if err := forEachField(p, func(af field) error {
				// list leaves out all but the values, and groups.
				if af.num != 1 || af.typ == protowire.StartGroupType {
					d.texts.unknown(af.typ)
				}
				if af.num != 1 {
					return nil
				}
				var lerr error
				values, lerr = d.listElement(key, af.b, values)
				return lerr
			}); err != nil {
				return fmt.Errorf("attribute %q: %w", key, err)
			}
		default:
			d.texts.textValue(key, num, typ, p)
		}
	}
	if isList(id) {
		b.setList(id, values)
	}
	if header {
		b.setHeader(string(key), values)
	}
	return nil
}

// lastValue returns, of a KeyValue whose value is given more than once,
// the last AnyValue member of them all and what follows it in its
// occurrence: the value they make merged.
func lastValue(msg []byte) []byte {
	var value []byte
	for off := 0; off < len(msg); {
		num, typ, _, p, n, err := readField(msg[off:])
		if err != nil {
			break
		}
		if num == 2 && typ != protowire.StartGroupType {
			if last, members := lastMember(p); members > 0 {
				value = p[last:]
			}
		}
		off += n
	}
	return value
}

// listElement appends the string of an element of an array value (an
// AnyValue of its own, whose last member counts, as in keyValue) to
// values, and records its texts.
func (d *traceDecoder) listElement(key, elem []byte, values []string) ([]string, error) {
	if from, members := lastMember(elem); members > 1 {
		d.texts.unknown(protowire.BytesType)
		elem = elem[from:]
	}
	err := forEachField(elem, func(vf field) error {
		if droppedFromValue(vf.num, vf.typ) {
			d.texts.unknown(vf.typ)
		}
		if vf.num == 1 {
			values = append(values, d.in.bytes(vf.b))
			d.texts.text(key, vf.b)
		} else {
			d.texts.textValue(key, vf.num, vf.typ, vf.b)
		}
		return nil
	})
	return values, err
}

// lastMember returns where the last member of the oneof of an AnyValue
// starts in msg, and how many members msg holds; it stops at a field it
// cannot read, which the caller then reports.
func lastMember(msg []byte) (last, members int) {
	for off := 0; off < len(msg); {
		num, _, _, _, n, err := readField(msg[off:])
		if err != nil {
			break
		}
		if isAnyValueMember(num) {
			last, members = off, members+1
		}
		off += n
	}
	return last, members
}

// isAnyValueMember reports whether field num of an AnyValue is one of its
// oneof's members: string, bool, int, double, array, key-value list, bytes
// and string table index values.
func isAnyValueMember(num protowire.Number) bool { return num >= 1 && num <= 8 }

// otherValue records the texts of the value of an attribute evident does
// not decode: a string or bytes value; numbers hold none; anything else
// is left to RedactTraceRequest. A malformed value is left to it too:
// evident does not read the attribute, so its span is kept, as
// DecodeTraceRequest keeps it.
func (d *traceDecoder) otherValue(key, value []byte) {
	for off := 0; off < len(value); {
		num, typ, _, p, n, err := readField(value[off:])
		if err != nil {
			d.texts.unknown(protowire.BytesType)
			return
		}
		off += n
		if droppedFromValue(num, typ) {
			d.texts.unknown(typ)
		}
		if num == 1 {
			d.texts.text(key, p)
			continue
		}
		d.texts.textValue(key, num, typ, p)
	}
}

// scope records the texts of an InstrumentationScope: its name and
// version; its attributes are left to RedactTraceRequest.
func (d *traceDecoder) scope(msg []byte) {
	if d.texts == nil {
		return
	}
	if err := forEachField(msg, func(f field) error {
		switch {
		case f.typ != protowire.StartGroupType && (f.num == 1 || f.num == 2):
			d.texts.text(nil, f.b)
		default:
			d.texts.unknown(f.typ)
		}
		return nil
	}); err != nil {
		d.texts.unknown(protowire.BytesType)
	}
}

// spanIDsError says which ids a span lacks, or is nil when it has both.
func spanIDsError(haveTrace, haveSpan bool) error {
	switch {
	case !haveTrace && !haveSpan:
		return errors.New("trace_id and span_id missing or empty")
	case !haveTrace:
		return errors.New("trace_id missing or empty")
	case !haveSpan:
		return errors.New("span_id missing or empty")
	}
	return nil
}
