package telemetry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// Masker says what of the text a trace request carries may be kept;
// redact.Redactor is one. Its methods return v itself when nothing is
// masked, and must not keep v, whose bytes belong to the request.
type Masker interface {
	// Attribute returns v, the string value of the attribute key (or one
	// element of it, for an array), with what must not be kept masked.
	// Both methods' results depend on their arguments alone: Texts.Masks
	// asks once about texts a request repeats.
	Attribute(key, v string) string
	// Text returns v, free text (span and event names, status messages,
	// trace state), with what must not be kept masked.
	Text(v string) string
}

// ErrNotRedactable is wrapped by RedactTraceRequest's error for a request
// whose structure it cannot follow to the end (a malformed field): its
// text cannot all be found, so it must not be stored as received.
var ErrNotRedactable = errors.New("trace request cannot be redacted as received")

// RedactTraceRequest returns req, an OTLP ExportTraceServiceRequest in
// protobuf as received, with every text in it masked as m says, so that it
// can be stored without what m masks: the values of every attribute (of
// resources, scopes, spans, events and links, nested arrays and key-value
// lists, string and bytes values alike, whether evident decodes them or
// not), span and event names, status messages, trace states, scope names
// and versions. Fields OTLP does not define at these places, which could
// hold text nobody looked at, are left out when they are length-delimited;
// numbers and ids are kept.
//
// When nothing is masked, the result is req itself and changed is false:
// the common case costs a walk over the request and no copy. Otherwise
// only the messages around a masked value are re-framed, with the lengths
// of what changed. A request that cannot be walked to its end returns an
// error wrapping ErrNotRedactable.
func RedactTraceRequest(req []byte, m Masker) (out []byte, changed bool, err error) {
	w := wireRedactor{m: m}
	out, changed, err = w.message(msgRequest, req)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrNotRedactable, err)
	}
	return out, changed, nil
}

// msgKind names the OTLP trace messages RedactTraceRequest walks through.
type msgKind uint8

const (
	msgRequest msgKind = iota
	msgResourceSpans
	msgResource
	msgScopeSpans
	msgScope
	msgSpan
	msgEvent
	msgLink
	msgStatus
)

// fieldRole is what a length-delimited field of a message holds.
type fieldRole uint8

const (
	roleUnknown  fieldRole = iota // not defined by OTLP here: dropped
	roleKeep                      // ids, schema URLs, entity references: kept
	roleText                      // free text: Masker.Text
	roleKeyValue                  // an attribute
	roleMessage                   // a message walked in turn
)

// roleOf returns the role of the length-delimited field num of a kind of
// message, and the kind of the message it holds (opentelemetry/proto
// trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto).
func roleOf(kind msgKind, num protowire.Number) (fieldRole, msgKind) {
	switch kind {
	case msgRequest: // ExportTraceServiceRequest, TracesData
		if num == 1 {
			return roleMessage, msgResourceSpans
		}
	case msgResourceSpans:
		switch num {
		case 1:
			return roleMessage, msgResource
		case 2:
			return roleMessage, msgScopeSpans
		case 3: // schema_url
			return roleKeep, 0
		}
	case msgResource:
		switch num {
		case 1:
			return roleKeyValue, 0
		case 3: // entity_refs: a type and attribute keys
			return roleKeep, 0
		}
	case msgScopeSpans:
		switch num {
		case 1:
			return roleMessage, msgScope
		case 2:
			return roleMessage, msgSpan
		case 3: // schema_url
			return roleKeep, 0
		}
	case msgScope:
		switch num {
		case 1, 2: // name, version
			return roleText, 0
		case 3:
			return roleKeyValue, 0
		}
	case msgSpan:
		switch num {
		case 1, 2, 4: // trace_id, span_id, parent_span_id
			return roleKeep, 0
		case 3, 5: // trace_state, name
			return roleText, 0
		case 9:
			return roleKeyValue, 0
		case 11:
			return roleMessage, msgEvent
		case 13:
			return roleMessage, msgLink
		case 15:
			return roleMessage, msgStatus
		}
	case msgEvent:
		switch num {
		case 2: // name
			return roleText, 0
		case 3:
			return roleKeyValue, 0
		}
	case msgLink:
		switch num {
		case 1, 2: // trace_id, span_id
			return roleKeep, 0
		case 3: // trace_state
			return roleText, 0
		case 4:
			return roleKeyValue, 0
		}
	case msgStatus:
		if num == 2 { // message
			return roleText, 0
		}
	}
	return roleUnknown, 0
}

