package telemetry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrNotEncodable is returned by AppendTraceRequest for a span that OTLP
// cannot carry so that DecodeTraceRequest gives it back as it is.
var ErrNotEncodable = errors.New("span cannot round-trip through OTLP")

// AppendTraceRequest appends spans to dst as an OTLP
// ExportTraceServiceRequest in protobuf, from which DecodeTraceRequest
// decodes the same spans: consecutive spans of one resource (service,
// namespace and image) share a ResourceSpans, and each attribute is
// written under its current semantic-convention name. It is what the
// engine logs, so that replay decodes a batch with the receivers'
// decoder; it costs a few appends per field, where encoding/gob walks
// the types by reflection.
//
// A span the decoder could not have produced, and so would not get back
// (one without both ids, an error flag its status cannot express, a kind
// OTLP does not define, a start or end time outside the years 1678 to
// 2262 or at 1970's first nanosecond, an image without a name or
// repository digest, a link that names no span or more links than
// MaxSpanLinks), fails with ErrNotEncodable and dst unchanged.
func AppendTraceRequest(dst []byte, spans []Span) ([]byte, error) {
	for i := range spans {
		if err := encodable(&spans[i]); err != nil {
			return dst, fmt.Errorf("span %d: %w", i, err)
		}
	}
	for i := 0; i < len(spans); {
		j := i + 1
		for j < len(spans) && sameResource(&spans[i], &spans[j]) {
			j++
		}
		var rs, res, ss int
		dst, rs = beginMessage(dst, 1)
		dst, res = beginMessage(dst, rsResource)
		dst = appendResource(dst, &spans[i])
		dst = endMessage(dst, res)
		dst, ss = beginMessage(dst, rsScopeSpans)
		for k := i; k < j; k++ {
			var sp int
			dst, sp = beginMessage(dst, ssSpans)
			dst = appendSpan(dst, &spans[k])
			dst = endMessage(dst, sp)
		}
		dst = endMessage(dst, ss)
		dst = endMessage(dst, rs)
		i = j
	}
	return dst, nil
}

// encodable reports why sp would not decode back as it is.
func encodable(sp *Span) error {
	if err := spanIDsError(sp.TraceID != [16]byte{}, sp.SpanID != [8]byte{}); err != nil {
		return fmt.Errorf("%w: %w", ErrNotEncodable, err)
	}
	if !sp.Error && sp.Kind == SpanKindServer && sp.Attrs.StatusCode >= 500 {
		return fmt.Errorf("%w: a SERVER span with status %d that is not an error", ErrNotEncodable, sp.Attrs.StatusCode)
	}
	if sp.Kind > SpanKindConsumer {
		return fmt.Errorf("%w: span kind %d, which the decoder reads as unspecified", ErrNotEncodable, sp.Kind)
	}
	for _, t := range [...]time.Time{sp.Start, sp.End} {
		if !t.IsZero() && !unixNano(uint64(t.UnixNano())).Equal(t) {
			return fmt.Errorf("%w: time %v is not one OTLP's nanoseconds since 1970 carry", ErrNotEncodable, t)
		}
	}
	if im := sp.Image; im != nil && im.Name == "" && len(im.RepoDigests) == 0 {
		return fmt.Errorf("%w: an image without a name or repository digest", ErrNotEncodable)
	}
	for name := range sp.Attrs.RequestHeaders {
		if name != strings.ToLower(name) {
			return fmt.Errorf("%w: request header %q is not in lower case", ErrNotEncodable, name)
		}
	}
	if len(sp.Links) > MaxSpanLinks {
		return fmt.Errorf("%w: %d links, over MaxSpanLinks %d", ErrNotEncodable, len(sp.Links), MaxSpanLinks)
	}
	for i, l := range sp.Links {
		if l.SpanID == ([8]byte{}) {
			return fmt.Errorf("%w: link %d names no span", ErrNotEncodable, i)
		}
	}
	return nil
}

func sameResource(a, b *Span) bool {
	return a.Service == b.Service && a.Namespace == b.Namespace && a.Image == b.Image
}

// beginMessage appends the tag of field num, a message, and a one-byte
// placeholder for its length; endMessage, given what beginMessage
// returned, sets the length of what was appended since, moving it when
// the length needs more than a byte. Two passes to size each message
// would cost more than the rare move.
func beginMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return append(b, 0), len(b) + 1
}

