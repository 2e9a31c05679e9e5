package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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
