package telemetry

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// staleSpan is a span with every field set, by reflection, so that a
// field the decoder does not write is seen whatever it is.
func staleSpan(t *testing.T) Span {
	t.Helper()
	sp := Span{Image: &Image{Name: "stale"}, Start: time.Unix(1, 0), End: time.Unix(2, 0)}
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := range v.NumField() {
			f, name := v.Field(i), v.Type().Field(i).Name
			switch {
			case f.Type() == reflect.TypeFor[time.Time]() || f.Type() == reflect.TypeFor[*Image]():
				// set above
			case f.Kind() == reflect.String:
				f.SetString("stale " + name)
			case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
				f.SetInt(99)
			case f.Kind() == reflect.Uint8 || f.Kind() == reflect.Uint32:
				f.SetUint(99)
			case f.Type() == reflect.TypeFor[[]Link]():
				f.Set(reflect.ValueOf([]Link{{TraceID: [16]byte{0xee}, SpanID: [8]byte{0xee}}}))
			case f.Kind() == reflect.Bool:
				f.SetBool(true)
			case f.Kind() == reflect.Array:
				for j := range f.Len() {
					f.Index(j).SetUint(0xee)
				}
			case f.Kind() == reflect.Map:
				f.Set(reflect.ValueOf(map[string]string{"stale": "x"}))
			case f.Kind() == reflect.Struct:
				fill(f)
			default:
				t.Fatalf("%s.%s is a %s: teach this test about it", v.Type(), name, f.Kind())
			}
		}
	}
	fill(reflect.ValueOf(&sp).Elem())
	return sp
}