// wireRedactor walks a trace request for RedactTraceRequest.
type wireRedactor struct{ m Masker }

// edit builds the new form of a message once one of its fields changes:
// the fields before it are copied as they are, and from then on each
// field is copied or replaced. It allocates only at the first change.
type edit struct {
	src  []byte
	out  []byte
	last int // src[:last] is in out, or was left out
}

// replace puts a length-delimited field num with payload p in place of
// src[start:end].
func (e *edit) replace(start, end int, num protowire.Number, p []byte) {
	e.drop(start, end)
	e.out = protowire.AppendTag(e.out, num, protowire.BytesType)
	e.out = protowire.AppendBytes(e.out, p)
}

// drop leaves src[start:end] out.
func (e *edit) drop(start, end int) {
	if e.out == nil {
		e.out = make([]byte, 0, len(e.src)+16)
	}
	e.out = append(e.out, e.src[e.last:start]...)
	e.last = end
}

// result returns the edited message, and whether it differs from src.
func (e *edit) result() ([]byte, bool) {
	if e.out == nil {
		return e.src, false
	}
	return append(e.out, e.src[e.last:]...), true
}

// message walks msg, a message of the given kind.
func (w *wireRedactor) message(kind msgKind, msg []byte) ([]byte, bool, error) {
	return rewrite(msg, func(f field) ([]byte, fieldEdit, error) {
		role, sub := roleOf(kind, f.num)
		switch role {
		case roleText:
			p, changed := w.text(f.b)
			return p, editIf(changed), nil
		case roleKeyValue:
			p, changed, err := w.keyValue(f.b)
			return p, editIf(changed), err
		case roleMessage:
			p, changed, err := w.message(sub, f.b)
			return p, editIf(changed), err
		case roleUnknown:
			return nil, editDrop, nil
		}
		return nil, editKeep, nil
	})
}

// fieldEdit is what rewrite does with a length-delimited field.
type fieldEdit int

const (
	editKeep fieldEdit = iota
	editReplace
	editDrop
)

// editIf is editReplace when the value changed, else editKeep.
func editIf(changed bool) fieldEdit {
	if changed {
		return editReplace
	}
	return editKeep
}

// rewrite walks the fields of msg and returns msg with its
// length-delimited fields kept, replaced or dropped as visit says, and
// changed when anything was. Groups are dropped (no OTLP message has
// them; one could hold anything); numbers, enums, timestamps and flags
// are kept.
func rewrite(msg []byte, visit func(f field) ([]byte, fieldEdit, error)) ([]byte, bool, error) {
	e := edit{src: msg}
	for off := 0; off < len(msg); {
		f, n, err := nextField(msg[off:])
		if err != nil {
			return nil, false, fmt.Errorf("at byte %d: %w", off, err)
		}
		start := off
		off += n
		switch f.typ {
		case protowire.BytesType:
		case protowire.StartGroupType:
			e.drop(start, off)
			continue
		default:
			continue
		}
		p, what, err := visit(f)
		if err != nil {
			return nil, false, err
		}
		switch what {
		case editReplace:
			e.replace(start, off, f.num, p)
		case editDrop:
			e.drop(start, off)
		}
	}
	out, changed := e.result()
	return out, changed, nil
}

