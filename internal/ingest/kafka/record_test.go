package kafka

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite testdata/gob-formats.golden")

// TestGobFormatsPinned: what the gob formats of the ingest log carry is
// pinned to their versions. gob decodes a value without the fields it
// does not know, so a field added to telemetry.Span or ProfileBatch under
// the same format would be dropped, without a word, by every engine of
// the version before during a rolling upgrade; a new version makes such
// an engine stop at the record instead (errNewerFormat). When this test
// fails, give the format a new version, say so in docs/scaling.md, and
// run it with -update.
func TestGobFormatsPinned(t *testing.T) {
	var b strings.Builder
	for _, f := range []struct {
		format string
		v      any
	}{
		{formatGobSpans, []telemetry.Span(nil)},
		{formatGobProfile, []*telemetry.ProfileBatch(nil)},
	} {
		fmt.Fprintf(&b, "%s\n", f.format)
		describeGob(&b, reflect.TypeOf(f.v), map[reflect.Type]bool{})
	}
	golden := filepath.Join("testdata", "gob-formats.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("the gob formats carry other fields than %s says: an engine of the version before would drop them; give the format a new version, then run with -update.\ngot:\n%s", golden, got)
	}
}

// describeGob writes what gob encodes of t: each struct's exported fields
// with their types, once per struct type, in the order gob sends them.
// Types that encode themselves (time.Time) are named, not opened.
func describeGob(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		if t.Kind() == reflect.Map {
			describeGob(b, t.Key(), seen)
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || selfEncoding(t) {
		return
	}
	seen[t] = true
	fmt.Fprintf(b, "  %s\n", t)
	var next []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type.Kind() == reflect.Chan || f.Type.Kind() == reflect.Func {
			continue // gob leaves them out
		}
		fmt.Fprintf(b, "    %s %s\n", f.Name, f.Type)
		next = append(next, f.Type)
	}
	for _, ft := range next {
		describeGob(b, ft, seen)
	}
}

// selfEncoding reports whether gob encodes t by its own methods.
func selfEncoding(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, i := range []reflect.Type{
		reflect.TypeFor[gob.GobEncoder](), reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.TextMarshaler](),
	} {
		if t.Implements(i) || p.Implements(i) {
			return true
		}
	}
	return false
}

// TestGobSpansVersions: a record of spans in gob is read under the
// format this version writes and under the one the versions before
// wrote, whose spans lack the fields added since.
func TestGobSpansVersions(t *testing.T) {
	spans := []telemetry.Span{{
		Service: "poller", TraceID: [16]byte{1}, SpanID: [8]byte{2}, Kind: telemetry.SpanKindClient,
		Attrs: telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "receive"},
	}}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(spans); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{formatGobSpans, formatGobSpansV1} {
		t.Run(format, func(t *testing.T) {
			rec, err := decode(&kgo.Record{Topic: "evident-ingest", Key: []byte("poller"), Value: buf.Bytes(), Headers: []kgo.RecordHeader{
				{Key: headerTenant, Value: []byte("default")}, {Key: headerFormat, Value: []byte(format)},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(spans, rec.Spans); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
		})
	}
	if newerFormat(formatGobSpansV1) || newerFormat(formatGobSpans) || !newerFormat("gob-spans/3") {
		t.Error("gob-spans/1 and /2 are this version's, /3 a newer one's")
	}
}

// TestSplitTraceRequest: a request split at its spans gives parts within
// the limit that hold, in order, every span with its resource, scope and
// attributes as received; a span too large alone is refused.
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
	// flat lists the spans of requests, each with what it came under.
	flat := func(t *testing.T, reqs ...[]byte) []string {
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
						out = append(out, fmt.Sprint(rs.SchemaUrl(), rs.Resource().Attributes().AsRaw(), ss.Scope().Name(), sp.Name(), sp.SpanID(), sp.Attributes().AsRaw()))
					}
				}
			}
		}
		return out
	}
	want := flat(t, req)
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
			parts, err := splitTraceRequest(req, tt.limit)
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
			if diff := cmp.Diff(flat(t, parts...), want); diff != "" {
				t.Errorf("spans of the parts (-got +want):\n%s", diff)
			}
		})
	}
	if _, err := splitTraceRequest(req, 100); !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("limit below a span: err = %v, want kerr.MessageTooLarge", err)
	}
	if _, err := splitTraceRequest([]byte{0x0a, 0x05, 0x12}, 100); err == nil {
		t.Error("truncated request: no error")
	}
}
