package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// secretMasker replaces every text holding "SECRET" with "MASK", and the
// value of an attribute named "password" whatever it is; it records the
// keys it was asked about.
type secretMasker struct{ keys []string }

func (m *secretMasker) Attribute(key, v string) string {
	m.keys = append(m.keys, key)
	if key == "password" {
		return "MASK"
	}
	return m.Text(v)
}

func (*secretMasker) Text(v string) string {
	if strings.Contains(v, "SECRET") {
		return "MASK"
	}
	return v
}

// traceRequest builds a request with text in every place OTLP has it;
// secret is put in each, "clean" elsewhere.
func traceRequest(secret string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rs.Resource().Attributes().PutStr("service.name", "shop")
	rs.Resource().Attributes().PutStr("deployment.note", secret)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib " + secret)
	ss.Scope().SetVersion("1.0")
	ss.Scope().Attributes().PutStr("scope.attr", secret)
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1, 2, 3})
	sp.SetSpanID([8]byte{4, 5, 6})
	sp.SetName("GET /x " + secret)
	sp.SetKind(ptrace.SpanKindServer)
	sp.TraceState().FromRaw("vendor=" + secret)
	a := sp.Attributes()
	a.PutStr("url.query", "q="+secret)
	a.PutStr("app.unknown", secret)
	a.PutStr("password", "hunter2")
	a.PutInt("http.response.status_code", 200)
	a.PutEmptyBytes("app.bytes").FromRaw([]byte("raw " + secret))
	arr := a.PutEmptySlice("http.request.header.x-note")
	arr.AppendEmpty().SetStr("a")
	arr.AppendEmpty().SetStr("b " + secret)
	kv := a.PutEmptyMap("app.map")
	kv.PutStr("inner", secret)
	kv.PutStr("password", "letmein")
	kv.PutEmptyMap("deeper").PutStr("x", secret)
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception " + secret)
	ev.Attributes().PutStr("exception.message", "connect "+secret)
	ln := sp.Links().AppendEmpty()
	ln.SetTraceID([16]byte{9})
	ln.SetSpanID([8]byte{9})
	ln.TraceState().FromRaw("v=" + secret)
	ln.Attributes().PutStr("link.note", secret)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("failed " + secret)
	// A second span with nothing to mask but the password.
	sp2 := ss.Spans().AppendEmpty()
	sp2.SetTraceID([16]byte{1, 2, 3})
	sp2.SetSpanID([8]byte{7})
	sp2.SetName("SELECT")
	sp2.Attributes().PutStr("db.system.name", "postgresql")
	return td
}

