package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestSplitTraceRequest(t *testing.T) {
	td := ptrace.NewTraces()
	for r := range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		rs.Resource().Attributes().PutStr("service.name", "cart")
		rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("node-%d", r))
		for s := range 2 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("scope-%d", s))
			for i := range 30 {
				sp := ss.Spans().AppendEmpty()
				sp.SetName(fmt.Sprintf("GET /item/%d/%d/%d", r, s, i))
				sp.SetTraceID(pcommon.TraceID{1})
				sp.SetSpanID(pcommon.SpanID{byte(r), byte(s), byte(i), 1})
				sp.Attributes().PutStr("app.cart.id", strings.Repeat("c", i))
			}
		}
		// A resource without spans carries nothing to split.
		td.ResourceSpans().AppendEmpty().Resource().Attributes().PutStr("service.name", "cart")
	}
	req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	want := pdataSpans(t, req)
	tests := []struct {
		name         string
		limit, parts int // parts 0: more than one
	}{
		{"fits", len(req), 1},
		{"halves", len(req)/2 + 200, 2},
		{"small", 700, 0},
		{"tight", 260, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := SplitTraceRequest(req, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if tt.parts > 0 && len(parts) != tt.parts || tt.parts == 0 && len(parts) < 2 {
				t.Errorf("%d parts, want %d", len(parts), tt.parts)
			}
			for i, p := range parts {
				if len(p) > tt.limit {
					t.Errorf("part %d: %d bytes, over %d", i, len(p), tt.limit)
				}
			}
			if diff := cmp.Diff(pdataSpans(t, parts...), want); diff != "" {
				t.Errorf("spans of the parts (-got +want):\n%s", diff)
			}
		})
	}
	if _, err := SplitTraceRequest(req, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("limit below a span: err = %v, want ErrTooLarge", err)
	}
	if _, err := SplitTraceRequest([]byte{0x0a, 0x05, 0x12}, 100); err == nil {
		t.Error("truncated request: no error")
	}
}

// pdataSpans lists the spans of OTLP requests as pdata reads them, each
// with what it came under and with: a consumer of OTLP's view, fields
// evident does not decode included.
func pdataSpans(t *testing.T, reqs ...[]byte) []string {
	t.Helper()
	var out []string
	for _, b := range reqs {
		er := ptraceotlp.NewExportRequest()
		if err := er.UnmarshalProto(b); err != nil {
			t.Fatal(err)
		}
		rss := er.Traces().ResourceSpans()
		for i := range rss.Len() {
			rs := rss.At(i)
			for j := range rs.ScopeSpans().Len() {
				ss := rs.ScopeSpans().At(j)
				for k := range ss.Spans().Len() {
					sp := ss.Spans().At(k)
					var events, links []any
					for e := range sp.Events().Len() {
						events = append(events, sp.Events().At(e).Name(), sp.Events().At(e).Attributes().AsRaw())
					}
					for l := range sp.Links().Len() {
						links = append(links, sp.Links().At(l).SpanID(), sp.Links().At(l).Attributes().AsRaw())
					}
					out = append(out, fmt.Sprint(rs.SchemaUrl(), rs.Resource().Attributes().AsRaw(), ss.Scope().Name(),
						ss.Scope().Attributes().AsRaw(), sp.Name(), sp.SpanID(), sp.Attributes().AsRaw(), events, links))
				}
			}
		}
	}
	return out
}

