package telemetry

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// decodeAll decodes r fully, returning all spans and the error.
func decodeAll(t testing.TB, data []byte, source string) ([]Span, error) {
	t.Helper()
	var spans []Span
	err := DecodeTraces(bytes.NewReader(data), source, func(s []Span) error {
		spans = append(spans, s...)
		return nil
	})
	return spans, err
}

func TestDecodeTracesGolden(t *testing.T) {
	spans, err := decodeAll(t, readFixture(t, "traces.pb"), "traces.pb")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "traces.golden", spanText(spans))
}

// TestDecodeTracesFormats decodes the same traces from every form and
// compares them with the protobuf decoding.
func TestDecodeTracesFormats(t *testing.T) {
	want, err := decodeAll(t, readFixture(t, "traces.pb"), "traces.pb")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 9 {
		t.Fatalf("decoded %d spans from traces.pb, want 9", len(want))
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"OTLP JSON lines", readFixture(t, "traces.jsonl")},
		{"OTLP JSON lines, CRLF and blank lines", bytes.ReplaceAll(readFixture(t, "traces.jsonl"), []byte("\n"), []byte("\r\n\r\n"))},
		{"Tempo v1 batches", readFixture(t, "tempo-v1.json")},
		{"Tempo v2 trace, indented", readFixture(t, "tempo-v2.json")},
		{"Tempo v1 before OTLP 0.15 names", legacyOTLP(readFixture(t, "tempo-v1.json"))},
		{"OTLP JSON lines before 0.15 names", legacyOTLP(readFixture(t, "traces.jsonl"))},
		{"gzipped protobuf", gzipBytes(t, readFixture(t, "traces.pb"))},
		{"gzipped JSON lines", gzipBytes(t, readFixture(t, "traces.jsonl"))},
		{"Tempo v2 protobuf response", tempoV2Proto(readFixture(t, "traces.pb"))},
		{"file exporter, format proto", fileExporter(t, "proto", false)},
		{"file exporter, format proto, zstd per message", fileExporter(t, "proto", true)},
		{"file exporter, format json, zstd per message", fileExporter(t, "json", true)},
		{"file exporter, native zstd stream of JSON lines", zstdBytes(t, readFixture(t, "traces.jsonl"))},
		{"file exporter, native zstd stream of framed proto", zstdBytes(t, fileExporter(t, "proto", false))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAll(t, tt.data, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("spans differ from the protobuf decoding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeTracesJSON: the JSON forms decode as DecodeTraces decodes
// them, and every other form DecodeTraces recognises by content is
// refused before anything in it is decompressed (a JSON body holding zstd
// frames would otherwise inflate each up to MaxTraceSize).
func TestDecodeTracesJSON(t *testing.T) {
	want, err := decodeAll(t, readFixture(t, "traces.pb"), "traces.pb")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr bool
	}{
		{"OTLP JSON lines", readFixture(t, "traces.jsonl"), false},
		{"Tempo v1 batches", readFixture(t, "tempo-v1.json"), false},
		{"Tempo v2 trace, indented", readFixture(t, "tempo-v2.json"), false},
		{"protobuf", readFixture(t, "traces.pb"), true},
		{"gzipped JSON lines", gzipBytes(t, readFixture(t, "traces.jsonl")), true},
		{"zstd stream of JSON lines", zstdBytes(t, readFixture(t, "traces.jsonl")), true},
		{"file exporter, format json, zstd per message", fileExporter(t, "json", true), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Span
			err := DecodeTracesJSON(tt.data, "body", func(s []Span) error {
				got = append(got, s...)
				return nil
			})
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "decode traces body: malformed telemetry: not a JSON object") || len(got) > 0 {
					t.Fatalf("got %d spans, error %v; want none and a malformed input that is not a JSON object", len(got), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("spans differ from the protobuf decoding (-want +got):\n%s", diff)
			}
		})
	}
}

// fileExporter writes the fixture requests as the Collector's file
// exporter does with format proto, or with compression (file_writer.go
// exportMessageAsBuffer): each request preceded by its big-endian uint32
// length, compressed one by one under the older compression.
func fileExporter(t *testing.T, format string, compress bool) []byte {
	var out []byte
	for _, td := range fixtureTraces() {
		req := ptraceotlp.NewExportRequestFromTraces(td)
		var buf []byte
		var err error
		if format == "proto" {
			buf, err = req.MarshalProto()
		} else {
			buf, err = req.MarshalJSON()
		}
		if err != nil {
			t.Fatal(err)
		}
		if compress {
			buf = zstdBytes(t, buf)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(buf)))
		out = append(out, buf...)
	}
	return out
}

func zstdBytes(t *testing.T, data []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

// legacyOTLP renames scopeSpans and scope to the names OTLP JSON used
// before 0.15, which old Tempo versions and exporters wrote.
func legacyOTLP(data []byte) []byte {
	data = bytes.ReplaceAll(data, []byte(`"scopeSpans"`), []byte(`"instrumentationLibrarySpans"`))
	return bytes.ReplaceAll(data, []byte(`"scope"`), []byte(`"instrumentationLibrary"`))
}

// tempoV2Proto wraps the resource spans of an OTLP request as Tempo's
// TraceByIDResponse{trace=1{resourceSpans}, metrics=2, status=3}.
func tempoV2Proto(req []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, req)
	b = appendMsg(b, 2, varintField(2, 48213))
	return append(b, varintField(3, 0)...)
}

// TestDecodeTracesMatchesPdata checks the wire decoder against pdata's
// ptrace.ProtoUnmarshaler on the same bytes, converted as the JSON
// decoder converts what pdata decodes.
func TestDecodeTracesMatchesPdata(t *testing.T) {
	data := readFixture(t, "traces.pb")
	got, err := decodeAll(t, data, "traces.pb")
	if err != nil {
		t.Fatal(err)
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(data)
	if err != nil {
		t.Fatal(err)
	}
	var c jsonTraceConverter
	if diff := cmp.Diff(c.convert(td, &recordErrors{source: "pdata"}, ""), got); diff != "" {
		t.Errorf("wire decoder differs from pdata (-pdata +wire):\n%s", diff)
	}
}

// TestDecodeTracesMatchesPdataEveryField compares the wire decoder with
// pdata, as TestDecodeTracesMatchesPdata does, on every request of
// oneFieldRequests that is protobuf (protobuf-go decodes it) and that
// pdata decodes: a field of every number and wire type added to one
// message at a time. FuzzDecodeTraceRequestMatchesPdata does the same
// for any request.
func TestDecodeTracesMatchesPdataEveryField(t *testing.T) {
	checked := 0
	for _, tc := range oneFieldRequests() {
		if diff, ok := diffFromPdata(tc.req); ok {
			checked++
			if diff != "" {
				t.Errorf("%s: the wire decoder differs from pdata (-pdata +wire):\n%s", tc.name, diff)
			}
		}
	}
	t.Logf("%d requests pdata decodes", checked)
}

// diffFromPdata compares the spans the wire decoder makes of req with
// those of the pdata path (pdata's decoder, then the converter OTLP/JSON
// goes through); ok is false when pdata or protobuf-go refuses req.
func diffFromPdata(req []byte) (diff string, ok bool) {
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(req)
	if err != nil || proto.Unmarshal(req, &coltracepb.ExportTraceServiceRequest{}) != nil {
		return "", false
	}
	var got []Span
	_ = DecodeTraceRequest(req, "test", func(s []Span) error {
		got = append(got, s...)
		return nil
	})
	var c jsonTraceConverter
	return cmp.Diff(c.convert(td, &recordErrors{source: "pdata"}, ""), got, cmpopts.EquateEmpty()), true
}

// TestDecodeTracesSemconv spot-checks the mapping of current and
// deprecated attribute names (the golden file holds the rest).
func TestDecodeTracesSemconv(t *testing.T) {
	spans, err := decodeAll(t, readFixture(t, "traces.pb"), "traces.pb")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Span{}
	for _, s := range spans {
		byName[s.Service+" "+s.Name] = s
	}
	tests := []struct {
		span string
		want func(s Span) bool
		desc string
	}{
		{"checkout GET /cart/{id}", func(s Span) bool {
			return s.Kind == SpanKindServer && s.Attrs.HTTPRoute == "/cart/{id}" && s.Attrs.StatusCode == 200 && !s.Error &&
				s.Attrs.RequestHeaders["x-forwarded-for"] == "203.0.113.9, 10.0.0.1" && s.Attrs.RequestHeaders["content-type"] == "application/json" &&
				s.Namespace == "shop" && s.End.Sub(s.Start) == 1234567*time.Nanosecond
		}, "server span with route, status and captured headers"},
		{"checkout SELECT shop.orders", func(s Span) bool {
			return s.Attrs.DBSystem == "postgresql" && s.Attrs.DBCollection == "orders" && s.Attrs.ServerPort == 5432 && s.ParentSpanID != [8]byte{}
		}, "current db.system.name wins over deprecated db.system"},
		{"checkout POST /pay", func(s Span) bool {
			return s.Error && s.Attrs.HTTPMethod == "POST" && s.Attrs.URLPath == "/pay" && s.Attrs.URLQuery == "retry=1" &&
				s.Attrs.ServerAddress == "checkout.shop" && s.Attrs.ServerPort == 80 && s.Attrs.ClientAddress == "lb.internal" && s.Attrs.UserAgent == "okhttp/4.12"
		}, "old HTTP server names; 503 on a server span is an error"},
		{"checkout GET", func(s Span) bool {
			return s.Error && s.Attrs.URLFull == "https://payments.internal:443/v1/charge" && s.Attrs.ServerAddress == "payments.internal" &&
				s.Attrs.ServerPort == 443 && s.Attrs.PeerService == "payments" && s.Attrs.StatusCode == 502
		}, "old HTTP client names; status ERROR; status code given as a string"},
		{"payments /payments.v1.Charges/Charge", func(s Span) bool {
			return s.Attrs.RPCSystem == "grpc" && s.Attrs.RPCService == "payments.v1.Charges" && s.Attrs.RPCMethod == "Charge" &&
				s.Attrs.ClientAddress == "10.0.0.9" && s.Namespace == ""
		}, "RPC server with network.peer.address as client"},
		{"payments GET", func(s Span) bool {
			return s.Attrs.DBSystem == "redis" && s.Attrs.DBQueryText == "GET charge:42" && s.Attrs.DBOperation == "GET" && s.Attrs.DBNamespace == "0" &&
				s.Attrs.ServerAddress == "cache.internal" && s.Attrs.ServerPort == 6379
		}, "old db names"},
		{"payments upload receipt", func(s Span) bool {
			return s.Attrs.S3Bucket == "receipts" && s.Attrs.CodeFunction == "github.com/acme/payments/receipt.Upload"
		}, "code.namespace + code.function"},
		{"notifier charges process", func(s Span) bool {
			return s.Kind == SpanKindConsumer && s.Attrs.MessagingDestination == "charges" && s.Attrs.CodeFunction == "main.handleCharge" && s.Attrs.RPCSystem == "connectrpc"
		}, "old messaging.destination; code.function.name wins"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s, ok := byName[tt.span]
			if !ok {
				t.Fatalf("no span %q", tt.span)
			}
			if !tt.want(s) {
				t.Errorf("span %q: %s", tt.span, spanText([]Span{s}))
			}
		})
	}
}

// TestDecodeTracesBadLine: line 3 of 5 is cut short; the other four are
// decoded and line 3 is reported.
func TestDecodeTracesBadLine(t *testing.T) {
	spans, err := decodeAll(t, readFixture(t, "traces-bad-line3.jsonl"), "bad.jsonl")
	var re *RecordError
	if !errors.As(err, &re) || re.Record != "line 3" || re.Source != "bad.jsonl" || !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want a *RecordError for line 3 of bad.jsonl", err)
	}
	if !strings.HasPrefix(err.Error(), "bad.jsonl: line 3: malformed telemetry: OTLP JSON:") {
		t.Errorf("error text %q", err)
	}
	services := map[string]int{}
	for _, s := range spans {
		services[s.Service]++
	}
	// Line 3 held the first payments request (two spans).
	if diff := cmp.Diff(map[string]int{"checkout": 4, "payments": 2, "notifier": 1}, services); diff != "" {
		t.Errorf("spans per service (-want +got):\n%s", diff)
	}
}