func marshalTraces(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tracesJSON decodes req with pdata and renders it as OTLP JSON, to
// compare requests by content.
func tracesJSON(t testing.TB, req []byte) string {
	t.Helper()
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
	if err != nil {
		t.Fatalf("pdata cannot decode the request: %v", err)
	}
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRedactTraceRequest(t *testing.T) {
	t.Run("nothing to mask: the request itself", func(t *testing.T) {
		td := traceRequest("clean")
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Remove("password")
		m, _ := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("app.map")
		m.Map().Remove("password")
		req := marshalTraces(t, td)
		out, changed, err := RedactTraceRequest(req, &secretMasker{})
		if err != nil || changed {
			t.Fatalf("RedactTraceRequest = changed %v, %v; want unchanged", changed, err)
		}
		if &out[0] != &req[0] || len(out) != len(req) {
			t.Error("an unchanged request was copied")
		}
	})
	t.Run("every text masked, everything else kept", func(t *testing.T) {
		m := &secretMasker{}
		out, changed, err := RedactTraceRequest(marshalTraces(t, traceRequest("SECRET")), m)
		if err != nil || !changed {
			t.Fatalf("RedactTraceRequest = changed %v, %v; want changed", changed, err)
		}
		for _, s := range []string{"SECRET", "hunter2", "letmein"} {
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("the redacted request still holds %s", s)
			}
		}
		want := traceRequest("MASK")
		sp := want.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		// Whole texts are replaced by the test's masker.
		want.ResourceSpans().At(0).ScopeSpans().At(0).Scope().SetName("MASK")
		sp.SetName("MASK")
		sp.TraceState().FromRaw("MASK")
		sp.Attributes().PutStr("url.query", "MASK")
		sp.Attributes().PutStr("password", "MASK")
		sp.Attributes().PutEmptyBytes("app.bytes").FromRaw([]byte("MASK"))
		h, _ := sp.Attributes().Get("http.request.header.x-note")
		h.Slice().At(1).SetStr("MASK")
		mv, _ := sp.Attributes().Get("app.map")
		mv.Map().PutStr("password", "MASK")
		sp.Events().At(0).SetName("MASK")
		sp.Events().At(0).Attributes().PutStr("exception.message", "MASK")
		sp.Links().At(0).TraceState().FromRaw("MASK")
		sp.Status().SetMessage("MASK")
		if diff := cmp.Diff(tracesJSON(t, marshalTraces(t, want)), tracesJSON(t, out)); diff != "" {
			t.Errorf("redacted request (-want +got):\n%s", diff)
		}
		// Nested key-value lists are asked about by their own keys, array
		// elements by the attribute's.
		for _, k := range []string{"inner", "x", "http.request.header.x-note", "deployment.note", "scope.attr"} {
			if !strings.Contains(strings.Join(m.keys, " "), k) {
				t.Errorf("the masker was not asked about %q (asked: %q)", k, m.keys)
			}
		}
		again, changed, err := RedactTraceRequest(out, m)
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Errorf("redacting the redacted request again changed it (%v, %v)", changed, err)
		}
	})
	t.Run("fields OTLP does not define are left out when they could hold text", func(t *testing.T) {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{1})
		sp.SetSpanID([8]byte{2})
		sp.SetName("clean")
		req := marshalTraces(t, td)
		// Field 99 of the request, bytes then varint.
		withUnknown := protowire.AppendTag(bytes.Clone(req), 99, protowire.BytesType)
		withUnknown = protowire.AppendString(withUnknown, "SECRET in a future field")
		withUnknown = protowire.AppendTag(withUnknown, 98, protowire.VarintType)
		withUnknown = protowire.AppendVarint(withUnknown, 7)
		out, changed, err := RedactTraceRequest(withUnknown, &secretMasker{})
		if err != nil || !changed {
			t.Fatalf("RedactTraceRequest = changed %v, %v; want changed", changed, err)
		}
		want := protowire.AppendTag(bytes.Clone(req), 98, protowire.VarintType)
		want = protowire.AppendVarint(want, 7)
		if !bytes.Equal(out, want) {
			t.Errorf("got %x, want %x", out, want)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		req := marshalTraces(t, traceRequest("clean"))
		_, _, err := RedactTraceRequest(req[:len(req)-3], &secretMasker{})
		if !errors.Is(err, ErrNotRedactable) {
			t.Errorf("truncated request: err = %v, want ErrNotRedactable", err)
		}
	})
}

