package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/evidentsec/evident/internal/ingest/ingesttest"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a consumer that keeps what it is given, or refuses it with
// err. Profiles must come with the request they were decoded from, which
// must replay from the log into the same batches
// (ingesttest.ReplayProfiles); startReceiver reports what did not.
type recorder[T any] struct {
	mu       sync.Mutex
	got      []T
	err      error
	unreplay []error
}

func (r *recorder[T]) Consume(ctx context.Context, data T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, data)
	if ps, ok := any(data).([]*telemetry.ProfileBatch); ok {
		if err := ingesttest.ReplayProfiles(ctx, ps); err != nil {
			r.unreplay = append(r.unreplay, err)
		}
	}
	return nil
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.got...)
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.GRPCEndpoint = "127.0.0.1:0"
	cfg.HTTPEndpoint = "127.0.0.1:0"
	return cfg
}

// startReceiver starts a receiver on loopback ports and shuts it down at
// the end of the test.
func startReceiver(t *testing.T, cfg Config, traces pipeline.Consumer[[]telemetry.Span], profiles pipeline.Consumer[[]*telemetry.ProfileBatch]) (*Receiver, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	r, err := New(cfg, traces, profiles, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if rec, ok := profiles.(*recorder[[]*telemetry.ProfileBatch]); ok {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, err := range rec.unreplay {
				t.Errorf("handed on: %v", err)
			}
		}
	})
	return r, reg
}

// sendSDKSpan exports one SERVER span of service checkout through tp.
func sendSDKSpan(t *testing.T, exp sdktrace.SpanExporter) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("service.namespace", "shop"))),
	)
	_, span := tp.Tracer("test").Start(t.Context(), "POST /pay",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", "POST"),
			attribute.String("http.route", "/pay"),
			attribute.String("url.path", "/pay"),
			attribute.String("url.query", "id=${jndi:ldap://x}"),
			attribute.Int("http.response.status_code", 200),
		))
	span.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func checkSDKSpan(t *testing.T, got [][]telemetry.Span) {
	t.Helper()
	if len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("got %d batches (%v), want one with one span", len(got), got)
	}
	s := got[0][0]
	type view struct {
		Service, Namespace, Name, Method, Route, Path, Query string
		Kind                                                 telemetry.SpanKind
		Status                                               int
	}
	gotView := view{s.Service, s.Namespace, s.Name, s.Attrs.HTTPMethod, s.Attrs.HTTPRoute, s.Attrs.URLPath, s.Attrs.URLQuery, s.Kind, s.Attrs.StatusCode}
	want := view{"checkout", "shop", "POST /pay", "POST", "/pay", "/pay", "id=${jndi:ldap://x}", telemetry.SpanKindServer, 200}
	if diff := cmp.Diff(gotView, want); diff != "" {
		t.Errorf("span (-got +want):\n%s", diff)
	}
	if s.TraceID == ([16]byte{}) || s.SpanID == ([8]byte{}) {
		t.Errorf("span ids are empty: %x %x", s.TraceID, s.SpanID)
	}
}