// text masks free text.
func (w *wireRedactor) text(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return b, false
	}
	s := bytesString(b)
	if m := w.m.Text(s); m != s {
		return []byte(m), true
	}
	return b, false
}

// lengthDelimited reads a length-delimited field at the start of b
// whose tag is the single byte tag, and returns its payload and the bytes
// it took; ok is false for anything else.
func lengthDelimited(b []byte, tag byte) (payload []byte, n int, ok bool) {
	if len(b) < 2 || b[0] != tag {
		return nil, 0, false
	}
	l, ln := uint64(b[1]), 1
	if l >= 0x80 {
		if l, ln = protowire.ConsumeVarint(b[1:]); ln < 0 {
			return nil, 0, false
		}
	}
	if l > uint64(len(b)-1-ln) {
		return nil, 0, false
	}
	n = 1 + ln + int(l)
	return b[1+ln : n], n, true
}

// keyAndValue returns the key and the value of a KeyValue that holds
// exactly one of each, in either order.
func keyAndValue(msg []byte) (key, val []byte, ok bool) {
	first, n, ok := lengthDelimited(msg, 0x0a)
	if ok {
		val, m, ok := lengthDelimited(msg[n:], 0x12)
		return first, val, ok && n+m == len(msg)
	}
	if first, n, ok = lengthDelimited(msg, 0x12); ok {
		key, m, ok := lengthDelimited(msg[n:], 0x0a)
		return key, first, ok && n+m == len(msg)
	}
	return nil, nil, false
}

// keyValue walks a KeyValue{key = 1, value = 2}.
func (w *wireRedactor) keyValue(msg []byte) ([]byte, bool, error) {
	// The common forms: the key and the value, once each, in either order
	// (SDKs write the key first, pdata the value), and for most values a
	// string_value alone.
	if key, val, ok := keyAndValue(msg); ok {
		var p []byte
		var changed bool
		if s, l, ok := lengthDelimited(val, 0x0a); ok && l == len(val) {
			var m string
			if m, changed = w.attribute(key, s); changed {
				p = protowire.AppendTag(make([]byte, 0, len(m)+6), 1, protowire.BytesType)
				p = protowire.AppendString(p, m)
			}
		} else {
			var err error
			if p, changed, err = w.anyValue(key, val); err != nil {
				return nil, false, fmt.Errorf("attribute %q: %w", key, err)
			}
		}
		if !changed {
			return msg, false, nil
		}
		out := protowire.AppendTag(make([]byte, 0, len(key)+len(p)+12), 1, protowire.BytesType)
		out = protowire.AppendBytes(out, key)
		out = protowire.AppendTag(out, 2, protowire.BytesType)
		return protowire.AppendBytes(out, p), true, nil
	}
	var key []byte
	// The key may come after the value on the wire, or twice (the last
	// one counts): find it first.
	for off := 0; off < len(msg); {
		f, n, err := nextField(msg[off:])
		if err != nil {
			return nil, false, fmt.Errorf("attribute: at byte %d: %w", off, err)
		}
		off += n
		if f.num == 1 && f.typ == protowire.BytesType {
			key = f.b
		}
	}
	return rewrite(msg, func(f field) ([]byte, fieldEdit, error) {
		switch f.num {
		case 1:
			return nil, editKeep, nil
		case 2:
			p, changed, err := w.anyValue(key, f.b)
			if err != nil {
				return nil, editKeep, fmt.Errorf("attribute %q: %w", key, err)
			}
			return p, editIf(changed), nil
		}
		return nil, editDrop, nil
	})
}