// TestRedactTraceRequestDecodes: the redacted request decodes into the
// spans of the request as received, with the masked values.
func TestRedactTraceRequestDecodes(t *testing.T) {
	decode := func(req []byte) []Span {
		var spans []Span
		if err := DecodeTraceRequest(req, "test", func(s []Span) error {
			spans = append(spans, s...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return spans
	}
	out, _, err := RedactTraceRequest(marshalTraces(t, traceRequest("SECRET")), &secretMasker{})
	if err != nil {
		t.Fatal(err)
	}
	want := decode(marshalTraces(t, traceRequest("SECRET")))
	want[0].Name, want[0].Attrs.URLQuery = "MASK", "MASK"
	want[0].Attrs.RequestHeaders["x-note"] = "a, MASK"
	if diff := cmp.Diff(want, decode(out)); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

// TestRedactTraceRequestOwnEncoding: a request written with the key of
// each attribute first, as SDKs write them (and AppendTraceRequest), not
// last as pdata does.
func TestRedactTraceRequestOwnEncoding(t *testing.T) {
	spans := []Span{{Service: "shop", TraceID: [16]byte{1}, SpanID: [8]byte{2}, Name: "GET /x", Attrs: Attrs{
		URLPath: "/x", URLQuery: "q=SECRET", UserAgent: "curl/8", RequestHeaders: map[string]string{"accept": "SECRET"}}}}
	req, err := AppendTraceRequest(nil, spans)
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := RedactTraceRequest(req, &secretMasker{})
	if err != nil || !changed {
		t.Fatalf("RedactTraceRequest = changed %v, %v; want changed", changed, err)
	}
	var got []Span
	if err := DecodeTraceRequest(out, "test", func(s []Span) error {
		got = append(got, s...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	spans[0].Attrs.URLQuery, spans[0].Attrs.RequestHeaders["accept"] = "MASK", "MASK"
	if diff := cmp.Diff(spans, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

// TestTextsMasks: the texts the decoder records tell whether a masker
// masks anything as RedactTraceRequest does, and send the requests they
// do not cover to it.
func TestTextsMasks(t *testing.T) {
	own := func(query, ua string) []byte {
		b, err := AppendTraceRequest(nil, []Span{{Service: "shop", TraceID: [16]byte{1}, SpanID: [8]byte{2}, Name: "GET /x",
			Attrs: Attrs{URLQuery: query, UserAgent: ua, StatusCode: 200, RequestHeaders: map[string]string{"accept": "*/*"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withUnknown := func(req []byte, attr string) []byte {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(req)
		if err != nil {
			t.Fatal(err)
		}
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("app.note", attr)
		td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().SetName("lib")
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Status().SetMessage("failed")
		return marshalTraces(t, td)
	}
	for _, tc := range []struct {
		name      string
		req       []byte
		wantMasks bool
	}{
		{"clean", own("q=1", "curl/8"), false},
		{"secret in a decoded attribute", own("q=SECRET", "curl/8"), true},
		{"secret in the user agent", own("q=1", "curl/8 SECRET"), true},
		{"clean, attributes evident does not decode", withUnknown(own("q=1", "curl/8"), "note"), false},
		{"secret in an attribute evident does not decode", withUnknown(own("q=1", "curl/8"), "SECRET"), true},
		{"events, links: not covered", marshalTraces(t, traceRequest("clean")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, texts, err := DecodeReceivedTraceRequest(nil, nil, tc.req, "test", func(int) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if got := texts.Masks(&secretMasker{}); got != tc.wantMasks {
				t.Errorf("Masks = %v, want %v", got, tc.wantMasks)
			}
			if _, changed, err := RedactTraceRequest(tc.req, &secretMasker{}); err != nil || (changed && !tc.wantMasks) {
				t.Errorf("RedactTraceRequest: changed %v, %v", changed, err)
			}
		})
	}
}

// TestTextsMasksDamage: a field that claims more of its resource_spans
// than there is hides the rest from the decoder (found by
// FuzzRedactTraceRequest). The decoder reports it, and its texts then do
// not vouch for the request, which RedactTraceRequest refuses: it is not
// kept as received, secret and all.
func TestTextsMasksDamage(t *testing.T) {
	req, err := AppendTraceRequest(nil, []Span{{Service: "shop", TraceID: [16]byte{1}, SpanID: [8]byte{2}, Name: "GET /x",
		Attrs: Attrs{URLQuery: "q=SECRET"}}})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := protowire.ConsumeBytes(req[protowire.SizeTag(1):])
	hidden := protowire.AppendVarint([]byte{0x1a}, uint64(len(rs)+10)) // schema_url
	damaged := appendMsg(nil, 1, append(hidden, rs...))
	spans, texts, err := DecodeReceivedTraceRequest(nil, nil, damaged, "test", func(int) error { return nil })
	if err == nil || len(spans) != 0 {
		t.Errorf("DecodeReceivedTraceRequest = %d spans, %v; want none and an error", len(spans), err)
	}
	if texts != nil && !texts.Masks(&secretMasker{}) {
		t.Error("the texts say nothing in the request is masked")
	}
	if _, _, err := RedactTraceRequest(damaged, &secretMasker{}); !errors.Is(err, ErrNotRedactable) {
		t.Errorf("RedactTraceRequest: %v, want ErrNotRedactable", err)
	}
}

func TestReceived(t *testing.T) {
	spans := make([]Span, 3)
	req := []byte{1}
	texts := &Texts{}
	ctx := WithReceived(t.Context(), req, texts, spans)
	if got, gotTexts, ok := Received(ctx, spans); !ok || &got[0] != &req[0] || gotTexts != texts {
		t.Error("Received lost the request")
	}
	if _, _, ok := Received(ctx, spans[1:]); ok {
		t.Error("Received took a part of the spans for all of them")
	}
	if _, _, ok := Received(ctx, make([]Span, 3)); ok {
		t.Error("Received took other spans for those decoded")
	}
	if _, _, ok := Received(t.Context(), spans); ok {
		t.Error("Received found a request in a bare context")
	}
}

func BenchmarkRedactTraceRequest(b *testing.B) {
	req := readFixture(b, "traces.pb")
	m := &cleanMasker{}
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, changed, err := RedactTraceRequest(req, m); err != nil || changed {
			b.Fatal(changed, err)
		}
	}
}

// cleanMasker masks nothing.
type cleanMasker struct{}

func (cleanMasker) Attribute(_, v string) string { return v }
func (cleanMasker) Text(v string) string         { return v }

// keyMasker masks the values of one attribute key, and counts what it is
// asked.
type keyMasker struct {
	key   string
	asked int
}

func (m *keyMasker) Attribute(key, v string) string {
	m.asked++
	if key == m.key {
		return "MASK"
	}
	return v
}

func (m *keyMasker) Text(v string) string {
	m.asked++
	return v
}

// TestTextsMasksSameValueOtherKey: a value a span repeats from the span
// before under another key of the same attribute (an older name) is
// asked about again, under that key, as a Masker's answer depends on it;
// under the same key, it is asked about once. (pdata writes a message's
// fields last first: the masker is asked about the spans' attribute,
// their name, then the service name.)
func TestTextsMasksSameValueOtherKey(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keys      []string
		wantMasks bool
		wantAsked int
	}{
		{"the same key", []string{"net.peer.ip", "net.peer.ip", "net.peer.ip"}, false, 3},
		{"another key of the attribute", []string{"net.peer.ip", "net.sock.peer.addr"}, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "shop")
			ss := rs.ScopeSpans().AppendEmpty()
			for i, key := range tc.keys {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID([16]byte{1})
				sp.SetSpanID([8]byte{byte(i + 1)})
				sp.SetName("GET /")
				sp.Attributes().PutStr(key, "10.0.0.1")
			}
			_, texts, err := DecodeReceivedTraceRequest(nil, nil, marshalTraces(t, td), "test", func(int) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			m := &keyMasker{key: "net.sock.peer.addr"}
			if got := texts.Masks(m); got != tc.wantMasks || m.asked != tc.wantAsked {
				t.Errorf("Masks = %v after %d questions, want %v after %d", got, m.asked, tc.wantMasks, tc.wantAsked)
			}
		})
	}
}

// receivedTexts is where the texts are of spans sent as one request.
func receivedTexts(t *testing.T, spans []Span) *Texts {
	t.Helper()
	req, err := AppendTraceRequest(nil, spans)
	if err != nil {
		t.Fatal(err)
	}
	_, texts, err := DecodeReceivedTraceRequest(nil, nil, req, "test", func(int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

// TestTextsMasksRepeated: Masks asks once about a text the spans of a
// request repeat, and still finds a value masked under one key after it
// was left unchanged under another.
func TestTextsMasksRepeated(t *testing.T) {
	spans := func(n int, last map[string]string) []Span {
		out := make([]Span, n)
		for i := range out {
			out[i] = Span{Service: "shop", TraceID: [16]byte{1}, SpanID: [8]byte{byte(i + 1)}, Name: "GET /x",
				Attrs: Attrs{URLQuery: "id=1%27%20OR%201=1--", UserAgent: "curl/8.5.0", RequestHeaders: map[string]string{"if-none-match": "abc"}}}
		}
		if last != nil {
			out[n-1].Attrs.RequestHeaders = last
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		spans     []Span
		wantMasks bool
	}{
		{"repeated, clean", spans(50, nil), false},
		// if-none-match and authorization have the same length.
		{"a repeated value under the masked key", spans(50, map[string]string{"authorization": "abc"}), true},
		{"the masked key with a value of its own", spans(50, map[string]string{"authorization": "Bearer x"}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			texts := receivedTexts(t, tc.spans)
			m := &keyMasker{key: "http.request.header.authorization"}
			if got := texts.Masks(m); got != tc.wantMasks {
				t.Errorf("Masks = %v, want %v", got, tc.wantMasks)
			}
			// Each span has the same texts but its last: the masker is
			// asked about those of the first span (the service name, the
			// span name, the query, the user agent and the header) and
			// the last one.
			if max := 2 * 5; m.asked > max {
				t.Errorf("masker asked %d times about the texts of %d spans, want at most %d", m.asked, len(tc.spans), max)
			}
		})
	}
}

// TestTextsMasksRepeatedBesideUnique: texts every span repeats are asked
// about once, even two that fall in the same place of Masks's table (the
// span name "GET /items/{id}" and the user agent "curl/8.5.0" did, and
// were asked about on every span) and beside a path that differs on every
// span, which is asked about on each.
func TestTextsMasksRepeatedBesideUnique(t *testing.T) {
	spans := make([]Span, 1000)
	for i := range spans {
		spans[i] = Span{Service: "shop", TraceID: [16]byte{1}, SpanID: [8]byte{byte(i), byte(i >> 8), 1}, Name: "GET /items/{id}",
			Attrs: Attrs{HTTPRoute: "/items/{id}", URLPath: fmt.Sprintf("/items/%d", i), UserAgent: "curl/8.5.0", ClientAddress: "203.0.113.7"}}
	}
	texts := receivedTexts(t, spans)
	m := &keyMasker{key: "password"}
	if texts.Masks(m) {
		t.Fatal("Masks = true, want false")
	}
	// Once each text of the first span, once each later path, and a few
	// repeated texts again where a path took their place.
	if perSpan, max := len(texts.refs)/len(spans), len(texts.refs)/len(spans)+len(spans)+50; m.asked > max {
		t.Errorf("masker asked %d times about the %d texts of %d spans (%d a span, one of them new each span), want at most %d", m.asked, len(texts.refs), len(spans), perSpan, max)
	}
}

// TestTextsCoverEveryField puts a field of every number from 1 to 17 (and
// 100), of every wire type, into every message of a trace request the
// decoder and the redaction walk, one at a time (oneFieldRequests):
// wherever the decoder's texts say nothing in the request is masked,
// RedactTraceRequest must leave it as it is. The decoder and the redaction
// keep their field rules apart (the decoder follows what evident reads,
// the redaction what OTLP defines), and this holds them together where
// FuzzRedactTraceRequest found them apart one field at a time: an end
// time sent length-delimited was logged as received, and so, until this
// test, was an int_value sent length-delimited or a group in a value.
func TestTextsCoverEveryField(t *testing.T) {
	base := oneFieldRequest("", nil)
	if _, texts, err := DecodeReceivedTraceRequest(nil, nil, base, "test", func(int) error { return nil }); err != nil || texts == nil || texts.Masks(&secretMasker{}) {
		t.Fatalf("the base request: %v", err)
	}
	if _, changed, err := RedactTraceRequest(base, &secretMasker{}); err != nil || changed {
		t.Fatalf("the base request redacted: changed %v, %v", changed, err)
	}
	checked := 0
	for _, c := range oneFieldRequests() {
		_, texts, err := DecodeReceivedTraceRequest(nil, nil, c.req, "test", func(int) error { return nil })
		if err != nil || texts == nil || texts.Masks(&secretMasker{}) {
			continue
		}
		checked++
		if _, changed, err := RedactTraceRequest(c.req, &secretMasker{}); err != nil || changed {
			t.Errorf("%s: the texts mask nothing, RedactTraceRequest: changed %v, %v", c.name, changed, err)
		}
	}
	t.Logf("%d requests the texts vouch for", checked)
}

// oneFieldCase is a trace request with one field added to one message.
type oneFieldCase struct {
	name string
	req  []byte
}

// oneFieldRequests returns oneFieldRequest with each of oneFieldValues in
// each of its places.
func oneFieldRequests() []oneFieldCase {
	var cases []oneFieldCase
	for _, where := range oneFieldPlaces {
		for _, v := range oneFieldValues() {
			cases = append(cases, oneFieldCase{fmt.Sprintf("%s in the %s", v.name, where), oneFieldRequest(where, v.field)})
		}
	}
	return cases
}

// oneFieldValue is a field added to a message by the one-field-at-a-time
// tests (docs/fuzzing.md).
type oneFieldValue struct {
	name  string
	field []byte
}

// oneFieldValues are fields of every number from 1 to 17 (and 100), of
// every wire type, and for length-delimited ones a text, a secret, packed
// numbers and a message.
func oneFieldValues() []oneFieldValue {
	group := func(num protowire.Number) []byte {
		return protowire.AppendTag(protowire.AppendTag(nil, num, protowire.StartGroupType), num, protowire.EndGroupType)
	}
	kinds := []struct {
		name  string
		field func(protowire.Number) []byte
	}{
		{"varint", func(n protowire.Number) []byte { return varintField(n, 1) }},
		{"large varint", func(n protowire.Number) []byte { return varintField(n, 300) }},
		{"negative varint", func(n protowire.Number) []byte { return varintField(n, 1<<64-1) }},
		{"fixed64", func(n protowire.Number) []byte {
			return protowire.AppendFixed64(protowire.AppendTag(nil, n, protowire.Fixed64Type), 1)
		}},
		{"fixed32", func(n protowire.Number) []byte {
			return protowire.AppendFixed32(protowire.AppendTag(nil, n, protowire.Fixed32Type), 1)
		}},
		{"empty", func(n protowire.Number) []byte { return appendMsg(nil, n, nil) }},
		{"text", func(n protowire.Number) []byte { return appendMsg(nil, n, []byte("x")) }},
		{"secret", func(n protowire.Number) []byte { return appendMsg(nil, n, []byte("SECRET")) }},
		{"packed", func(n protowire.Number) []byte { return appendMsg(nil, n, []byte{1, 2}) }},
		{"message", func(n protowire.Number) []byte { return appendMsg(nil, n, appendMsg(nil, 1, []byte("x"))) }},
		{"group", group},
	}
	nums := []protowire.Number{100}
	for n := protowire.Number(1); n <= 17; n++ {
		nums = append(nums, n)
	}
	var out []oneFieldValue
	for _, num := range nums {
		for _, k := range kinds {
			out = append(out, oneFieldValue{fmt.Sprintf("field %d as %s", num, k.name), k.field(num)})
		}
	}
	return out
}

// oneFieldPlaces are the messages of oneFieldRequest a field can be added
// to. Events, links, the scope's attributes and values of arrays and
// lists are not among them: the trace decoder leaves them to the
// redaction, and a request that holds one is always walked.
var oneFieldPlaces = []string{"request", "resource_spans", "resource", "resource attribute", "resource value",
	"scope_spans", "scope", "span", "span attribute", "span value", "other value",
	"header value", "header array", "header element", "status"}

// oneFieldRequest is a trace request of one span, with extra added to the
// message named where (oneFieldPlaces), or to none.
func oneFieldRequest(where string, extra []byte) []byte {
	at := func(place string, fields ...[]byte) []byte {
		if place == where {
			fields = append(fields, extra)
		}
		return bytes.Join(fields, nil)
	}
	attr := func(place, key string, value []byte) []byte {
		return at(place+" attribute", appendMsg(nil, 1, []byte(key)), appendMsg(nil, 2, value))
	}
	str := func(place, s string) []byte {
		if place == "header" {
			return at("header element", appendMsg(nil, 1, []byte(s)))
		}
		return at(place+" value", appendMsg(nil, 1, []byte(s)))
	}
	span := at("span",
		appendMsg(nil, spanTraceID, bytes.Repeat([]byte{1}, 16)),
		appendMsg(nil, spanSpanID, []byte("12345678")),
		appendMsg(nil, spanName, []byte("GET /x")),
		varintField(spanKind, 2),
		appendMsg(nil, spanAttributes, attr("span", "http.route", str("span", "/x"))),
		// An attribute evident does not decode, and a header: an array of
		// strings.
		appendMsg(nil, spanAttributes, appendMsg(nil, 1, []byte("app.x")), appendMsg(nil, 2, str("other", "v"))),
		appendMsg(nil, spanAttributes, appendMsg(nil, 1, []byte("http.request.header.x-a")), appendMsg(nil, 2,
			at("header value", appendMsg(nil, 5, at("header array", appendMsg(nil, 1, str("header", "a"))))))),
		appendMsg(nil, spanStatus, at("status", varintField(statusCode, 2), appendMsg(nil, 2, []byte("failed")))),
	)
	scope := at("scope", appendMsg(nil, 1, []byte("lib")), appendMsg(nil, 2, []byte("1.0")))
	resource := at("resource", appendMsg(nil, 1, attr("resource", "service.name", str("resource", "shop"))))
	scopeSpans := at("scope_spans", appendMsg(nil, 1, scope), appendMsg(nil, ssSpans, span))
	rs := at("resource_spans", appendMsg(nil, rsResource, resource), appendMsg(nil, rsScopeSpans, scopeSpans))
	return at("request", appendMsg(nil, 1, rs))
}