func TestOTelSDKExporters(t *testing.T) {
	tests := []struct {
		name      string
		transport string
		exporter  func(t *testing.T, r *Receiver) sdktrace.SpanExporter
	}{
		{"grpc", "grpc", func(t *testing.T, r *Receiver) sdktrace.SpanExporter {
			exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(r.GRPCAddr()), otlptracegrpc.WithInsecure())
			if err != nil {
				t.Fatal(err)
			}
			return exp
		}},
		{"grpc gzip", "grpc", func(t *testing.T, r *Receiver) sdktrace.SpanExporter {
			exp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(r.GRPCAddr()), otlptracegrpc.WithInsecure(), otlptracegrpc.WithCompressor("gzip"))
			if err != nil {
				t.Fatal(err)
			}
			return exp
		}},
		{"http", "http", func(t *testing.T, r *Receiver) sdktrace.SpanExporter {
			exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(r.HTTPAddr()), otlptracehttp.WithInsecure())
			if err != nil {
				t.Fatal(err)
			}
			return exp
		}},
		{"http gzip", "http", func(t *testing.T, r *Receiver) sdktrace.SpanExporter {
			exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(r.HTTPAddr()), otlptracehttp.WithInsecure(), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
			if err != nil {
				t.Fatal(err)
			}
			return exp
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			traces := &recorder[[]telemetry.Span]{}
			r, reg := startReceiver(t, testConfig(), traces, &recorder[[]*telemetry.ProfileBatch]{})
			sendSDKSpan(t, tt.exporter(t, r))
			checkSDKSpan(t, traces.all())
			// Both transports' series exist from the start, the other's
			// at 0.
			other := map[string]string{"grpc": "http", "http": "grpc"}[tt.transport]
			want := fmt.Sprintf(`
# HELP evident_receiver_accepted_spans_total Spans accepted by a receiver and handed to the pipeline.
# TYPE evident_receiver_accepted_spans_total counter
evident_receiver_accepted_spans_total{receiver="otlp",transport=%q} 1
evident_receiver_accepted_spans_total{receiver="otlp",transport=%q} 0
`, tt.transport, other)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "evident_receiver_accepted_spans_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

// tracesRequest builds a request with one resource of service checkout
// and n SERVER spans; with bad, one more span has no trace id, which the
// decoder drops.
func tracesRequest(n int, bad bool) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := range n {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(i)})
		s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(i)})
		s.SetName("GET /items/{id}")
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		a := s.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("http.route", "/items/{id}")
		a.PutStr("url.path", fmt.Sprintf("/items/%d", i))
		a.PutStr("user_agent.original", "curl/8.5.0")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("client.address", "203.0.113.7")
	}
	if bad {
		s := ss.Spans().AppendEmpty()
		s.SetName("no ids")
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func mustProto(t testing.TB, m interface{ MarshalProto() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t testing.TB, m interface{ MarshalJSON() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// profilesRequest builds a request with one CPU profile of service
// checkout, and with bad a second profile whose sample type names a
// string out of range, which the decoder drops.
func profilesRequest(bad bool) pprofileotlp.ExportRequest {
	pd := pprofile.NewProfiles()
	d := pd.Dictionary()
	d.StringTable().Append("", "cpu", "nanoseconds", "main.handler", "main.go")
	d.MappingTable().AppendEmpty()
	d.LinkTable().AppendEmpty()
	d.AttributeTable().AppendEmpty()
	d.FunctionTable().AppendEmpty()
	fn := d.FunctionTable().AppendEmpty()
	fn.SetNameStrindex(3)
	fn.SetFilenameStrindex(4)
	d.LocationTable().AppendEmpty()
	loc := d.LocationTable().AppendEmpty()
	loc.Lines().AppendEmpty().SetFunctionIndex(1)
	d.StackTable().AppendEmpty()
	d.StackTable().AppendEmpty().LocationIndices().Append(1)
	rp := pd.ResourceProfiles().AppendEmpty()
	rp.Resource().Attributes().PutStr("service.name", "checkout")
	sp := rp.ScopeProfiles().AppendEmpty()
	p := sp.Profiles().AppendEmpty()
	p.SampleType().SetTypeStrindex(1)
	p.SampleType().SetUnitStrindex(2)
	p.PeriodType().SetTypeStrindex(1)
	p.PeriodType().SetUnitStrindex(2)
	p.SetPeriod(10_000_000)
	s := p.Samples().AppendEmpty()
	s.SetStackIndex(1)
	s.Values().Append(30_000_000)
	if bad {
		q := sp.Profiles().AppendEmpty()
		q.SampleType().SetTypeStrindex(99)
	}
	return pprofileotlp.NewExportRequestFromProfiles(pd)
}

type httpCase struct {
	name        string
	path        string
	method      string
	contentType string
	encoding    string
	body        []byte
	consumerErr error
	limit       int64

	wantStatus     int
	wantRetryAfter string
	wantRejected   int64
	wantMessage    string // substring of the partial success or Status message
	wantSpans      int
	wantProfiles   int
}

func TestHTTP(t *testing.T) {
	good := mustProto(t, tracesRequest(3, false))
	goodJSON := mustJSON(t, tracesRequest(3, false))
	partial := mustProto(t, tracesRequest(2, true))
	profiles := mustProto(t, profilesRequest(false))
	badProfiles := mustProto(t, profilesRequest(true))
	// 2 MiB of empty resource_spans: a few KiB gzipped, over a 1 MiB
	// limit once decompressed.
	bomb := gzipped(t, bytes.Repeat([]byte{0x0a, 0x00}, 1<<20))
	zstdFrame := zstdZeros(t, 64<<20)
	const pb, js = "application/x-protobuf", "application/json"
	tests := []httpCase{
		{name: "protobuf", path: TracesPath, contentType: pb, body: good, wantStatus: 200, wantSpans: 3},
		{name: "json", path: TracesPath, contentType: js, body: goodJSON, wantStatus: 200, wantSpans: 3},
		{name: "json with charset", path: TracesPath, contentType: js + "; charset=utf-8", body: goodJSON, wantStatus: 200, wantSpans: 3},
		{name: "gzip protobuf", path: TracesPath, contentType: pb, encoding: "gzip", body: gzipped(t, good), wantStatus: 200, wantSpans: 3},
		{name: "gzip json", path: TracesPath, contentType: js, encoding: "gzip", body: gzipped(t, goodJSON), wantStatus: 200, wantSpans: 3},
		{name: "gzip without content-encoding", path: TracesPath, contentType: pb, body: gzipped(t, good), wantStatus: 200, wantSpans: 3},
		{name: "empty request", path: TracesPath, contentType: pb, body: nil, wantStatus: 200},
		{name: "partial success", path: TracesPath, contentType: pb, body: partial, wantStatus: 200, wantSpans: 2, wantRejected: 1, wantMessage: "span 2: trace_id and span_id missing or empty"},
		{name: "json partial success", path: TracesPath, contentType: js, body: mustJSON(t, tracesRequest(2, true)), wantStatus: 200, wantSpans: 2, wantRejected: 1, wantMessage: "span 2: trace_id and span_id missing or empty"},
		{name: "no span with ids", path: TracesPath, contentType: pb, body: mustProto(t, tracesRequest(0, true)), wantStatus: 400, wantMessage: "span 0: trace_id and span_id missing or empty"},
		{name: "json, no span with ids", path: TracesPath, contentType: js, body: mustJSON(t, tracesRequest(0, true)), wantStatus: 400, wantMessage: "span 0: trace_id and span_id missing or empty"},
		{name: "malformed protobuf", path: TracesPath, contentType: pb, body: []byte("\x0a\xff\xff\xff\xff\x0fnot protobuf"), wantStatus: 400, wantMessage: "resource_spans"},
		{name: "malformed json", path: TracesPath, contentType: js, body: []byte(`{"resourceSpans": [`), wantStatus: 400, wantMessage: "column 19: the document ends there, inside a value"},
		// The Collector file exporter's framing, a zstd frame of 64 MiB
		// of zeros: DecodeTraces would inflate it, beyond the limit.
		{name: "json body of zstd frames", path: TracesPath, contentType: js, body: append(binary.BigEndian.AppendUint32(nil, uint32(len(zstdFrame))), zstdFrame...), wantStatus: 400, wantMessage: "not a JSON object"},
		{name: "json syntax error", path: TracesPath, contentType: js, body: []byte(`{"resourceSpans": [],}`), wantStatus: 400, wantMessage: "column 22: invalid character '}' looking for beginning of object key string"},
		{name: "malformed gzip", path: TracesPath, contentType: pb, encoding: "gzip", body: []byte("\x1f\x8bnot gzip"), wantStatus: 400, wantMessage: "gzip"},
		{name: "over limit after decompression", path: TracesPath, contentType: pb, encoding: "gzip", body: bomb, limit: 1 << 20, wantStatus: 413, wantMessage: "after decompression"},
		{name: "over limit", path: TracesPath, contentType: pb, body: bytes.Repeat([]byte{0x0a, 0x00}, 1<<20), limit: 1 << 20, wantStatus: 413},
		{name: "unknown content type", path: TracesPath, contentType: "text/plain", body: good, wantStatus: 415},
		{name: "unknown content encoding", path: TracesPath, contentType: pb, encoding: "br", body: good, wantStatus: 415},
		{name: "GET", path: TracesPath, method: http.MethodGet, wantStatus: 405},
		{name: "consumer full", path: TracesPath, contentType: pb, body: good, consumerErr: &pipeline.FullError{RetryAfter: 1500 * time.Millisecond}, wantStatus: 429, wantRetryAfter: "2"},
		{name: "consumer full without delay", path: TracesPath, contentType: js, body: goodJSON, consumerErr: fmt.Errorf("engine: %w", pipeline.ErrFull), wantStatus: 429, wantRetryAfter: "1"},
		{name: "consumer permanent", path: TracesPath, contentType: pb, body: good, consumerErr: pipeline.Permanent(errors.New("bad batch")), wantStatus: 400, wantMessage: "bad batch"},
		{name: "consumer down", path: TracesPath, contentType: pb, body: good, consumerErr: errors.New("engine stopped"), wantStatus: 503},
		{name: "log unavailable", path: TracesPath, contentType: pb, body: good, consumerErr: &pipeline.UnavailableError{RetryAfter: 2 * time.Second, Err: errors.New("kafka down")}, wantStatus: 503, wantRetryAfter: "2"},
		{name: "profiles protobuf", path: ProfilesPath, contentType: pb, body: profiles, wantStatus: 200, wantProfiles: 1},
		{name: "profiles json", path: ProfilesPath, contentType: js, body: mustJSON(t, profilesRequest(false)), wantStatus: 200, wantProfiles: 1},
		{name: "profiles gzip", path: ProfilesPath, contentType: pb, encoding: "gzip", body: gzipped(t, profiles), wantStatus: 200, wantProfiles: 1},
		{name: "profiles partial success", path: ProfilesPath, contentType: pb, body: badProfiles, wantStatus: 200, wantProfiles: 1, wantRejected: 1, wantMessage: "sample_type"},
		{name: "profiles malformed", path: ProfilesPath, contentType: pb, body: []byte("\x0a\xff\xff"), wantStatus: 400},
		{name: "profiles json syntax error", path: ProfilesPath, contentType: js, body: []byte(`{"resourceProfiles": [,]}`), wantStatus: 400, wantMessage: "column 23: invalid character ',' looking for beginning of value"},
		{name: "profiles full", path: ProfilesPath, contentType: pb, body: profiles, consumerErr: &pipeline.FullError{RetryAfter: 3 * time.Second}, wantStatus: 429, wantRetryAfter: "3"},
		{name: "profiles unknown content type", path: ProfilesPath, contentType: "application/octet-stream", body: profiles, wantStatus: 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.limit > 0 {
				cfg.MaxRequestBytes = tt.limit
			}
			traces := &recorder[[]telemetry.Span]{err: tt.consumerErr}
			profs := &recorder[[]*telemetry.ProfileBatch]{err: tt.consumerErr}
			r, _ := startReceiver(t, cfg, traces, profs)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequestWithContext(t.Context(), method, "http://"+r.HTTPAddr()+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetryAfter)
			}
			checkHTTPBody(t, tt, resp.Header.Get("Content-Type"), body)
			if got := countSpans(traces.all()); got != tt.wantSpans {
				t.Errorf("consumer got %d spans, want %d", got, tt.wantSpans)
			}
			if got := countProfiles(profs.all()); got != tt.wantProfiles {
				t.Errorf("consumer got %d profiles, want %d", got, tt.wantProfiles)
			}
		})
	}
}

// checkHTTPBody decodes a 200 as an Export*ServiceResponse and anything
// else as a google.rpc.Status, in the encoding of the answer.
func checkHTTPBody(t *testing.T, tt httpCase, contentType string, body []byte) {
	t.Helper()
	isJSON := strings.HasPrefix(contentType, "application/json")
	if tt.wantStatus == 200 {
		if want := strings.Split(tt.contentType, ";")[0]; contentType != want {
			t.Errorf("Content-Type %q, want %q", contentType, want)
		}
		var rejected int64
		var msg string
		if tt.path == TracesPath {
			resp := ptraceotlp.NewExportResponse()
			err := unmarshal(resp, isJSON, body)
			if err != nil {
				t.Fatalf("decode response %q: %v", body, err)
			}
			rejected, msg = resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage()
		} else {
			resp := pprofileotlp.NewExportResponse()
			if err := unmarshal(resp, isJSON, body); err != nil {
				t.Fatalf("decode response %q: %v", body, err)
			}
			rejected, msg = resp.PartialSuccess().RejectedProfiles(), resp.PartialSuccess().ErrorMessage()
		}
		if rejected != tt.wantRejected {
			t.Errorf("rejected %d, want %d (message %q)", rejected, tt.wantRejected, msg)
		}
		if !strings.Contains(msg, tt.wantMessage) || (tt.wantMessage == "") != (msg == "") {
			t.Errorf("partial success message %q, want it to contain %q", msg, tt.wantMessage)
		}
		return
	}
	var st spb.Status
	var err error
	if isJSON {
		err = protojson.Unmarshal(body, &st)
	} else {
		err = proto.Unmarshal(body, &st)
	}
	if err != nil {
		t.Fatalf("body %q (%s) is not a google.rpc.Status: %v", body, contentType, err)
	}
	if st.GetMessage() == "" || !strings.Contains(st.GetMessage(), tt.wantMessage) {
		t.Errorf("status message %q, want it to contain %q", st.GetMessage(), tt.wantMessage)
	}
}

func unmarshal(m interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}, isJSON bool, b []byte) error {
	if isJSON {
		return m.UnmarshalJSON(b)
	}
	return m.UnmarshalProto(b)
}

func countSpans(batches [][]telemetry.Span) int {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	return n
}

func countProfiles(batches [][]*telemetry.ProfileBatch) int {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	return n
}

func TestGRPC(t *testing.T) {
	tests := []struct {
		name         string
		consumerErr  error
		wantCode     codes.Code
		wantRetry    time.Duration
		wantSpans    int
		wantProfiles int
	}{
		{name: "accepted", wantCode: codes.OK, wantSpans: 3, wantProfiles: 1},
		{name: "full", consumerErr: &pipeline.FullError{RetryAfter: 2 * time.Second}, wantCode: codes.ResourceExhausted, wantRetry: 2 * time.Second},
		{name: "full without delay", consumerErr: pipeline.ErrFull, wantCode: codes.ResourceExhausted, wantRetry: time.Second},
		{name: "permanent", consumerErr: pipeline.Permanent(errors.New("bad")), wantCode: codes.InvalidArgument},
		{name: "down", consumerErr: errors.New("engine stopped"), wantCode: codes.Unavailable},
		{name: "log unavailable", consumerErr: &pipeline.UnavailableError{RetryAfter: 2 * time.Second, Err: errors.New("kafka down")}, wantCode: codes.Unavailable, wantRetry: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			traces := &recorder[[]telemetry.Span]{err: tt.consumerErr}
			profs := &recorder[[]*telemetry.ProfileBatch]{err: tt.consumerErr}
			r, _ := startReceiver(t, testConfig(), traces, profs)
			cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			_, terr := ptraceotlp.NewGRPCClient(cc).Export(t.Context(), tracesRequest(3, false))
			_, perr := pprofileotlp.NewGRPCClient(cc).Export(t.Context(), profilesRequest(false))
			for _, err := range []error{terr, perr} {
				st := status.Convert(err)
				if st.Code() != tt.wantCode {
					t.Errorf("code %v (%v), want %v", st.Code(), err, tt.wantCode)
				}
				var retry time.Duration
				for _, d := range st.Details() {
					if ri, ok := d.(*errdetails.RetryInfo); ok {
						retry = ri.GetRetryDelay().AsDuration()
					}
				}
				if retry != tt.wantRetry {
					t.Errorf("RetryInfo delay %v, want %v", retry, tt.wantRetry)
				}
			}
			if got := countSpans(traces.all()); got != tt.wantSpans {
				t.Errorf("consumer got %d spans, want %d", got, tt.wantSpans)
			}
			got := profs.all()
			if countProfiles(got) != tt.wantProfiles {
				t.Fatalf("consumer got %d profiles, want %d", countProfiles(got), tt.wantProfiles)
			}
			if tt.wantProfiles > 0 {
				b := got[0][0]
				if b.Service != "checkout" || b.SampleType != "cpu" || len(b.Samples) != 1 || b.Samples[0].Count != 3 {
					t.Errorf("profile batch: service %q type %q samples %+v", b.Service, b.SampleType, b.Samples)
				}
			}
		})
	}
}