// anyValue walks the AnyValue of the attribute key: string_value = 1 and
// bytes_value = 7 are masked, array_value = 5 and kvlist_value = 6
// walked, numbers kept; the rest, groups included, is left out
// (droppedFromValue).
func (w *wireRedactor) anyValue(key, msg []byte) ([]byte, bool, error) {
	return rewrite(msg, func(f field) ([]byte, fieldEdit, error) {
		switch f.num {
		case 1, 7:
			if m, changed := w.attribute(key, f.b); changed {
				return []byte(m), editReplace, nil
			}
			return nil, editKeep, nil
		case 5, 6: // ArrayValue{values = 1}, KeyValueList{values = 1}
			p, changed, err := w.list(key, f.num == 6, f.b)
			return p, editIf(changed), err
		}
		return nil, editDrop, nil
	})
}

// droppedFromValue reports whether anyValue leaves field num of wire type
// typ out of an AnyValue: a group, or a length-delimited field other than
// string_value, array_value, kvlist_value and bytes_value (an int_value
// sent length-delimited, say). The trace decoder tells its texts of such
// a field wherever it reads a value, so that the request is walked
// (TestTextsCoverEveryField).
func droppedFromValue(num protowire.Number, typ protowire.Type) bool {
	return typ == protowire.StartGroupType || typ == protowire.BytesType && num != 1 && num != 5 && num != 6 && num != 7
}

// attribute masks v, a string or bytes value of the attribute key.
func (w *wireRedactor) attribute(key, v []byte) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	s := bytesString(v)
	m := w.m.Attribute(bytesString(key), s)
	return m, m != s
}

// list walks an ArrayValue, whose elements are values of the attribute
// key, or a KeyValueList, whose elements are attributes of their own.
func (w *wireRedactor) list(key []byte, kv bool, msg []byte) ([]byte, bool, error) {
	return rewrite(msg, func(f field) ([]byte, fieldEdit, error) {
		if f.num != 1 {
			return nil, editDrop, nil
		}
		var p []byte
		var changed bool
		var err error
		if kv {
			p, changed, err = w.keyValue(f.b)
		} else {
			p, changed, err = w.anyValue(key, f.b)
		}
		return p, editIf(changed), err
	})
}

// bytesString returns the bytes of b as a string without copying them,
// for a Masker to look at during the call: b is not modified while the
// string is in use, and the Masker does not keep it.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Texts says where the texts of a trace request are, as its decoder met
// them (DecodeReceivedTraceRequest), so that whether a Masker masks
// anything in the request is known without walking it again (Masks).
// Texts it does not point at, such as events, links, nested values and
// fields OTLP does not define, make it say so (Masks then reports true,
// and RedactTraceRequest must look at the request).
type Texts struct {
	req  []byte
	refs []textRef
	// last is the text recorded last for each slot of the decoder's
	// interner (textAt); valLen 0 when none was.
	last [nameSlot + 1]textRef
	// other is set when the request holds text refs do not cover.
	other bool
	// strings are the strings the decoder shared, kept for the next
	// request decoded with this Texts (DecodeReceivedTraceRequest):
	// strings are never written, so they can outlive their request.
	// stringBytes is their length in all.
	strings     map[string]string
	stringBytes int
}

// keptStrings bounds the strings a Texts keeps for the next request: past
// it, high-cardinality values (URLs with ids) would make it a copy of
// every value ever received, and it keeps none.
const keptStrings = 4096

// Size is about the memory t holds, in bytes, for one that keeps it for
// reuse (DecodeReceivedTraceRequest) to bound what it keeps: its refs,
// and the strings it keeps with their map entries.
func (t *Texts) Size() int {
	return cap(t.refs)*int(unsafe.Sizeof(textRef{})) + t.stringBytes + 48*len(t.strings)
}

// textRef is where one text is in the request: its value and, for an
// attribute, its key, as offsets and lengths.
type textRef struct {
	keyOff, keyLen, valOff, valLen uint32
}

// noKey is the key offset of a text that is not an attribute value.
const noKey = ^uint32(0)

// offset returns where b, a part of the request, starts in it: parts are
// slices of the request, so they end where it ends.
func (t *Texts) offset(b []byte) uint32 { return uint32(cap(t.req) - cap(b)) }