// TestDecodeTracesJSONSyntax checks that a document that is not JSON is
// said to be so where encoding/json finds it, by line and column, and
// one that is JSON but not OTLP's shape keeps pdata's account.
func TestDecodeTracesJSONSyntax(t *testing.T) {
	for _, tt := range []struct {
		name, input, want string
	}{
		{"trailing comma", `{"resourceSpans":[{"scopeSpans":[],}]}`,
			"doc.json: document: malformed telemetry: OTLP JSON: column 36: invalid character '}' looking for beginning of object key string"},
		{"pretty, trailing comma", "{\n  \"resourceSpans\": [\n    {\"scopeSpans\": [],}\n  ]\n}\n",
			"doc.json: document: malformed telemetry: OTLP JSON: line 3, column 23: invalid character '}' looking for beginning of object key string"},
		{"cut short", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"`,
			"doc.json: document: malformed telemetry: OTLP JSON: column 54: the document ends there, inside a value (cut short?)"},
		{"Tempo, missing colon", `{"batches" []}`,
			"doc.json: document: malformed telemetry: Tempo JSON: column 12: invalid character '[' after object key"},
		{"JSON, not OTLP's shape", `{"resourceSpans":{"a":1}}`,
			"doc.json: document: malformed telemetry: OTLP JSON: ReadArray: expect [ or , or ] or n, but found {"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeAll(t, []byte(tt.input), "doc.json")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestDecodeTracesBadFirstLine: a damaged first line must not turn JSON
// lines into one bad document.
func TestDecodeTracesBadFirstLine(t *testing.T) {
	lines := bytes.Split(readFixture(t, "traces.jsonl"), []byte("\n"))
	lines[0] = lines[0][:len(lines[0])/3]
	spans, err := decodeAll(t, bytes.Join(lines, []byte("\n")), "bad-first.jsonl")
	var re *RecordError
	if !errors.As(err, &re) || re.Record != "line 1" {
		t.Errorf("error %v, want a *RecordError for line 1", err)
	}
	if len(spans) != 7 {
		t.Errorf("decoded %d spans, want the 7 of lines 2-5", len(spans))
	}
}

func TestDecodeTracesErrors(t *testing.T) {
	pb := readFixture(t, "traces.pb")
	framed := fileExporter(t, "proto", false)
	span := func(name string) []byte {
		return appendMsg(nil, ssSpans, appendMsg(nil, spanTraceID, bytes.Repeat([]byte{1}, 16)), appendMsg(nil, spanSpanID, []byte("12345678")),
			appendMsg(nil, spanName, []byte(name)))
	}
	cut := appendMsg(nil, 1, appendMsg(nil, rsScopeSpans, span("one"), span("two"), span("three")))
	badSpan := appendMsg(nil, 1, // resource_spans
		appendMsg(nil, rsScopeSpans,
			appendMsg(nil, ssSpans, appendMsg(nil, spanTraceID, []byte("short")), appendMsg(nil, spanSpanID, []byte("12345678"))),
			appendMsg(nil, ssSpans,
				appendMsg(nil, spanTraceID, bytes.Repeat([]byte{1}, 16)), appendMsg(nil, spanSpanID, []byte("12345678")),
				appendMsg(nil, spanName, []byte("kept"))),
		))
	tests := []struct {
		name      string
		data      []byte
		wantErr   string
		wantSpans int
	}{
		{"truncated protobuf keeps the resources before the cut", pb[:len(pb)-40], "truncated protobuf keeps the resources before the cut: resource_spans[4]: truncated: unexpected EOF", 9},
		{"truncated protobuf keeps the spans before the cut", cut[:len(cut)-3], "resource_spans[0]: scope_spans[0]: span 2: truncated", 2},
		{"span with a short trace id", badSpan, "span with a short trace id: resource_spans[0]: scope_spans[0]: span 0: trace_id has 5 bytes, want 16", 1},
		{"schema_url longer than its resource_spans", appendMsg(nil, 1, append([]byte{0x1a, 0x7f}, cut...)),
			"resource_spans[0]: at byte 0: field 3: unexpected EOF", 0},
		{"scope longer than its scope_spans", appendMsg(nil, 1, appendMsg(nil, rsScopeSpans, append([]byte{0x0a, 0x7f}, span("one")...))),
			"resource_spans[0]: scope_spans[0]: at byte 0: field 1: unexpected EOF", 0},
		{"not traces JSON", []byte(`{"resourceLogs":[]}`), `not traces JSON: document: unrecognised telemetry format: JSON object starting with "resourceLogs"`, 0},
		{"not traces JSON, then a line of traces", append([]byte("{\"resourceLogs\":[]}\n"), bytes.SplitN(readFixture(t, "traces.jsonl"), []byte("\n"), 2)[0]...),
			`not traces JSON, then a line of traces: line 1: unrecognised telemetry format`, 2},
		{"truncated gzip", gzipBytes(t, pb)[:100], "truncated gzip: compressed stream: malformed telemetry: the input ends inside its gzip stream, after 0 bytes decompressed: it is cut short", 0},
		{"pretty-printed documents, then not JSON", append(prettyDocs(t, 2), "\n}garbage"...), "pretty-printed documents, then not JSON: document 3: malformed telemetry: after byte", 4},
		{"JSON with bad ids", []byte(`{"batches":[{"scopeSpans":[{"spans":[{"traceId":"!!","spanId":"AAAAAAAAAAA="}]}]}]}`), `traceId "!!" is neither hex nor base64 of 16 bytes`, 0},
		{"unterminated JSON document", []byte("{\n\"resourceSpans\": [\n"), "unterminated JSON document: document: malformed telemetry", 0},
		{"file exporter stream cut in the last message", framed[:len(framed)-30], "file exporter stream cut in the last message: message 4: ", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, err := decodeAll(t, tt.data, tt.name)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want it to contain %q", err, tt.wantErr)
			}
			if len(spans) != tt.wantSpans {
				t.Errorf("decoded %d spans, want %d", len(spans), tt.wantSpans)
			}
		})
	}
}

// TestTraceRequestDamageNamed: damage between resources is named by the
// last resource read, or as the request's when none was.
func TestTraceRequestDamageNamed(t *testing.T) {
	resource := appendMsg(nil, 1, appendMsg(nil, rsScopeSpans, appendMsg(nil, ssSpans,
		appendMsg(nil, spanTraceID, bytes.Repeat([]byte{1}, 16)), appendMsg(nil, spanSpanID, []byte("12345678")))))
	reserved := []byte{0x67, 0x61} // field 12, wire type 7 (reserved)
	for _, tt := range []struct {
		name, want string
		msg        []byte
		spans      int
	}{
		{"at the first byte", "decode: request: at byte 0: field 12: ", reserved, 0},
		{"after a resource", "decode: after resource_spans[0]: at byte " + strconv.Itoa(len(resource)), append(resource[:len(resource):len(resource)], reserved...), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spans := 0
			err := DecodeTraceRequest(tt.msg, "decode", func(s []Span) error {
				spans += len(s)
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) || spans != tt.spans {
				t.Errorf("DecodeTraceRequest = %d spans, %v; want %d and an error containing %q", spans, err, tt.spans, tt.want)
			}
		})
	}
}

func TestDecodeTracesEmitError(t *testing.T) {
	stop := errors.New("stop")
	for _, name := range []string{"traces.pb", "traces.jsonl", "tempo-v2.json"} {
		t.Run(name, func(t *testing.T) {
			calls := 0
			err := DecodeTraces(bytes.NewReader(readFixture(t, name)), name, func([]Span) error {
				calls++
				return stop
			})
			if !errors.Is(err, stop) || calls != 1 {
				t.Errorf("error %v after %d calls, want stop after 1", err, calls)
			}
		})
	}
}

// BenchmarkDecodeTracesProto measures spans/s through DecodeTraces with a
// consumer that only counts; the target is 500k spans/s per core.
func BenchmarkDecodeTracesProto(b *testing.B) {
	data := benchTraces(b, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	spans := 0
	cpu := processCPU(b)
	for b.Loop() {
		err := DecodeTraces(bytes.NewReader(data), "bench", func(s []Span) error {
			spans += len(s)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	cpuRate(b, spans, "spans", cpu)
}

// BenchmarkPdataUnmarshalTraces is the reference: pdata decoding the same
// request, without any conversion.
func BenchmarkPdataUnmarshalTraces(b *testing.B) {
	data := benchTraces(b, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	spans := 0
	var u ptrace.ProtoUnmarshaler
	cpu := processCPU(b)
	for b.Loop() {
		td, err := u.UnmarshalTraces(data)
		if err != nil {
			b.Fatal(err)
		}
		spans += td.SpanCount()
	}
	cpuRate(b, spans, "spans", cpu)
}

// benchTraces builds the request perf-reliability.md §9.2 measured: one
// resource with 5 attributes, n server spans with 10 string attributes.
func benchTraces(b testing.TB, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for k, v := range map[string]string{"service.name": "checkout", "service.namespace": "shop", "service.version": "1.2.3", "host.name": "node-1", "k8s.pod.name": "checkout-5d9f"} {
		rs.Resource().Attributes().PutStr(k, v)
	}
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(traceID(byte(i)))
		sp.SetSpanID(spanID(byte(i)))
		sp.SetParentSpanID(spanID(byte(i + 1)))
		sp.SetName("GET /api/v1/items/{id}")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(1_700_000_000_000_000_000)
		sp.SetEndTimestamp(1_700_000_000_001_000_000)
		a := sp.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("http.route", "/api/v1/items/{id}")
		a.PutStr("url.path", "/api/v1/items/"+strings.Repeat("7", i%9+1))
		a.PutStr("url.scheme", "https")
		a.PutStr("server.address", "checkout.shop.svc")
		a.PutStr("client.address", "10.1.2.3")
		a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
		a.PutStr("network.protocol.version", "1.1")
		a.PutStr("http.response.status_code", "200")
		a.PutStr("thread.name", "worker-3")
	}
	var m ptrace.ProtoMarshaler
	data, err := m.MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// TestDecodeTracesUnsetTimes: a span without timestamps keeps zero times
// in both decoders, not 1970.
func TestDecodeTracesUnsetTimes(t *testing.T) {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(traceID(1))
	sp.SetSpanID(spanID(2))
	pb, js := protoAndJSON(t, td)
	for name, data := range map[string][]byte{"protobuf": pb, "JSON": js} {
		t.Run(name, func(t *testing.T) {
			spans, err := decodeAll(t, data, name)
			if err != nil || len(spans) != 1 {
				t.Fatalf("%d spans, error %v", len(spans), err)
			}
			if !spans[0].Start.IsZero() || !spans[0].End.IsZero() {
				t.Errorf("start %v end %v, want zero times", spans[0].Start, spans[0].End)
			}
		})
	}
}

// TestDecodeTracesImage checks that both trace decoders (protobuf on the
// wire, OTLP JSON through pdata) carry the container image of a resource
// to its spans: an array of tags, a single tag, and no image at all.
func TestDecodeTracesImage(t *testing.T) {
	tests := []struct {
		name  string
		attrs func(pcommon.Map)
		want  *Image
	}{
		{"digest and tags", func(m pcommon.Map) {
			m.PutStr("container.image.name", "registry.example.com/shop/gateway")
			m.PutStr("oci.manifest.digest", "sha256:0123")
			tags := m.PutEmptySlice("container.image.tags")
			tags.AppendEmpty().SetStr("v1.2.0")
			tags.AppendEmpty().SetStr("latest")
			m.PutEmptySlice("container.image.repo_digests").AppendEmpty().SetStr("registry.example.com/shop/gateway@sha256:4567")
		}, &Image{Name: "registry.example.com/shop/gateway", Digest: "sha256:0123", RepoDigests: []string{"registry.example.com/shop/gateway@sha256:4567"}, Tags: []string{"v1.2.0", "latest"}}},
		{"repo digests without a name", func(m pcommon.Map) {
			m.PutEmptySlice("container.image.repo_digests").AppendEmpty().SetStr("gateway@sha256:4567")
		}, &Image{RepoDigests: []string{"gateway@sha256:4567"}}},
		{"one tag as a string", func(m pcommon.Map) {
			m.PutStr("container.image.name", "gateway")
			m.PutStr("container.image.tags", "v1")
		}, &Image{Name: "gateway", Tags: []string{"v1"}}},
		{"digest without a name", func(m pcommon.Map) { m.PutStr("oci.manifest.digest", "sha256:0123") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "gateway")
			tt.attrs(rs.Resource().Attributes())
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetTraceID(traceID(1))
			sp.SetSpanID(spanID(1))
			sp.SetName("GET /")
			pb, js := protoAndJSON(t, td)
			for name, data := range map[string][]byte{"traces.pb": pb, "traces.json": js} {
				spans, err := decodeAll(t, data, name)
				if err != nil {
					t.Fatal(err)
				}
				if len(spans) != 1 {
					t.Fatalf("%s: %d spans, want 1", name, len(spans))
				}
				if diff := cmp.Diff(tt.want, spans[0].Image); diff != "" {
					t.Errorf("%s: image (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// TestDecodeRepeatedIDs: an id given more than once is its last, as
// protobuf reads a field that is not repeated (and pdata decodes it); an
// empty id is no id (found by FuzzGRPCTraces: an empty span_id before a
// valid one dropped the span), and neither is an all-zero one, which
// pdata reads as empty.
func TestDecodeRepeatedIDs(t *testing.T) {
	trace := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), bytes.Repeat([]byte{1}, 16))
	spanID := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), bytes.Repeat([]byte{2}, 8))
	noSpanID := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), nil)
	noTrace := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), nil)
	zeroTrace := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), make([]byte, 16))
	zeroSpanID := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), make([]byte, 8))
	request := func(span []byte) []byte {
		msg := func(num protowire.Number, b []byte) []byte {
			return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
		}
		return msg(1, msg(2, msg(2, span)))
	}
	tests := []struct {
		name    string
		span    [][]byte
		spans   int
		wantErr string
	}{
		{"empty span_id, then one", [][]byte{trace, noSpanID, spanID}, 1, ""},
		{"span_id, then an empty one", [][]byte{trace, spanID, noSpanID}, 0, "span_id missing or empty"},
		{"empty trace_id, then one", [][]byte{noTrace, trace, spanID}, 1, ""},
		{"trace_id, then an empty one", [][]byte{trace, noTrace, spanID}, 0, "trace_id missing or empty"},
		{"neither", [][]byte{noTrace, noSpanID}, 0, "trace_id and span_id missing or empty"},
		{"all-zero trace_id", [][]byte{zeroTrace, spanID}, 0, "trace_id missing or empty"},
		{"all-zero span_id", [][]byte{trace, zeroSpanID}, 0, "span_id missing or empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Span
			err := DecodeTraceRequest(request(bytes.Join(tt.span, nil)), "test", func(s []Span) error {
				got = append(got, s...)
				return nil
			})
			if len(got) != tt.spans {
				t.Errorf("%d spans, want %d", len(got), tt.spans)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecodeSpansWithoutIDs: a span without both ids is dropped and
// reported, by name, in every form DecodeTraces reads, as the protobuf
// decoder drops it (JSON spans without ids were once taken, so that the
// OTLP/HTTP receiver acknowledged in JSON what it rejected in protobuf).
func TestDecodeSpansWithoutIDs(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	good := spans.AppendEmpty()
	good.SetTraceID(traceID(1))
	good.SetSpanID(spanID(1))
	good.SetName("GET /")
	noTrace := spans.AppendEmpty()
	noTrace.SetSpanID(spanID(2))
	noTrace.SetName("no trace_id")
	noSpan := spans.AppendEmpty()
	noSpan.SetTraceID(traceID(3))
	noSpan.SetName("no span_id")
	pb, js := protoAndJSON(t, td)
	v1, v2 := tempoJSON(t, js)
	goodOnly := ptrace.NewTraces()
	good.CopyTo(goodOnly.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty())
	_, goodJS := protoAndJSON(t, goodOnly)
	tests := []struct {
		name, data string
		record     string // what names the damaged spans, before resource_spans
	}{
		{"protobuf", string(pb), ""},
		{"OTLP JSON", string(js), ""},
		{"JSON lines", string(js) + "\n" + string(js) + "\n", "line 2: "},
		{"Tempo v1", string(v1), ""},
		{"JSON lines, the first line's", string(js) + "\n" + string(goodJS) + "\n", "line 1: "},
		{"Tempo v2, indented", string(v2), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAll(t, []byte(tt.data), "traces")
			var names []string
			for _, sp := range got {
				names = append(names, sp.Name)
			}
			want := []string{"GET /"}
			if strings.HasPrefix(tt.name, "JSON lines") {
				want = append(want, "GET /")
			}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v, want the dropped spans reported", err)
			}
			for _, msg := range []string{
				"traces: " + tt.record + "resource_spans[0]: scope_spans[0]: span 1: trace_id missing or empty",
				"traces: " + tt.record + "resource_spans[0]: scope_spans[0]: span 2: span_id missing or empty",
			} {
				if !strings.Contains(err.Error(), msg) {
					t.Errorf("error %q does not report %q", err, msg)
				}
			}
		})
	}
}

// protoAndJSON returns td in OTLP protobuf and OTLP JSON, as pdata
// writes them.
func protoAndJSON(t *testing.T, td ptrace.Traces) (pb, js []byte) {
	t.Helper()
	js, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return marshalTraces(t, td), js
}

// prettyDocs returns the first n lines of the JSON lines fixture, each
// pretty-printed, one after the other: what `jq . traces.jsonl` writes.
func prettyDocs(t *testing.T, n int) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, line := range bytes.SplitN(readFixture(t, "traces.jsonl"), []byte("\n"), n+1)[:n] {
		if err := json.Indent(&out, line, "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// TestDecodeTracesPrettyDocuments: several pretty-printed OTLP JSON
// documents are all read, as the same documents one a line are; pdata
// alone reads the first and ignores the rest.
func TestDecodeTracesPrettyDocuments(t *testing.T) {
	lines := bytes.Split(bytes.TrimSpace(readFixture(t, "traces.jsonl")), []byte("\n"))
	for n := 1; n <= len(lines); n++ {
		want, err := decodeAll(t, bytes.Join(lines[:n], []byte("\n")), "lines")
		if err != nil || len(want) == 0 {
			t.Fatalf("%d lines: %d spans, %v", n, len(want), err)
		}
		got, err := decodeAll(t, prettyDocs(t, n), "pretty.json")
		if err != nil {
			t.Fatalf("%d documents: %v", n, err)
		}
		if diff := cmp.Diff(spanText(want), spanText(got)); diff != "" {
			t.Errorf("%d documents: spans (-one a line +pretty-printed):\n%s", n, diff)
		}
	}
}

// TestUnknownService: the spans of a resource without service.name, or
// with an empty one, are UnknownService's, in protobuf and in JSON, as
// OpenTelemetry names such a service; a file given for a service gives
// them that service.
func TestUnknownService(t *testing.T) {
	td := ptrace.NewTraces()
	for _, svc := range []*string{nil, new(string), new("checkout")} {
		rs := td.ResourceSpans().AppendEmpty()
		if svc != nil {
			rs.Resource().Attributes().PutStr("service.name", *svc)
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(traceID(1))
		sp.SetSpanID(spanID(byte(td.ResourceSpans().Len())))
	}
	pb, js := protoAndJSON(t, td)
	for _, in := range []struct {
		name    string
		data    []byte
		service string
		want    []string
	}{
		{"protobuf", pb, "", []string{UnknownService, UnknownService, "checkout"}},
		{"JSON", js, "", []string{UnknownService, UnknownService, "checkout"}},
		{"protobuf given for a service", pb, "web", []string{"web", "web", "checkout"}},
		{"JSON given for a service", js, "web", []string{"web", "web", "checkout"}},
	} {
		t.Run(in.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "traces")
			if err := os.WriteFile(path, in.data, 0o600); err != nil {
				t.Fatal(err)
			}
			var r recorder
			if err := Load(context.Background(), []File{{Service: in.service, Path: path, Kind: KindTraces}}, &r); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range r.spans {
				got = append(got, s.Service)
			}
			if diff := cmp.Diff(in.want, got); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
		})
	}
}