func TestGRPCPartialSuccess(t *testing.T) {
	traces := &recorder[[]telemetry.Span]{}
	r, _ := startReceiver(t, testConfig(), traces, nil)
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := ptraceotlp.NewGRPCClient(cc).Export(t.Context(), tracesRequest(2, true))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.PartialSuccess().RejectedSpans(); got != 1 {
		t.Errorf("rejected %d spans (%q), want 1", got, resp.PartialSuccess().ErrorMessage())
	}
	if got := countSpans(traces.all()); got != 2 {
		t.Errorf("consumer got %d spans, want 2", got)
	}
}

// gate is a consumer that holds every call until it is opened.
type gate struct {
	entered chan struct{}
	open    chan struct{}
}

func (g *gate) Consume(context.Context, []telemetry.Span) error {
	g.entered <- struct{}{}
	<-g.open
	return nil
}

func TestConcurrencyLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrentRequests = 1
	g := &gate{entered: make(chan struct{}, 1), open: make(chan struct{})}
	r, _ := startReceiver(t, cfg, g, nil)
	body := mustProto(t, tracesRequest(1, false))
	url := "http://" + r.HTTPAddr() + TracesPath
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-g.entered // the first request holds the only slot

	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("second HTTP request: %d Retry-After %q, want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Decompressing waits for a slot too: a crafted body can make it cost
	// seconds of CPU, which the slots bound. A gzip body that does not
	// inflate is refused as busy, not inflated and found damaged (400)
	// while every slot is taken.
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("\x1f\x8b\x08\x00 not deflate"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "gzip")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("gzipped HTTP request while the slot is taken: %d, want 429 before it is inflated", resp.StatusCode)
	}
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = ptraceotlp.NewGRPCClient(cc).Export(t.Context(), tracesRequest(1, false))
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || len(st.Details()) != 1 {
		t.Errorf("gRPC request: %v with details %v, want RESOURCE_EXHAUSTED with RetryInfo", st.Code(), st.Details())
	}
	close(g.open)
	if got := <-first; got != http.StatusOK {
		t.Errorf("first request: %d, want 200", got)
	}
}

