package telemetry

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// roundTrip encodes spans and decodes them back with DecodeTraceRequest.
func roundTrip(t testing.TB, spans []Span) []Span {
	t.Helper()
	b, err := AppendTraceRequest(nil, spans)
	if err != nil {
		t.Fatalf("AppendTraceRequest: %v", err)
	}
	var got []Span
	if err := DecodeTraceRequest(b, "round trip", func(s []Span) error {
		got = append(got, s...)
		return nil
	}); err != nil {
		t.Fatalf("decode what AppendTraceRequest wrote: %v", err)
	}
	return got
}

// TestAppendTraceRequestRoundTrip: the spans of every trace fixture, in
// every format, decode back from what AppendTraceRequest writes.
func TestAppendTraceRequestRoundTrip(t *testing.T) {
	for _, name := range []string{"traces.pb", "traces.jsonl", "tempo-v1.json", "tempo-v2.json"} {
		t.Run(name, func(t *testing.T) {
			var want []Span
			if err := DecodeTraces(bytes.NewReader(readFixture(t, name)), name, func(s []Span) error {
				want = append(want, s...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatal("no spans in the fixture")
			}
			if diff := cmp.Diff(want, roundTrip(t, want), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAppendTraceRequestEveryField sets every field of a span, so that a
// field added to Span or Attrs and not to AppendTraceRequest fails here.
func TestAppendTraceRequestEveryField(t *testing.T) {
	sp := Span{
		Service: "shop", Namespace: "prod",
		Image:   &Image{Name: "registry.example.com/shop", Digest: "sha256:aa", RepoDigests: []string{"registry.example.com/shop@sha256:aa"}, Tags: []string{"v1", "latest"}},
		TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4}, ParentSpanID: [8]byte{5},
		Kind: SpanKindServer, Name: "GET /items/{id}",
		Start: time.Unix(1700000000, 5).UTC(), End: time.Unix(1700000001, 7).UTC(),
		Error: true,
		Links: []Link{{TraceID: [16]byte{6}, SpanID: [8]byte{7}}, {SpanID: [8]byte{8}}}, LinksDropped: 3,
	}
	// Every string and int of Attrs gets a distinct value by reflection.
	v := reflect.ValueOf(&sp.Attrs).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-value")
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(500 + i))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"authorization": "Bearer x", "x-empty": ""}))
		default:
			t.Fatalf("Attrs.%s is a %s: teach AppendTraceRequest and this test about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	got := roundTrip(t, []Span{sp})
	if diff := cmp.Diff([]Span{sp}, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if n := reflect.TypeFor[Span]().NumField(); n != 14 {
		t.Errorf("Span has %d fields, AppendTraceRequest writes 14: teach it the new ones", n)
	}
}

// TestAppendTraceRequestResources: consecutive spans of one resource
// share it; a change of service, namespace or image starts another.
func TestAppendTraceRequestResources(t *testing.T) {
	im := &Image{Name: "a"}
	spans := []Span{
		{Service: "a", Image: im, TraceID: [16]byte{9}, SpanID: [8]byte{1}},
		{Service: "a", Image: im, TraceID: [16]byte{9}, SpanID: [8]byte{2}},
		{Service: "a", Namespace: "n", TraceID: [16]byte{9}, SpanID: [8]byte{3}},
		{Service: "b", TraceID: [16]byte{9}, SpanID: [8]byte{4}},
		{Service: "a", Image: im, TraceID: [16]byte{9}, SpanID: [8]byte{5}},
	}
	b, err := AppendTraceRequest(nil, spans)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	if err := DecodeTraceRequest(b, "resources", func(s []Span) error {
		sizes = append(sizes, len(s))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{2, 1, 1, 1}, sizes); diff != "" {
		t.Errorf("spans per resource (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(spans, roundTrip(t, spans)); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestAppendTraceRequestNotEncodable: spans the decoder could not have
// produced are refused, and dst is left as it was.
func TestAppendTraceRequestNotEncodable(t *testing.T) {
	ids := func(sp Span) Span {
		sp.TraceID, sp.SpanID = [16]byte{1}, [8]byte{1}
		return sp
	}
	for name, sp := range map[string]Span{
		"no trace_id":                   {SpanID: [8]byte{1}},
		"no span_id":                    {TraceID: [16]byte{1}},
		"server error without the flag": ids(Span{Kind: SpanKindServer, Attrs: Attrs{StatusCode: 503}}),
		"image without name or digest":  ids(Span{Image: &Image{Tags: []string{"v1"}}}),
		"header not in lower case":      ids(Span{Attrs: Attrs{RequestHeaders: map[string]string{"Cookie": "x"}}}),
		"kind OTLP does not define":     ids(Span{Kind: SpanKindConsumer + 32}),
		"start past 2262":               ids(Span{Start: time.Date(3987673, 6, 28, 20, 49, 9, 0, time.UTC)}),
		"end before 1678":               ids(Span{End: time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)}),
		"start at 1970's first instant": ids(Span{Start: time.Unix(0, 0)}),
		"link that names no span":       ids(Span{Links: []Link{{TraceID: [16]byte{1}}}}),
		"more links than MaxSpanLinks":  ids(Span{Links: slices.Repeat([]Link{{SpanID: [8]byte{2}}}, MaxSpanLinks+1)}),
	} {
		t.Run(name, func(t *testing.T) {
			dst := []byte("kept")
			got, err := AppendTraceRequest(dst, []Span{ids(Span{}), sp})
			if !errors.Is(err, ErrNotEncodable) || string(got) != "kept" {
				t.Errorf("AppendTraceRequest = %q, %v; want dst unchanged and ErrNotEncodable", got, err)
			}
		})
	}
}

// TestAppendTraceRequestLongMessages: lengths beyond one varint byte move
// the message after its length correctly.
func TestAppendTraceRequestLongMessages(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), 70000))
	spans := []Span{{Service: "s", TraceID: [16]byte{1}, SpanID: [8]byte{1}, Name: long, Attrs: Attrs{URLQuery: long[:200], DBQueryText: long[:20000]}}}
	if diff := cmp.Diff(spans, roundTrip(t, spans)); diff != "" {
		t.Errorf("round trip differs (%d bytes)", len(diff))
	}
}

func BenchmarkAppendTraceRequest(b *testing.B) {
	var spans []Span
	if err := DecodeTraces(bytes.NewReader(readFixture(b, "traces.pb")), "bench", func(s []Span) error {
		spans = append(spans, s...)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendTraceRequest(buf[:0], spans); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(spans))*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
}