func endMessage(b []byte, at int) []byte {
	n := len(b) - at
	if n < 0x80 {
		b[at-1] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	for range size - 1 {
		b = append(b, 0)
	}
	copy(b[at-1+size:], b[at:at+n])
	protowire.AppendVarint(b[:at-1], uint64(n))
	return b
}

// Attributes are field 1 of a Resource and field 9 of a Span.
const resourceAttributes = 1

func appendResource(b []byte, sp *Span) []byte {
	b = appendStringAttr(b, resourceAttributes, "service.name", sp.Service)
	b = appendStringAttr(b, resourceAttributes, "service.namespace", sp.Namespace)
	if im := sp.Image; im != nil {
		b = appendStringAttr(b, resourceAttributes, "container.image.name", im.Name)
		b = appendStringAttr(b, resourceAttributes, "oci.manifest.digest", im.Digest)
		b = appendListAttr(b, "container.image.repo_digests", im.RepoDigests)
		b = appendListAttr(b, "container.image.tags", im.Tags)
	}
	return b
}

func appendSpan(b []byte, sp *Span) []byte {
	b = protowire.AppendTag(b, spanTraceID, protowire.BytesType)
	b = protowire.AppendBytes(b, sp.TraceID[:])
	b = protowire.AppendTag(b, spanSpanID, protowire.BytesType)
	b = protowire.AppendBytes(b, sp.SpanID[:])
	if sp.ParentSpanID != ([8]byte{}) {
		b = protowire.AppendTag(b, spanParentID, protowire.BytesType)
		b = protowire.AppendBytes(b, sp.ParentSpanID[:])
	}
	if sp.Name != "" {
		b = protowire.AppendTag(b, spanName, protowire.BytesType)
		b = protowire.AppendString(b, sp.Name)
	}
	if sp.Kind != SpanKindUnspecified {
		b = protowire.AppendTag(b, spanKind, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sp.Kind))
	}
	b = appendTime(b, spanStart, sp.Start)
	b = appendTime(b, spanEnd, sp.End)
	a := &sp.Attrs
	for _, s := range []struct{ key, v string }{
		{"http.request.method", a.HTTPMethod}, {"http.route", a.HTTPRoute}, {"url.path", a.URLPath},
		{"url.query", a.URLQuery}, {"url.full", a.URLFull}, {"user_agent.original", a.UserAgent},
		{"rpc.system.name", a.RPCSystem}, {"rpc.service", a.RPCService}, {"rpc.method", a.RPCMethod},
		{"server.address", a.ServerAddress}, {"client.address", a.ClientAddress}, {"service.peer.name", a.PeerService},
		{"db.system.name", a.DBSystem}, {"db.namespace", a.DBNamespace}, {"db.collection.name", a.DBCollection},
		{"db.query.text", a.DBQueryText}, {"db.operation.name", a.DBOperation}, {"messaging.system", a.MessagingSystem},
		{"messaging.destination.name", a.MessagingDestination}, {"messaging.operation.type", a.MessagingOperation},
		{"aws.s3.bucket", a.S3Bucket},
		{"code.function.name", a.CodeFunction},
	} {
		b = appendStringAttr(b, spanAttributes, s.key, s.v)
	}
	b = appendIntAttr(b, "http.response.status_code", int64(a.StatusCode))
	b = appendIntAttr(b, "server.port", int64(a.ServerPort))
	b = appendIntAttr(b, "http.request.body.size", a.RequestBodySize)
	// Sorted, so that a batch encodes the same every time.
	names := make([]string, 0, len(a.RequestHeaders))
	for name := range a.RequestHeaders {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		// An empty value is kept: the header was captured.
		var kv [2]int
		b, kv = beginKeyValue(b, spanAttributes, headerPrefix+name)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, a.RequestHeaders[name])
		b = endKeyValue(b, kv)
	}
	for _, l := range sp.Links {
		var lk int
		b, lk = beginMessage(b, spanLinks)
		if l.TraceID != ([16]byte{}) {
			b = protowire.AppendTag(b, linkTraceID, protowire.BytesType)
			b = protowire.AppendBytes(b, l.TraceID[:])
		}
		b = protowire.AppendTag(b, linkSpanID, protowire.BytesType)
		b = protowire.AppendBytes(b, l.SpanID[:])
		b = endMessage(b, lk)
	}
	if sp.LinksDropped > 0 {
		b = protowire.AppendTag(b, spanDroppedLinks, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sp.LinksDropped))
	}
	if sp.Error {
		var st int
		b, st = beginMessage(b, spanStatus)
		b = protowire.AppendTag(b, statusCode, protowire.VarintType)
		b = protowire.AppendVarint(b, 2)
		b = endMessage(b, st)
	}
	return b
}

// appendTime appends an OTLP timestamp; the zero time is left out, as
// the decoder reads 0 as unset.
func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, uint64(t.UnixNano()))
}

// beginKeyValue begins attribute key (a KeyValue, field num) and its
// AnyValue; endKeyValue, given the offsets it returned, ends both.
func beginKeyValue(b []byte, num protowire.Number, key string) ([]byte, [2]int) {
	var at [2]int
	b, at[0] = beginMessage(b, num)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b, at[1] = beginMessage(b, 2)
	return b, at
}

func endKeyValue(b []byte, at [2]int) []byte {
	return endMessage(endMessage(b, at[1]), at[0])
}

func appendStringAttr(b []byte, num protowire.Number, key, v string) []byte {
	if v == "" {
		return b
	}
	b, at := beginKeyValue(b, num, key)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, v)
	return endKeyValue(b, at)
}

func appendIntAttr(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	b, at := beginKeyValue(b, spanAttributes, key)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(v))
	return endKeyValue(b, at)
}

// appendListAttr appends a resource attribute holding an array of
// strings.
func appendListAttr(b []byte, key string, vs []string) []byte {
	if len(vs) == 0 {
		return b
	}
	b, at := beginKeyValue(b, resourceAttributes, key)
	var arr int
	b, arr = beginMessage(b, 5)
	for _, v := range vs {
		var av int
		b, av = beginMessage(b, 1)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, v)
		b = endMessage(b, av)
	}
	b = endMessage(b, arr)
	return endKeyValue(b, at)
}