// text records v, the value of the attribute key, or free text when key
// is nil.
func (t *Texts) text(key, v []byte) {
	if t == nil || len(v) == 0 {
		return
	}
	r := textRef{keyOff: noKey, valOff: t.offset(v), valLen: uint32(len(v))}
	if key != nil {
		r.keyOff, r.keyLen = t.offset(key), uint32(len(key))
	}
	t.refs = append(t.refs, r)
}

// textAt is text for v, a value of the attribute key (nil: a span name)
// that the decoder keeps in slot of its interner; same says whether v is
// the slot's last value. Every value of a slot goes through textAt (the
// callers of interner.bytesAt), so the slot's last value is that of
// last[slot]: when it repeats under the same key, the request already
// holds the text, and a Masker would give the same answer (it depends on
// the key and the value alone), so it is not recorded again. Most spans of a request repeat the span before's
// values, and this costs a comparison of keys where Masks would hash and
// compare the text.
func (t *Texts) textAt(slot attrID, same bool, key, v []byte) {
	if t == nil || len(v) == 0 {
		return
	}
	if l := &t.last[slot]; same && l.valLen != 0 && (l.keyOff == noKey) == (key == nil) &&
		(key == nil || string(t.req[l.keyOff:l.keyOff+l.keyLen]) == string(key)) {
		return
	}
	t.text(key, v)
	t.last[slot] = t.refs[len(t.refs)-1]
}

// unknown records a field the decoder does not follow: one that may hold
// text makes the request one refs do not cover.
func (t *Texts) unknown(typ protowire.Type) {
	if t != nil && (typ == protowire.BytesType || typ == protowire.StartGroupType) {
		t.other = true
	}
}

// textValue records a field of the AnyValue of the attribute key other
// than string_value: bytes_value is text; an array or key-value list is
// not followed.
func (t *Texts) textValue(key []byte, num protowire.Number, typ protowire.Type, b []byte) {
	if t != nil && num == 7 && typ == protowire.BytesType {
		t.text(key, b)
		return
	}
	t.unknown(typ)
}

// Masks reports whether m masks anything in the request: a text refs
// point at that m changes, or text they do not cover.
//
// A text equal to one already found unchanged, with the same key, is not
// asked about again: the spans of a request repeat their values (a user
// agent, a route, the payload a scanner sends to every endpoint), and m's
// answer depends on the key and the value alone.
func (t *Texts) Masks(m Masker) bool {
	if t.other {
		return true
	}
	// unchanged holds texts m left as they were, in the set of their hash
	// (textSlot), two to a set, the one found last first; valLen 0 is an
	// empty entry, as no text is empty. Two to a set keep two texts that
	// every span repeats from taking each other's place span after span
	// (a span name and a user agent did), while texts that differ on every
	// span (a path with an id) pass through.
	var unchanged [1 << textSlotBits][2]textRef
	for _, r := range t.refs {
		v := t.req[r.valOff : r.valOff+r.valLen]
		set := &unchanged[textSlot(r.keyLen, v)]
		if set[0].valLen != 0 && t.sameText(set[0], r) {
			continue
		}
		if set[1].valLen != 0 && t.sameText(set[1], r) {
			set[0], set[1] = set[1], set[0]
			continue
		}
		var masked string
		if r.keyOff == noKey {
			masked = m.Text(bytesString(v))
		} else {
			masked = m.Attribute(bytesString(t.req[r.keyOff:r.keyOff+r.keyLen]), bytesString(v))
		}
		if masked != bytesString(v) {
			return true
		}
		set[1], set[0] = set[0], r
	}
	return false
}

// textSlotBits is the log2 of the number of sets of unchanged texts
// Masks remembers.
const textSlotBits = 7