func TestGRPCOverLimit(t *testing.T) {
	for _, compressor := range []string{"identity", "gzip"} {
		t.Run(compressor, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxRequestBytes = 64 << 10
			traces := &recorder[[]telemetry.Span]{}
			r, _ := startReceiver(t, cfg, traces, nil)
			cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			// The spans repeat, so gzipped the request is far below the
			// limit: the limit must hold after decompression.
			_, err = ptraceotlp.NewGRPCClient(cc).Export(t.Context(), tracesRequest(2000, false), grpc.UseCompressor(compressor))
			// Without RetryInfo: OTLP clients must not send it again.
			if st := status.Convert(err); st.Code() != codes.ResourceExhausted || len(st.Details()) != 0 {
				t.Errorf("%v with details %v, want RESOURCE_EXHAUSTED without RetryInfo", err, st.Details())
			}
			if n := countSpans(traces.all()); n != 0 {
				t.Errorf("consumer got %d spans of an oversized request", n)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	newReceiver := func(t *testing.T) *Receiver {
		r, err := New(testConfig(), &recorder[[]telemetry.Span]{}, &recorder[[]*telemetry.ProfileBatch]{}, nil, prometheus.NewRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("start then shutdown twice", func(t *testing.T) {
		r := newReceiver(t)
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(t.Context()); err != nil {
			t.Fatalf("second Start: %v", err)
		}
		if r.GRPCAddr() == "" || r.HTTPAddr() == "" {
			t.Fatalf("addresses %q %q after Start", r.GRPCAddr(), r.HTTPAddr())
		}
		for i := range 2 {
			if err := r.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown %d: %v", i+1, err)
			}
		}
		if err := r.Start(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after Shutdown: %v, want ErrClosed", err)
		}
	})
	t.Run("shutdown without start", func(t *testing.T) {
		r := newReceiver(t)
		if err := r.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := r.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		a := newReceiver(t)
		if err := a.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer a.Shutdown(context.Background())
		cfg := testConfig()
		cfg.HTTPEndpoint = a.HTTPAddr()
		b, err := New(cfg, &recorder[[]telemetry.Span]{}, nil, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(t.Context()); err == nil || !strings.Contains(err.Error(), a.HTTPAddr()) {
			t.Errorf("Start on a used port: %v, want an error naming %s", err, a.HTTPAddr())
		}
		if err := b.Shutdown(t.Context()); err != nil {
			t.Error(err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{name: "default", modify: func(*Config) {}},
		{name: "http only", modify: func(c *Config) { c.GRPCEndpoint = "" }},
		{name: "no endpoint", modify: func(c *Config) { c.GRPCEndpoint, c.HTTPEndpoint = "", "" }, want: "both empty"},
		{name: "bad endpoint", modify: func(c *Config) { c.HTTPEndpoint = "4318" }, want: "http_endpoint"},
		{name: "same endpoint", modify: func(c *Config) { c.HTTPEndpoint = c.GRPCEndpoint }, want: "both"},
		{name: "zero limit", modify: func(c *Config) { c.MaxRequestBytes = 0 }, want: "max_request_bytes"},
		{name: "huge limit", modify: func(c *Config) { c.MaxRequestBytes = 2 << 30 }, want: "max_request_bytes"},
		{name: "limit over what replay reads", modify: func(c *Config) { c.MaxRequestBytes = 256<<20 + 1 }, want: "max_request_bytes 268435457, want at most 268435456 (256 MiB, the most a logged request may take on replay)"},
		{name: "zero timeout", modify: func(c *Config) { c.ReadTimeout = 0 }, want: "read_timeout"},
		{name: "zero concurrency", modify: func(c *Config) { c.MaxConcurrentRequests = 0 }, want: "max_concurrent_requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

func TestSharedMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for range 2 {
		if _, err := New(testConfig(), &recorder[[]telemetry.Span]{}, nil, nil, reg, nil); err != nil {
			t.Fatalf("second receiver on one registry: %v", err)
		}
	}
}

// fuzzHandler sends body to path as the content type and encoding chosen
// by the flags, and fails on a panic or an answer that is neither 2xx
// nor 4xx.
func fuzzHandler(t *testing.T, h http.Handler, path string, body []byte, asJSON, gz bool) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	if asJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code < 200 || w.Code >= 500 {
		t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.Bytes())
	}
}

func fuzzReceiver(f *testing.F) *Receiver {
	cfg := DefaultConfig()
	cfg.MaxRequestBytes = 1 << 20
	ok := pipeline.ConsumerFunc[[]telemetry.Span](func(context.Context, []telemetry.Span) error { return nil })
	okp := pipeline.ConsumerFunc[[]*telemetry.ProfileBatch](func(context.Context, []*telemetry.ProfileBatch) error { return nil })
	r, err := New(cfg, ok, okp, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	return r
}

func FuzzHTTPTraces(f *testing.F) {
	f.Add(mustProto(f, tracesRequest(2, true)), false, false)
	f.Add(mustJSON(f, tracesRequest(1, false)), true, false)
	f.Add(gzipped(f, mustProto(f, tracesRequest(1, false))), false, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), true, false)
	f.Add([]byte("\x0a\x02\x12\x00"), false, false)
	h := fuzzReceiver(f).Handler()
	f.Fuzz(func(t *testing.T, body []byte, asJSON, gz bool) {
		fuzzHandler(t, h, TracesPath, body, asJSON, gz)
	})
}

func FuzzHTTPProfiles(f *testing.F) {
	f.Add(mustProto(f, profilesRequest(true)), false, false)
	f.Add(mustJSON(f, profilesRequest(false)), true, false)
	f.Add(gzipped(f, mustProto(f, profilesRequest(false))), false, true)
	f.Add([]byte(`{"resourceProfiles":[{}],"dictionary":{"stringTable":[""]}}`), true, false)
	h := fuzzReceiver(f).Handler()
	f.Fuzz(func(t *testing.T, body []byte, asJSON, gz bool) {
		fuzzHandler(t, h, ProfilesPath, body, asJSON, gz)
	})
}

// BenchmarkHTTPTracesProtobuf measures OTLP/HTTP protobuf ingestion, from
// request to consumer, with a consumer that does nothing: 512 spans per
// request, as the Go SDK's batch processor sends them.
func BenchmarkHTTPTracesProtobuf(b *testing.B) {
	const perRequest = 512
	body := mustProto(b, tracesRequest(perRequest, false))
	cfg := DefaultConfig()
	noop := pipeline.ConsumerFunc[[]telemetry.Span](func(context.Context, []telemetry.Span) error { return nil })
	r, err := New(cfg, noop, nil, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	h := r.Handler()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-protobuf")
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
			}
		}
	})
	b.ReportMetric(float64(perRequest*b.N)/b.Elapsed().Seconds(), "spans/s")
}
