package telemetry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// kv is an attribute, in the order a request sends it.
type kv struct {
	key string
	v   any
}

// decodeOneSpan returns the span a request of one span with attrs, in
// their order, decodes to, through the wire decoder and through the JSON one (pdata),
// failing the test when the two differ or when the span does not
// survive AppendTraceRequest, which the ingest log writes.
func decodeOneSpan(t *testing.T, kind ptrace.SpanKind, attrs ...kv) Span {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "poller")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID([16]byte{1})
	s.SetSpanID([8]byte{2})
	s.SetKind(kind)
	s.SetName("span")
	for _, a := range attrs {
		if err := s.Attributes().PutEmpty(a.key).FromRaw(a.v); err != nil {
			t.Fatal(err)
		}
	}
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var wire, fromJSON []Span
	if err := DecodeTraceRequest(pb, "protobuf", func(s []Span) error { wire = append(wire, s...); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := DecodeTracesJSON(js, "json", func(s []Span) error { fromJSON = append(fromJSON, s...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(wire) != 1 {
		t.Fatalf("%d spans decoded, want 1", len(wire))
	}
	if diff := cmp.Diff(wire, fromJSON); diff != "" {
		t.Errorf("JSON decoding differs from protobuf (-protobuf +json):\n%s", diff)
	}
	if diff := cmp.Diff(wire, roundTrip(t, wire)); diff != "" {
		t.Errorf("AppendTraceRequest round trip (-want +got):\n%s", diff)
	}
	return wire[0]
}

// TestDecodeMessagingOperation: messaging.operation.type, or the
// messaging.operation it replaced, with the deprecated values read as
// the current ones.
func TestDecodeMessagingOperation(t *testing.T) {
	tests := []struct {
		name  string
		attrs []kv
		want  string
	}{
		{"none", []kv{{"messaging.system", "kafka"}}, ""},
		{"receive", []kv{{"messaging.operation.type", "receive"}}, "receive"},
		{"settle", []kv{{"messaging.operation.type", "settle"}}, "settle"},
		{"create", []kv{{"messaging.operation.type", "create"}}, "create"},
		{"old name receive", []kv{{"messaging.operation", "receive"}}, "receive"},
		{"old name publish is send", []kv{{"messaging.operation", "publish"}}, "send"},
		{"old name deliver is process", []kv{{"messaging.operation", "deliver"}}, "process"},
		{"deprecated value publish of the current name", []kv{{"messaging.operation.type", "publish"}}, "send"},
		{"current name wins, after the old one", []kv{{"messaging.operation", "receive"}, {"messaging.operation.type", "process"}}, "process"},
		{"current name wins, before the old one", []kv{{"messaging.operation.type", "send"}, {"messaging.operation", "receive"}}, "send"},
		{"custom value kept", []kv{{"messaging.operation.type", "ack"}}, "ack"},
		{"case kept", []kv{{"messaging.operation.type", "Receive"}}, "Receive"},
		{"system-specific name is not the type", []kv{{"messaging.operation.name", "poll"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeOneSpan(t, ptrace.SpanKindClient, tt.attrs...).Attrs.MessagingOperation; got != tt.want {
				t.Errorf("MessagingOperation = %q, want %q", got, tt.want)
			}
		})
	}
}