// textSlot is the set of Masks for the text v of a key of keyLen bytes
// (0 for free text): a multiplicative hash of its length and of its first
// and last eight bytes.
func textSlot(keyLen uint32, v []byte) int {
	n := len(v)
	var a, b uint64
	if n >= 8 {
		a, b = binary.LittleEndian.Uint64(v), binary.LittleEndian.Uint64(v[n-8:])
	} else {
		for _, c := range v {
			a = a<<8 | uint64(c)
		}
	}
	h := (a ^ bits.RotateLeft64(b, 29) ^ uint64(n)<<40 ^ uint64(keyLen)<<52) * 0x9e3779b97f4a7c15
	return int(h >> (64 - textSlotBits))
}

// sameText reports whether the texts a and b are equal, keys included.
func (t *Texts) sameText(a, b textRef) bool {
	if a.valLen != b.valLen || a.keyLen != b.keyLen || (a.keyOff == noKey) != (b.keyOff == noKey) {
		return false
	}
	if a.keyOff != noKey && string(t.req[a.keyOff:a.keyOff+a.keyLen]) != string(t.req[b.keyOff:b.keyOff+b.keyLen]) {
		return false
	}
	return string(t.req[a.valOff:a.valOff+a.valLen]) == string(t.req[b.valOff:b.valOff+b.valLen])
}

// receivedKey is the context key of WithReceived.
type receivedKey struct{}

// received is a trace request as it arrived, where its texts are, and
// the spans decoded from it, known by the address of the first and their
// number.
type received struct {
	req   []byte
	texts *Texts
	first *Span
	n     int
}

// WithReceived returns ctx carrying req, the OTLP ExportTraceServiceRequest
// in protobuf a receiver decoded spans from, whole, and where its texts
// are (nil: not known), so that the consumer of spans can keep the
// request as received (Received) rather than encode the spans again. req
// must not change while ctx is in use.
func WithReceived(ctx context.Context, req []byte, texts *Texts, spans []Span) context.Context {
	if len(spans) == 0 {
		return ctx
	}
	return context.WithValue(ctx, receivedKey{}, received{req: req, texts: texts, first: &spans[0], n: len(spans)})
}

// Received returns the request and texts WithReceived put in ctx when
// spans are the spans decoded from it, the same slice: a consumer in
// between that split or replaced them makes it report false.
func Received(ctx context.Context, spans []Span) (req []byte, texts *Texts, ok bool) {
	r, ok := ctx.Value(receivedKey{}).(received)
	if !ok || len(spans) != r.n || len(spans) == 0 || &spans[0] != r.first {
		return nil, nil, false
	}
	return r.req, r.texts, true
}

// releaseKey is the context key of WithRelease.
type releaseKey struct{}

// releasing is the function that takes spans back, for the spans known
// by the address of the first and their number.
type releasing struct {
	first   *Span
	n       int
	release func([]Span)
}

// WithRelease returns ctx carrying release, which gives spans back to
// the receiver that decoded them, for it to decode a later request into
// their memory (DecodeReceivedTraceRequest). A consumer that keeps spans
// beyond Consume calls it once, with spans, when nothing it did with them
// holds a pointer into the slice any more (to a Span of it, or a part of
// it), and touches the slice no more; one that never calls it leaves the
// slice to the garbage collector. Only the slice's memory is reused: the
// strings, header maps and images of its spans are never written again,
// and may be kept.
func WithRelease(ctx context.Context, spans []Span, release func([]Span)) context.Context {
	if len(spans) == 0 {
		return ctx
	}
	return context.WithValue(ctx, releaseKey{}, releasing{first: &spans[0], n: len(spans), release: release})
}

// Releaser returns the function WithRelease put in ctx when spans are
// the spans it was given for, the same slice; nil otherwise.
func Releaser(ctx context.Context, spans []Span) func([]Span) {
	r, ok := ctx.Value(releaseKey{}).(releasing)
	if !ok || len(spans) != r.n || len(spans) == 0 || &spans[0] != r.first {
		return nil
	}
	return r.release
}
