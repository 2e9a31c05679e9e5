package telemetry

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// linkedTraces is a request of a consumer's span that links to links
// spans (1, 2, ...), the second of which names no span, and whose SDK
// dropped sdkDropped more; and of a span without links.
func linkedTraces(links int, sdkDropped uint32) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "worker")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	sp := spans.AppendEmpty()
	sp.SetTraceID(traceID(1))
	sp.SetSpanID(spanID(1))
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetName("orders.worker receive")
	for i := range links {
		l := sp.Links().AppendEmpty()
		l.SetTraceID(traceID(byte(0x80 + i)))
		if i != 1 {
			l.SetSpanID(spanID(byte(0x80 + i)))
		}
		l.TraceState().FromRaw("vendor=x")
		l.Attributes().PutStr("messaging.message.id", "m")
	}
	sp.SetDroppedLinksCount(sdkDropped)
	plain := spans.AppendEmpty()
	plain.SetTraceID(traceID(1))
	plain.SetSpanID(spanID(2))
	plain.SetParentSpanID(spanID(1))
	return td
}

// wantLinks is the links the decoders keep of linkedTraces' first span.
func wantLinks(links int) []Link {
	var want []Link
	for i := range links {
		if i != 1 && len(want) < MaxSpanLinks {
			want = append(want, Link{TraceID: traceID(byte(0x80 + i)), SpanID: spanID(byte(0x80 + i))})
		}
	}
	return want
}

// TestDecodeSpanLinks: a span's links are decoded, in every form
// DecodeTraces reads and by DecodeReceivedTraceRequest, in the order
// sent, those that name no span left out, at most MaxSpanLinks of them;
// those beyond, and those the SDK dropped, are counted; a span without
// links has none (nil: no slice for it). Before, no link was decoded,
// and a pull consumer linked to its producer's span was taken to be fed
// from outside the traced system.
func TestDecodeSpanLinks(t *testing.T) {
	tests := []struct {
		name       string
		links      int
		sdkDropped uint32
		dropped    uint32
	}{
		{"none", 0, 0, 0},
		{"one that names no span", 2, 0, 0},
		{"dropped by the SDK", 3, 4, 4},
		{"MaxSpanLinks", MaxSpanLinks + 1, 0, 0},
		{"beyond MaxSpanLinks", MaxSpanLinks + 6, 2, 2 + 5},
	}
	for _, tt := range tests {
		pb, js := protoAndJSON(t, linkedTraces(tt.links, tt.sdkDropped))
		v1, v2 := tempoJSON(t, js)
		for _, in := range []struct {
			format string
			data   []byte
		}{{"protobuf", pb}, {"OTLP JSON", js}, {"Tempo v1", v1}, {"Tempo v2", v2}, {"received", nil}} {
			t.Run(tt.name+"/"+in.format, func(t *testing.T) {
				var got []Span
				var err error
				if in.data == nil {
					got, _, err = DecodeReceivedTraceRequest(nil, nil, pb, "received", func(int) error { return nil })
				} else {
					got, err = decodeAll(t, in.data, in.format)
				}
				if err != nil || len(got) != 2 {
					t.Fatalf("%d spans, %v", len(got), err)
				}
				if diff := cmp.Diff(wantLinks(tt.links), got[0].Links); diff != "" {
					t.Errorf("links (-want +got):\n%s", diff)
				}
				if got[0].LinksDropped != tt.dropped {
					t.Errorf("links dropped = %d, want %d", got[0].LinksDropped, tt.dropped)
				}
				if got[1].Links != nil || got[1].LinksDropped != 0 {
					t.Errorf("span without links: %v, %d dropped", got[1].Links, got[1].LinksDropped)
				}
			})
		}
		if diff, ok := diffFromPdata(pb); !ok || diff != "" {
			t.Errorf("%s: the wire decoder differs from pdata (-pdata +wire), pdata decodes it: %v:\n%s", tt.name, ok, diff)
		}
	}
}

// TestDecodeSpanLinksMalformed: a link whose id is not an id is damage
// of its span, which is dropped and reported as a span with such an id
// of its own is (pdata refuses the whole request).
func TestDecodeSpanLinksMalformed(t *testing.T) {
	msg := func(num protowire.Number, b ...[]byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), bytes.Join(b, nil))
	}
	ids := bytes.Join([][]byte{msg(spanTraceID, make([]byte, 15), []byte{1}), msg(spanSpanID, []byte{1, 2, 3, 4, 5, 6, 7, 8})}, nil)
	good := msg(ssSpans, ids)
	tests := []struct {
		name, err string
		link      []byte
	}{
		{"short span_id", "span 0: link 0: span_id has 5 bytes, want 8", msg(spanLinks, msg(linkSpanID, []byte{1, 2, 3, 4, 5}))},
		{"long trace_id", "span 0: link 0: trace_id has 17 bytes, want 16", msg(spanLinks, msg(linkTraceID, make([]byte, 17)), msg(linkSpanID, make([]byte, 8)))},
		{"a number", "span 0: link 0: wire type 0, want message", protowire.AppendVarint(protowire.AppendTag(nil, spanLinks, protowire.VarintType), 1)},
		{"cut short", "span 0: link 0: at byte 0", msg(spanLinks, []byte("\x12\x08"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := msg(ssSpans, ids, tt.link)
			req := msg(1, msg(rsScopeSpans, bad, good))
			var got []Span
			err := DecodeTraceRequest(req, "test", func(s []Span) error { got = append(got, s...); return nil })
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			if len(got) != 1 || got[0].Links != nil {
				t.Errorf("spans %+v, want the good one alone, without links", got)
			}
		})
	}
	// A count sent length-delimited is no count (the redaction leaves it
	// out): the varint's stands.
	count := protowire.AppendVarint(protowire.AppendTag(nil, spanDroppedLinks, protowire.VarintType), 5)
	req := msg(1, msg(rsScopeSpans, msg(ssSpans, ids, count, msg(spanDroppedLinks, []byte{1}))))
	spans, err := TraceRequestSpans(req, "test")
	if err != nil || len(spans) != 1 || spans[0].LinksDropped != 5 {
		t.Errorf("spans %+v, %v; want one with 5 links dropped", spans, err)
	}
}