// TestSplitTraceRequestByService: a request of several services splits
// into one request per service, each ResourceSpans of it as received,
// byte for byte (the attributes, events and links evident does not
// decode, and fields OTLP does not define), in order; each decodes as
// the spans of the whole of its service.
func TestSplitTraceRequestByService(t *testing.T) {
	// request builds a request of a ResourceSpans per service (empty: no
	// service.name), each with a span carrying what evident does not
	// decode, and a field OTLP does not define after them.
	request := func(t *testing.T, services ...string) []byte {
		td := ptrace.NewTraces()
		for i, svc := range services {
			rs := td.ResourceSpans().AppendEmpty()
			rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
			if svc != "" {
				rs.Resource().Attributes().PutStr("service.name", svc)
			}
			rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("node-%d", i))
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("io.opentelemetry.tomcat")
			ss.Scope().Attributes().PutStr("app.scope", "kept")
			sp := ss.Spans().AppendEmpty()
			sp.SetName(fmt.Sprintf("GET /%s/%d", svc, i))
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetTraceID(pcommon.TraceID{1})
			sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
			sp.Attributes().PutStr("app.note", fmt.Sprintf("note %d", i))
			ev := sp.Events().AppendEmpty()
			ev.SetName("exception")
			ev.Attributes().PutStr("exception.message", "boom")
			ln := sp.Links().AppendEmpty()
			ln.SetTraceID(pcommon.TraceID{2})
			ln.SetSpanID(pcommon.SpanID{byte(i + 9)})
			ln.Attributes().PutStr("app.link", "kept")
		}
		req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		// Field 99, which OTLP does not define, at the request's top.
		req = protowire.AppendTag(req, 99, protowire.BytesType)
		return protowire.AppendString(req, "unknown")
	}
	tests := []struct {
		name     string
		services []string
		want     []string // the parts' services
	}{
		{"one service", []string{"cart"}, []string{"cart"}},
		{"one service, two resources", []string{"cart", "cart"}, []string{"cart"}},
		{"two services", []string{"cart", "pay"}, []string{"cart", "pay"}},
		{"interleaved", []string{"cart", "pay", "cart", "ship", "pay"}, []string{"cart", "pay", "ship"}},
		{"no service.name", []string{"cart", ""}, []string{"cart", UnknownService}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, tt.services...)
			parts, err := SplitTraceRequestByService(req)
			if err != nil {
				t.Fatal(err)
			}
			var services []string
			for _, p := range parts {
				services = append(services, p.Service)
			}
			if diff := cmp.Diff(services, tt.want); diff != "" {
				t.Fatalf("services of the parts (-got +want):\n%s", diff)
			}
			if len(parts) == 1 && !bytes.Equal(parts[0].Request, req) {
				t.Errorf("a request of one service split into %d bytes, not the %d received", len(parts[0].Request), len(req))
			}
			head, resources, err := fieldValues(req, 1)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := TraceRequestSpans(req, "the request")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				// Byte for byte: the request's other fields, then the
				// ResourceSpans of the service, in order (one service's
				// part is the request itself, checked above).
				var want []byte
				want = append(want, head...)
				for i, rs := range resources {
					if svc := tt.services[i]; svc == p.Service || svc == "" && p.Service == UnknownService {
						want = protowire.AppendTag(want, 1, protowire.BytesType)
						want = protowire.AppendBytes(want, rs)
					}
				}
				if len(parts) > 1 && !bytes.Equal(p.Request, want) {
					t.Errorf("part %q is not the service's ResourceSpans as received", p.Service)
				}
				got, err := TraceRequestSpans(p.Request, "a part")
				if err != nil {
					t.Fatalf("part %q: %v", p.Service, err)
				}
				var of []Span
				for _, s := range whole {
					if s.Service == p.Service {
						of = append(of, s)
					}
				}
				if diff := cmp.Diff(got, of); diff != "" {
					t.Errorf("spans of part %q (-got +want):\n%s", p.Service, diff)
				}
			}
			var got [][]byte
			for _, p := range parts {
				got = append(got, p.Request)
			}
			if diff := cmp.Diff(slices.Sorted(slices.Values(pdataSpans(t, got...))), slices.Sorted(slices.Values(pdataSpans(t, req)))); diff != "" {
				t.Errorf("spans of the parts as pdata reads them (-got +want):\n%s", diff)
			}
		})
	}
	for _, bad := range [][]byte{
		{0x0a, 0x05, 0x12},             // resource_spans cut short
		{0x0a, 0x03, 0x0a, 0x05, 0x00}, // a resource cut short inside its ResourceSpans
	} {
		if _, err := SplitTraceRequestByService(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}