// staleTexts is the Texts of a request with more texts than the test's.
func staleTexts(t *testing.T) *Texts {
	t.Helper()
	_, texts, err := DecodeReceivedTraceRequest(nil, nil, marshalTraces(t, traceRequest("stale")), "stale", func(int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	texts.other = true
	return texts
}

// TestDecodeReceivedTraceRequestReuses: spans decoded into a slice that
// held other spans are the spans decoded into a new one, field for field,
// in that slice's memory while it has room, appended to what it holds;
// the texts recorded in the Texts of another request are those recorded
// in a new one.
func TestDecodeReceivedTraceRequestReuses(t *testing.T) {
	// Three resources, one of them with an image and header lists.
	resources := []Span{
		{Service: "a", TraceID: [16]byte{1}, SpanID: [8]byte{1}, Kind: SpanKindServer, Name: "GET /a",
			Start: time.Unix(1700000000, 0).UTC(), End: time.Unix(1700000001, 0).UTC(), Error: true,
			Attrs: Attrs{HTTPMethod: "GET", HTTPRoute: "/a", StatusCode: 503, RequestHeaders: map[string]string{"accept": "*/*"}}},
		{Service: "a", TraceID: [16]byte{1}, SpanID: [8]byte{2}, ParentSpanID: [8]byte{1}, Kind: SpanKindClient, Name: "SELECT",
			Attrs: Attrs{DBSystem: "postgresql", DBQueryText: "SELECT 1"}},
		{Service: "b", Namespace: "prod", Image: &Image{Name: "b", Tags: []string{"v1"}}, TraceID: [16]byte{2}, SpanID: [8]byte{3}, Name: "work"},
		{Service: "c", TraceID: [16]byte{3}, SpanID: [8]byte{4}, Name: "other"},
	}
	multi, err := AppendTraceRequest(nil, resources)
	if err != nil {
		t.Fatal(err)
	}
	// The second span has no span_id: it is dropped, and its slot taken
	// by the next.
	malformed := []byte("\x0a\x3c\x12\x3a\x12\x12\x0a\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10" +
		"\x12\x24\x0a\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x12\x08\x01\x02\x03\x04\x05\x06\x07\x08\x2a\x06\x47\x45\x54\x20\x2f\x62")
	stale := staleSpan(t)
	staleSlice := func(n, c int) []Span {
		s := make([]Span, n, c)
		for i := range s[:c] {
			s[:c][i] = stale
		}
		return s
	}
	for _, req := range []struct {
		name string
		msg  []byte
	}{{"fixture", readFixture(t, "traces.pb")}, {"three resources", multi}, {"a malformed span", malformed}} {
		_, wantTexts, _ := DecodeReceivedTraceRequest(nil, nil, req.msg, req.name, func(int) error { return nil })
		var want []Span
		var wantSizes []int
		wantErr := DecodeTraceRequest(req.msg, req.name, func(s []Span) error {
			want = append(want, s...)
			wantSizes = append(wantSizes, len(s))
			return nil
		})
		if len(want) == 0 {
			t.Fatalf("%s: nothing decodes", req.name)
		}
		for _, tc := range []struct {
			name    string
			dst     []Span
			texts   *Texts // of another request
			inPlace bool   // decoded in dst's memory
			kept    int    // spans of dst before those decoded
		}{
			{name: "nil"},
			{name: "stale, room for all", dst: staleSlice(0, len(want)+3), texts: staleTexts(t), inPlace: true},
			// Room for one span: enough for a request with one span
			// that has both ids, whatever span fields it has besides
			// (the slice grows by what its bytes can hold of such
			// spans).
			{name: "stale, too small", dst: staleSlice(0, 1), texts: staleTexts(t), inPlace: len(want) == 1},
			{name: "one span kept", dst: staleSlice(1, len(want)+3), inPlace: true, kept: 1},
		} {
			t.Run(req.name+"/"+tc.name, func(t *testing.T) {
				var sizes []int
				got, texts, err := DecodeReceivedTraceRequest(tc.dst, tc.texts, req.msg, req.name, func(n int) error {
					sizes = append(sizes, n)
					return nil
				})
				if (err != nil) != (wantErr != nil) {
					t.Fatalf("err = %v, DecodeTraceRequest's %v", err, wantErr)
				}
				if texts == nil || tc.texts != nil && texts != tc.texts {
					t.Fatalf("texts %p, want the Texts given, %p", texts, tc.texts)
				}
				if diff := cmp.Diff(wantTexts.refs, texts.refs, cmpopts.EquateEmpty(), cmp.AllowUnexported(textRef{})); diff != "" || texts.other != wantTexts.other || &texts.req[0] != &req.msg[0] {
					t.Errorf("texts (-new +reused):\n%s, other %v, want %v", diff, texts.other, wantTexts.other)
				}
				if diff := cmp.Diff(want, got[tc.kept:], cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("spans (-new slice +reused):\n%s", diff)
				}
				for i := range tc.kept {
					if diff := cmp.Diff(stale, got[i]); diff != "" {
						t.Errorf("span %d of dst changed:\n%s", i, diff)
					}
				}
				if tc.dst != nil {
					if in := &got[0] == &tc.dst[:1][0]; in != tc.inPlace {
						t.Errorf("decoded in dst's memory: %v, want %v", in, tc.inPlace)
					}
				}
				if diff := cmp.Diff(wantSizes, sizes); diff != "" {
					t.Errorf("reserved spans per resource (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestReleaser: the release function goes with the spans it was given
// for, and no others.
func TestReleaser(t *testing.T) {
	spans := make([]Span, 3)
	var released []Span
	ctx := WithRelease(context.Background(), spans, func(s []Span) { released = s })
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		spans []Span
		want  bool
	}{
		{"same slice", ctx, spans, true},
		{"part of it", ctx, spans[:2], false},
		{"from the second span", ctx, spans[1:], false},
		{"a copy", ctx, append([]Span(nil), spans...), false},
		{"no release in ctx", context.Background(), spans, false},
		{"empty", WithRelease(context.Background(), nil, func([]Span) {}), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			released = nil
			release := Releaser(tc.ctx, tc.spans)
			if (release != nil) != tc.want {
				t.Fatalf("Releaser returned a function: %v, want %v", release != nil, tc.want)
			}
			if release == nil {
				return
			}
			release(tc.spans)
			if len(released) != len(spans) || &released[0] != &spans[0] {
				t.Errorf("release got %d spans at %p, want the %d given at %p", len(released), released, len(spans), spans)
			}
		})
	}
}

// BenchmarkDecodeReceivedTraceRequest decodes a 1000-span request into a
// new slice and Texts each time, into the slice and Texts of the request
// before (what the OTLP receiver does with what the engine gave back),
// and into that slice cleared first, for comparison: the decoder writes
// every field of a span, so that clearing is not needed.
func BenchmarkDecodeReceivedTraceRequest(b *testing.B) {
	data := benchTraces(b, 1000)
	none := func(int) error { return nil }
	for _, tc := range []struct {
		name  string
		reuse func(prev []Span) []Span
	}{
		{"new", func([]Span) []Span { return nil }},
		{"reused", func(prev []Span) []Span { return prev[:0] }},
		{"reused-cleared", func(prev []Span) []Span { clear(prev); return prev[:0] }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var spans []Span
			var texts *Texts
			n := 0
			cpu := processCPU(b)
			for b.Loop() {
				var err error
				spans = tc.reuse(spans)
				if spans == nil {
					texts = nil
				}
				if spans, texts, err = DecodeReceivedTraceRequest(spans, texts, data, "bench", none); err != nil {
					b.Fatal(err)
				}
				n += len(spans)
			}
			cpuRate(b, n, "spans", cpu)
		})
	}
}

// TestDecodeReceivedTraceRequestKeepsStrings: a request decoded with the
// Texts of the one before shares its strings rather than copying them
// again; a decode that leaves more than keptStrings keeps none.
func TestDecodeReceivedTraceRequestKeepsStrings(t *testing.T) {
	none := func(int) error { return nil }
	msg := readFixture(t, "traces.pb")
	for _, tc := range []struct {
		name   string
		extra  int // strings the Texts holds beyond the request's
		shared bool
	}{
		{"kept", 0, true},
		{"too many kept", keptStrings + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, texts, err := DecodeReceivedTraceRequest(nil, nil, msg, "first", none)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.extra {
				texts.strings[strconv.Itoa(i)] = strconv.Itoa(i)
			}
			if tc.extra > 0 {
				// As a request of that many strings leaves it.
				_, texts, _ = DecodeReceivedTraceRequest(nil, texts, nil, "extra", none)
			}
			second, _, err := DecodeReceivedTraceRequest(nil, texts, slices.Clone(msg), "second", none)
			if err != nil {
				t.Fatal(err)
			}
			if shared := unsafe.StringData(second[0].Name) == unsafe.StringData(first[0].Name); shared != tc.shared {
				t.Errorf("span name shared with the request before: %v, want %v", shared, tc.shared)
			}
			if diff := cmp.Diff(first, second); diff != "" {
				t.Errorf("spans (-first +second):\n%s", diff)
			}
		})
	}
}
