package model

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// newModel returns a model whose clock stands still at t0, so that
// models fed the same telemetry hold the same receipt times
// (Store.Received).
func newModel() *Model {
	m := New(DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text", "example.com/shop"}}))
	m.SetClock(func() time.Time { return t0 })
	return m
}

func id8(b byte) [8]byte { return [8]byte{0, 0, 0, 0, 0, 0, 0, b} }

func span(svc string, kind telemetry.SpanKind, id, parent byte, name string, a telemetry.Attrs) telemetry.Span {
	return telemetry.Span{
		Service: svc, SpanID: id8(id), ParentSpanID: id8(parent), Kind: kind, Name: name,
		Start: t0, End: t0.Add(time.Millisecond), Attrs: a,
	}
}

// shopSpans is one request through the example's architecture: a public
// gateway, an internal service it calls, a database, a payment provider
// and a loopback helper that is no third party.
func shopSpans() []telemetry.Span {
	return []telemetry.Span{
		span("gateway", telemetry.SpanKindServer, 1, 0, "GET /orders/{id}", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders/{id}", ClientAddress: "203.0.113.7"}),
		// The callee arrives before its caller: joins work in both orders.
		span("orders", telemetry.SpanKindServer, 3, 2, "GET /internal/orders/{id}", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/internal/orders/{id}", ClientAddress: "127.0.0.1"}),
		span("gateway", telemetry.SpanKindClient, 2, 1, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "orders.internal", URLFull: "http://orders.internal:8080/internal/orders/7"}),
		span("orders", telemetry.SpanKindClient, 4, 3, "SELECT orders", telemetry.Attrs{DBSystem: "sqlite", DBNamespace: "shop", DBCollection: "orders"}),
		span("orders", telemetry.SpanKindClient, 5, 3, "POST", telemetry.Attrs{HTTPMethod: "POST", ServerAddress: "payments.example.com", URLFull: "https://payments.example.com/v1/charges"}),
		span("orders", telemetry.SpanKindClient, 6, 3, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "127.0.0.1"}),
		span("orders", telemetry.SpanKindProducer, 7, 3, "publish", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "order-events"}),
		span("mailer", telemetry.SpanKindConsumer, 8, 7, "process", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "order-events"}),
	}
}

func TestAddSpans(t *testing.T) {
	m := newModel()
	spans := shopSpans()
	// Two batches: the caller of orders' SERVER span comes in the second.
	ch1 := m.AddSpans(spans[:2])
	ch2 := m.AddSpans(spans[2:])
	if len(ch1.NewEdges) != 0 {
		t.Errorf("first batch new edges = %v, want none", ch1.NewEdges)
	}
	var gotEdges []string
	for _, e := range ch2.NewEdges {
		gotEdges = append(gotEdges, e.From+"->"+e.To)
	}
	if diff := cmp.Diff([]string{"gateway->orders", "orders->mailer"}, gotEdges); diff != "" {
		t.Errorf("new edges (-want +got):\n%s", diff)
	}
	var gotStores []string
	for _, s := range ch2.NewStores {
		gotStores = append(gotStores, s.Name)
	}
	if diff := cmp.Diff([]string{"sqlite://shop/orders", "kafka://order-events"}, gotStores); diff != "" {
		t.Errorf("new stores (-want +got):\n%s", diff)
	}

	snap := m.Snapshot()
	gw, orders, mailer := snap.Service("gateway"), snap.Service("orders"), snap.Service("mailer")
	if gw == nil || orders == nil || mailer == nil {
		t.Fatalf("services = %v", snap.Services)
	}
	if want := (SpanCounts{All: 2, Server: 1, Root: 1, PublicClients: 1}); gw.Spans != want {
		t.Errorf("gateway spans = %+v, want %+v", gw.Spans, want)
	}
	if want := (SpanCounts{All: 5, Server: 1, Linked: 1}); orders.Spans != want {
		t.Errorf("orders spans = %+v, want %+v", orders.Spans, want)
	}
	if want := (SpanCounts{All: 1, Consumer: 1, Linked: 1}); mailer.Spans != want {
		t.Errorf("mailer spans = %+v, want %+v", mailer.Spans, want)
	}
	if len(gw.Stores) != 0 {
		t.Errorf("gateway stores = %v, want none: orders.internal is a traced service", gw.Stores)
	}
	var names []string
	for _, s := range orders.Stores {
		names = append(names, s.Kind+" "+s.Name)
	}
	want := []string{"external https://payments.example.com", "messaging kafka://order-events", "database sqlite://shop/orders"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("orders stores (-want +got):\n%s", diff)
	}
	if len(mailer.Consumes) != 1 || mailer.Consumes[0].Name != "kafka://order-events" {
		t.Errorf("mailer consumes = %v", mailer.Consumes)
	}
	if got := orders.Endpoints[0].Name(); got != "GET /internal/orders/{id}" {
		t.Errorf("orders endpoint = %q", got)
	}
	if len(gw.Edges) != 1 || gw.Edges[0].To != "orders" || gw.Edges[0].Calls != 1 {
		t.Errorf("gateway edges = %+v", gw.Edges)
	}
}

func TestEndpointNames(t *testing.T) {
	tests := []struct {
		name string
		span telemetry.Span
		want string
	}{
		{"http route", span("a", telemetry.SpanKindServer, 1, 0, "GET /x", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/x/{id}"}), "GET /x/{id}"},
		{"http without route", span("a", telemetry.SpanKindServer, 1, 0, "handler", telemetry.Attrs{HTTPMethod: "POST"}), "POST handler"},
		{"rpc", span("a", telemetry.SpanKindServer, 1, 0, "x", telemetry.Attrs{RPCService: "shop.Orders", RPCMethod: "Get"}), "shop.Orders Get"},
		{"consumer", span("a", telemetry.SpanKindConsumer, 1, 0, "x", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "events"}), "process events"},
		{"span name only", span("a", telemetry.SpanKindServer, 1, 0, "tick", telemetry.Attrs{}), "tick"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			m.AddSpans([]telemetry.Span{tt.span})
			if got := m.Snapshot().Service("a").Endpoints[0].Name(); got != tt.want {
				t.Errorf("endpoint = %q, want %q", got, tt.want)
			}
		})
	}
}

// goFrames are real runtime/pprof function names and files.
var (
	frameParse   = attribution.Frame{Function: "golang.org/x/text/language.Parse", File: "golang.org/x/text@v0.3.5/language/parse.go"}
	frameMatch   = attribution.Frame{Function: "golang.org/x/text/language.(*matcher).getBest", File: "golang.org/x/text@v0.3.5/language/match.go"}
	frameHandler = attribution.Frame{Function: "example.com/shop/gateway.(*Server).products", File: "example.com/shop/gateway/server.go"}
	frameServe   = attribution.Frame{Function: "net/http.(*conn).serve", File: "net/http/server.go"}
	frameUnknown = attribution.Frame{Function: "", File: ""}
)

func TestAddProfile(t *testing.T) {
	m := newModel()
	// The SERVER span whose id the samples carry names the endpoint.
	m.AddSpans([]telemetry.Span{span("gateway", telemetry.SpanKindServer, 9, 0, "GET /products", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/products"})})
	spanID := hex.EncodeToString(func() []byte { b := id8(9); return b[:] }())
	b := &telemetry.ProfileBatch{
		Service: "gateway", Source: "cpu.pb.gz", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000,
		Start: t0, Duration: 10 * time.Second,
		Locations: [][]attribution.Frame{
			{frameParse}, {frameHandler}, {frameServe}, {frameUnknown}, {frameMatch, frameParse}, // inlined: callee first
		},
		Samples: []telemetry.Sample{
			{Locations: []int32{0, 1, 2}, Count: 5, Value: 50_000_000, SpanID: spanID, SpanName: "GET /products"},
			// Recursion: Parse twice on one stack counts once.
			{Locations: []int32{0, 0, 1, 2}, Count: 2, Value: 20_000_000},
			{Locations: []int32{4, 1, 2}, Count: 1, Value: 10_000_000, SpanName: "background"},
			{Locations: []int32{3, 2}, Count: 3, Value: 30_000_000},
		},
	}
	ch := m.AddProfile(b)
	var newFns []string
	for _, f := range ch.NewFunctions["gateway"] {
		newFns = append(newFns, f.Package+"."+f.Symbol)
	}
	wantNew := []string{"golang.org/x/text/language.Parse", "example.com/shop/gateway.Server.products", "net/http.conn.serve", "golang.org/x/text/language.matcher.getBest"}
	if diff := cmp.Diff(wantNew, newFns); diff != "" {
		t.Errorf("new functions (-want +got):\n%s", diff)
	}
	if ch2 := m.AddProfile(b); !ch2.Empty() {
		t.Errorf("second identical batch changes = %+v, want none", ch2)
	}

	s := m.Snapshot().Service("gateway")
	if s.Samples != 22 || s.Unattributed != 6 {
		t.Errorf("samples = %d, unattributed = %d; want 22, 6", s.Samples, s.Unattributed)
	}
	// The second batch covers the same time: one window.
	if len(s.Windows) != 1 || s.Windows[0].Samples != 22 || s.Windows[0].Period != 10_000_000 {
		t.Errorf("windows = %+v", s.Windows)
	}
	got := map[string]Function{}
	for _, f := range s.Functions {
		got[f.Package+"."+f.Symbol] = f
	}
	parse := got["golang.org/x/text/language.Parse"]
	if parse.Samples != 16 || parse.Value != 160_000_000 {
		t.Errorf("Parse samples = %d value = %d; want 16, 160000000", parse.Samples, parse.Value)
	}
	if diff := cmp.Diff([]NamedSamples{{Name: "GET /products", Samples: 10, TimeSamples: 10}}, parse.Endpoints); diff != "" {
		t.Errorf("Parse endpoints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]NamedSamples{{Name: "background", Samples: 2, TimeSamples: 2}}, parse.SpanNames); diff != "" {
		t.Errorf("Parse span names (-want +got):\n%s", diff)
	}
	if len(parse.Stack) != 3 || parse.Stack[1].Symbol != "Server.products" {
		t.Errorf("Parse stack = %+v", parse.Stack)
	}
	if serve := got["net/http.conn.serve"]; serve.Samples != 22-6+6 {
		t.Errorf("conn.serve samples = %d, want 22", serve.Samples)
	}
	var lang *Package
	for i := range s.Packages {
		if s.Packages[i].Package == "golang.org/x/text/language" {
			lang = &s.Packages[i]
		}
	}
	if lang == nil || lang.Samples != 16 || lang.Module != "golang.org/x/text" || lang.Version != "v0.3.5" {
		t.Errorf("language package = %+v", lang)
	}
}

func TestGenerationsBound(t *testing.T) {
	g := newGenerations[int](4)
	for i := range 10 {
		g.put(id8(byte(i)), i)
	}
	if n := len(g.cur) + len(g.prev); n > 4 {
		t.Errorf("held %d entries, bound 4", n)
	}
	if v, _, ok := g.lookup(id8(9)); !ok || v != 9 {
		t.Errorf("newest entry = %d, %v", v, ok)
	}
	if _, _, ok := g.lookup(id8(0)); ok {
		t.Error("oldest entry still held")
	}
}

// BenchmarkAddProfile measures attribution + model update with a warm
// location cache, in samples per second: of samples without span labels,
// and of CPU samples labelled with the span they ran under (span_id of
// a SERVER span the model knows, or span_name alone), which count by
// endpoint and span name on their stack too.
func BenchmarkAddProfile(b *testing.B) {
	frames := make([][]attribution.Frame, 64)
	for i := range frames {
		frames[i] = []attribution.Frame{{Function: fmt.Sprintf("example.com/shop/pkg%d.(*T).M%d", i%8, i), File: fmt.Sprintf("example.com/shop/pkg%d/f.go", i%8)}}
	}
	for _, labelled := range []bool{false, true} {
		b.Run(map[bool]string{false: "unlabelled", true: "span-labelled"}[labelled], func(b *testing.B) {
			batch := &telemetry.ProfileBatch{Service: "svc", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 10 * time.Second, Locations: frames}
			for i := range 1000 {
				locs := make([]int32, 24)
				for j := range locs {
					locs[j] = int32((i*7 + j*13) % len(frames))
				}
				smp := telemetry.Sample{Locations: locs, Count: 1, Value: 10_000_000}
				if labelled {
					// Half under one of 8 SERVER spans, half a span name.
					if i%2 == 0 {
						smp.SpanID = fmt.Sprintf("%016x", 1+i%8)
					} else {
						smp.SpanName = fmt.Sprintf("job%d", i%8)
					}
				}
				batch.Samples = append(batch.Samples, smp)
			}
			m := newModel()
			var spans []telemetry.Span
			for i := range 8 {
				spans = append(spans, span("svc", telemetry.SpanKindServer, byte(1+i), 0, fmt.Sprintf("GET /r%d", i), telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: fmt.Sprintf("/r%d", i)}))
			}
			m.AddSpans(spans)
			m.AddProfile(batch)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m.AddProfile(batch)
			}
			b.ReportMetric(float64(b.N*len(batch.Samples))/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// TestImages checks that a service keeps the distinct images its
// resources named, newest last and bounded, whether spans or profiles
// named them.
func TestImages(t *testing.T) {
	m := newModel()
	img := func(tag string) *telemetry.Image { return &telemetry.Image{Name: "gateway", Tags: []string{tag}} }
	sp := span("gateway", telemetry.SpanKindServer, 1, 0, "GET /", telemetry.Attrs{})
	sp.Image = img("v1")
	m.AddSpans([]telemetry.Span{sp, sp})
	m.AddProfile(&telemetry.ProfileBatch{Service: "gateway", Image: img("v2"), Start: t0, Duration: time.Second})
	sp.Image = img("v1") // seen again: moves to the end
	m.AddSpans([]telemetry.Span{sp})
	want := []telemetry.Image{*img("v2"), *img("v1")}
	if diff := cmp.Diff(want, m.Snapshot().Service("gateway").Images); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	for i := range 2 * maxImages {
		m.AddProfile(&telemetry.ProfileBatch{Service: "gateway", Image: img(fmt.Sprint(i)), Start: t0, Duration: time.Second})
	}
	got := m.Snapshot().Service("gateway").Images
	if len(got) != maxImages || got[maxImages-1].Tags[0] != fmt.Sprint(2*maxImages-1) {
		t.Errorf("images after %d more = %+v, want the newest %d", 2*maxImages, got, maxImages)
	}
}

// TestStateRoundTrip checkpoints a model and restores it into a fresh
// one: the snapshots are equal, and the restored model keeps growing
// where the first stopped.
func TestStateRoundTrip(t *testing.T) {
	m := newModel()
	spans := shopSpans()
	spans[0].Image = &telemetry.Image{Name: "registry.example.com/shop/gateway", Digest: "sha256:0123", Tags: []string{"v1"}}
	m.AddSpans(spans)
	b := &telemetry.ProfileBatch{
		Service: "orders", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: time.Minute,
		Locations: [][]attribution.Frame{{frameParse}, {frameHandler}},
		Samples:   []telemetry.Sample{{Locations: []int32{0, 1}, Count: 4, Value: 40_000_000, SpanID: "0000000000000003"}},
	}
	m.AddProfile(b)
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored := newModel()
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Snapshot(), restored.Snapshot()); diff != "" {
		t.Fatalf("restored snapshot differs (-want +got):\n%s", diff)
	}
	// Span joins in flight are not checkpointed: the next batch carries
	// no span labels, so both models must agree on it.
	next := *b
	next.Samples = []telemetry.Sample{{Locations: []int32{0, 1}, Count: 4, Value: 40_000_000}}
	if ch := restored.AddProfile(&next); !ch.Empty() {
		t.Errorf("known functions reported new after restore: %+v", ch)
	}
	m.AddProfile(&next)
	if diff := cmp.Diff(m.Snapshot(), restored.Snapshot()); diff != "" {
		t.Errorf("models diverge after the same batch (-want +got):\n%s", diff)
	}
	if err := restored.UnmarshalBinary([]byte("not gob")); err == nil {
		t.Error("garbage state accepted")
	}
}

// BenchmarkDecodeAndAddSpans measures OTLP span decoding plus the model
// update, in spans per second: an ExportTraceServiceRequest of 1,000 spans
// made with pdata, as an OTel SDK sends it.
func BenchmarkDecodeAndAddSpans(b *testing.B) {
	td := ptrace.NewTraces()
	for svc, name := range []string{"gateway", "catalog", "orders", "reporter"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", name)
		rs.Resource().Attributes().PutStr("service.namespace", "shop")
		ss := rs.ScopeSpans().AppendEmpty()
		for i := range 250 {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{byte(svc), byte(i), 1})
			sp.SetSpanID(pcommon.SpanID{byte(svc), byte(i), 2})
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
			a := sp.Attributes()
			switch i % 3 {
			case 0:
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetName("GET /products/{id}")
				a.PutStr("http.request.method", "GET")
				a.PutStr("http.route", "/products/{id}")
				a.PutStr("url.path", fmt.Sprintf("/products/%d", i))
				a.PutStr("client.address", "203.0.113.9")
				a.PutInt("http.response.status_code", 200)
			case 1:
				sp.SetKind(ptrace.SpanKindClient)
				sp.SetParentSpanID(pcommon.SpanID{byte(svc), byte(i - 1), 2})
				sp.SetName("SELECT orders")
				a.PutStr("db.system.name", "postgresql")
				a.PutStr("db.namespace", "shop")
				a.PutStr("db.collection.name", "orders")
				a.PutStr("db.query.text", "SELECT * FROM orders WHERE id = $1")
			default:
				sp.SetKind(ptrace.SpanKindClient)
				sp.SetParentSpanID(pcommon.SpanID{byte(svc), byte(i - 2), 2})
				sp.SetName("POST")
				a.PutStr("http.request.method", "POST")
				a.PutStr("server.address", "payments.example.com")
				a.PutStr("url.full", "https://payments.example.com/v1/charges")
			}
		}
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	m := newModel()
	var spans int
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	var round uint64
	for b.Loop() {
		round++
		err := telemetry.DecodeTraces(bytes.NewReader(body), "bench", func(s []telemetry.Span) error {
			spans += len(s)
			// New ids every round, as new requests have: the model
			// counts a span id it has counted once (a copy).
			for i := range s {
				binary.BigEndian.PutUint64(s[i].SpanID[:], binary.BigEndian.Uint64(s[i].SpanID[:])^round)
				if s[i].ParentSpanID != ([8]byte{}) {
					binary.BigEndian.PutUint64(s[i].ParentSpanID[:], binary.BigEndian.Uint64(s[i].ParentSpanID[:])^round)
				}
			}
			m.AddSpans(s)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkAddSpans measures the model update alone on telemetrygen's
// traces (a CLIENT span and nine SERVER children of the same service that
// arrive first, new ids in every batch), in 1000-span batches: the joins of a span and its
// caller, and the generations of the span tables turning as they fill.
func BenchmarkAddSpans(b *testing.B) { benchmarkAddSpans(b, false) }

// BenchmarkAddSpansUnjoined is BenchmarkAddSpans with a third of the
// SERVER spans called by a parent that never arrives (an ingress proxy
// that propagates traceparent but exports nothing), a join window passing
// every 16 batches on the model's clock: their waits end, and the table
// of ended waits (Model.ended) stays full, as under steady traffic. It is
// filled before the timer starts; heap-MiB is the heap in use after the
// run, ended its entries.
func BenchmarkAddSpansUnjoined(b *testing.B) { benchmarkAddSpans(b, true) }

func benchmarkAddSpans(b *testing.B, unjoined bool) {
	spans := make([]telemetry.Span, 1000)
	for i := range spans {
		sp := &spans[i]
		sp.Service, sp.Start, sp.End = "load", t0, t0.Add(time.Millisecond)
		sp.Kind, sp.Name, sp.Attrs.PeerService = telemetry.SpanKindServer, fmt.Sprintf("okey-dokey-%d", i%10), "telemetrygen-client"
		if i%10 == 9 {
			sp.Kind, sp.Name, sp.Attrs.PeerService = telemetry.SpanKindClient, "lets-go", "telemetrygen-server"
		}
	}
	m := newModel()
	now := t0
	m.SetClock(func() time.Time { return now })
	var n uint64
	// ids are a counter times an odd constant: distinct, spread like
	// random ones.
	id := func(k uint64) [8]byte {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], k*0x9e3779b97f4a7c15)
		return b
	}
	// Parents that never arrive take ids from 2^62 on, which the spans'
	// own never reach.
	const absent = 1 << 62
	batch := func() {
		for i := range spans {
			sp := &spans[i]
			sp.SpanID = id(n + uint64(i))
			if sp.Kind != telemetry.SpanKindServer {
				continue
			}
			sp.ParentSpanID = id(n + uint64(i+9-i%10))
			if unjoined && i%10 < 3 {
				sp.ParentSpanID = id(absent + n + uint64(i))
			}
		}
		n += uint64(len(spans))
		m.AddSpans(spans)
		if unjoined {
			now = now.Add(m.cfg.JoinWindow / 16)
		}
	}
	if unjoined {
		// Two tables' worth of ended waits: it is full, and has turned.
		for range 2 * m.cfg.MaxPendingSpans / 300 {
			batch()
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		batch()
	}
	b.StopTimer()
	// telemetrygen's spans are all of one service: a SERVER span joined
	// to its CLIENT parent counts as its own (SpanCounts.Own).
	s := m.Snapshot()
	if s.Services[0].Spans.Own == 0 {
		b.Fatalf("no span was joined: %+v", s.Services[0].Spans)
	}
	if unjoined {
		if s.Services[0].Spans.Unlinked == 0 {
			b.Fatalf("no wait ended: %+v", s.Services[0].Spans)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(len(m.ended.cur)+len(m.ended.prev)), "ended")
	}
}

// TestEndedWaitsSize: an entry of the table of ended waits is 16 bytes,
// a third of the map space one of the table of waiting spans takes with
// its key: under steady traffic from an untraced caller the table stays
// full, and its growth to its bound was most of RSS's from 1 M to 10 M
// spans (a heap profile's difference, 2026-12-07: 2.2 of 3.0 MB).
func TestEndedWaitsSize(t *testing.T) {
	if n := unsafe.Sizeof(endedWaits{}); n > 16 {
		t.Errorf("endedWaits is %d bytes, want at most 16", n)
	}
}

// TestWiden: a range widened by two instants in either order, or by
// zero ones, is what widening by each in turn gives.
func TestWiden(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var zero time.Time
	for _, tc := range []struct {
		name                    string
		first, last, start, end time.Time
		wantFirst, wantLast     time.Time
	}{
		{"unset", zero, zero, at(1), at(2), at(1), at(2)},
		{"inside", at(0), at(5), at(1), at(2), at(0), at(5)},
		{"earlier and later", at(3), at(4), at(1), at(6), at(1), at(6)},
		{"later only", at(0), at(1), at(2), at(3), at(0), at(3)},
		{"reversed", at(3), at(4), at(6), at(1), at(1), at(6)},
		{"unset, reversed", zero, zero, at(2), at(1), at(1), at(2)},
		{"zero end", at(3), at(4), at(5), zero, zero, at(5)},
		{"both zero", at(3), at(4), zero, zero, zero, at(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, last := tc.first, tc.last
			widen(&first, &last, tc.start, tc.end)
			if !first.Equal(tc.wantFirst) || !last.Equal(tc.wantLast) {
				t.Errorf("widen = [%v, %v], want [%v, %v]", first, last, tc.wantFirst, tc.wantLast)
			}
		})
	}
}

// TestStoreNames: each CLIENT span names the store it called, whatever
// store the span before called (the model reuses the last name it built
// while the parts are the same).
func TestStoreNames(t *testing.T) {
	m := newModel()
	calls := []struct {
		attrs telemetry.Attrs
		want  string
	}{
		{telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "items"}, "postgresql://shop/items"},
		{telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "items"}, "postgresql://shop/items"},
		{telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "orders"}, "postgresql://shop/orders"},
		{telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop"}, "postgresql://shop"},
		{telemetry.Attrs{DBSystem: "redis"}, "redis://"},
		{telemetry.Attrs{S3Bucket: "invoices"}, "s3://invoices"},
		{telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "invoices"}, "kafka://invoices"},
		{telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "items"}, "postgresql://shop/items"},
	}
	for i, c := range calls {
		sp := span("api", telemetry.SpanKindClient, byte(i+1), 0, "call", c.attrs)
		name, _, _ := m.storeOf(&sp)
		if name != c.want {
			t.Errorf("call %d: store %q, want %q", i, name, c.want)
		}
	}
}

// TestUnnamedServiceIsUnknownService: telemetry that names no service
// (spans decoded elsewhere, a profile of a resource without
// service.name) is telemetry.UnknownService's, never a service named "".
func TestUnnamedServiceIsUnknownService(t *testing.T) {
	m := newModel()
	ch := m.AddSpans([]telemetry.Span{span("", telemetry.SpanKindServer, 9, 0, "GET /products", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/products"})})
	if diff := cmp.Diff([]string{telemetry.UnknownService}, ch.NewServices); diff != "" {
		t.Errorf("new services (-want +got):\n%s", diff)
	}
	ch = m.AddProfile(&telemetry.ProfileBatch{
		Source: "cpu.pb.gz", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 10 * time.Second,
		Locations: [][]attribution.Frame{{frameParse}},
		Samples:   []telemetry.Sample{{Locations: []int32{0}, Count: 5, Value: 50_000_000}},
	})
	if len(ch.NewServices) != 0 || len(ch.NewFunctions) != 1 {
		t.Errorf("profile's changes %+v, want its new functions only", ch)
	}
	snap := m.Snapshot()
	var names []string
	for _, s := range snap.Services {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{telemetry.UnknownService}, names); diff != "" {
		t.Fatalf("services (-want +got):\n%s", diff)
	}
	if s := snap.Service(telemetry.UnknownService); s.Samples != 5 || len(s.Endpoints) != 1 {
		t.Errorf("%s: %d samples, %d endpoints; want 5 and 1", telemetry.UnknownService, s.Samples, len(s.Endpoints))
	}
}

// TestMessagingClientSpans: a CLIENT span whose messaging operation is a
// consumer's (a pull consumer's receive, a settle) consumes from its
// destination, as a CONSUMER span does; it is no store the service
// reaches, no host it calls and no endpoint. A PRODUCER span, and a
// CLIENT span that sends or says nothing of its operation, reach the
// destination as before.
func TestMessagingClientSpans(t *testing.T) {
	msg := func(op, dest string) telemetry.Attrs {
		// A broker with a public name: a host the span called would be
		// a third party.
		return telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: dest, MessagingOperation: op, ServerAddress: "broker.example.com"}
	}
	tests := []struct {
		name           string
		kind           telemetry.SpanKind
		attrs          telemetry.Attrs
		stores         []string // kind and name
		consumes       []string
		newStores      int
		endpoints      int
		consumerCounts int64
	}{
		{"receive", telemetry.SpanKindClient, msg("receive", "orders"), nil, []string{"kafka://orders"}, 0, 0, 0},
		{"settle", telemetry.SpanKindClient, msg("settle", "orders"), nil, []string{"kafka://orders"}, 0, 0, 0},
		{"process on a CLIENT span", telemetry.SpanKindClient, msg("process", "orders"), nil, []string{"kafka://orders"}, 0, 0, 0},
		{"receive without a destination", telemetry.SpanKindClient, msg("receive", ""), nil, nil, 0, 0, 0},
		{"send", telemetry.SpanKindClient, msg("send", "orders"), []string{"external https://broker.example.com", "messaging kafka://orders"}, nil, 1, 0, 0},
		{"no operation", telemetry.SpanKindClient, msg("", "orders"), []string{"external https://broker.example.com", "messaging kafka://orders"}, nil, 1, 0, 0},
		{"custom operation", telemetry.SpanKindClient, msg("ack", "orders"), []string{"external https://broker.example.com", "messaging kafka://orders"}, nil, 1, 0, 0},
		{"create", telemetry.SpanKindProducer, msg("create", "orders"), []string{"external https://broker.example.com", "messaging kafka://orders"}, nil, 1, 0, 0},
		{"receive on a PRODUCER span: the kind wins", telemetry.SpanKindProducer, msg("receive", "orders"), []string{"external https://broker.example.com", "messaging kafka://orders"}, nil, 1, 0, 0},
		{"process", telemetry.SpanKindConsumer, msg("process", "orders"), nil, []string{"kafka://orders"}, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			ch := m.AddSpans([]telemetry.Span{span("poller", tt.kind, 1, 0, "orders "+tt.attrs.MessagingOperation, tt.attrs)})
			svc := m.Snapshot().Service("poller")
			var stores, consumes []string
			for _, st := range svc.Stores {
				stores = append(stores, st.Kind+" "+st.Name)
			}
			for _, st := range svc.Consumes {
				consumes = append(consumes, st.Name)
				if st.Service != "poller" || st.Kind != "messaging" || st.System != "kafka" || st.Calls != 1 {
					t.Errorf("consumed %+v, want poller's, messaging, kafka, 1 call", st)
				}
			}
			if diff := cmp.Diff(tt.stores, stores); diff != "" {
				t.Errorf("stores (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.consumes, consumes); diff != "" {
				t.Errorf("consumes (-want +got):\n%s", diff)
			}
			if len(ch.NewStores) != tt.newStores {
				t.Errorf("new stores %v, want %d", ch.NewStores, tt.newStores)
			}
			// A destination consumed from for the first time is a change:
			// its producers now reach the service (SensitivePaths).
			if len(ch.NewConsumes) != len(tt.consumes) {
				t.Errorf("new consumes %v, want %v", ch.NewConsumes, tt.consumes)
			}
			if len(svc.Endpoints) != tt.endpoints || svc.Spans.Consumer != tt.consumerCounts {
				t.Errorf("%d endpoints, %d CONSUMER spans; want %d and %d", len(svc.Endpoints), svc.Spans.Consumer, tt.endpoints, tt.consumerCounts)
			}
		})
	}
}

// TestReceiveSpanParent: the process span a pull consumer starts under
// its receive span joins it, as it did when the receive span counted as
// producing: not called from outside the traced system, and no edge.
func TestReceiveSpanParent(t *testing.T) {
	a := telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "receive"}
	p := telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "process"}
	for _, order := range []string{"receive first", "process first"} {
		t.Run(order, func(t *testing.T) {
			m := newModel()
			spans := []telemetry.Span{span("poller", telemetry.SpanKindClient, 1, 0, "poll orders", a), span("poller", telemetry.SpanKindConsumer, 2, 1, "process orders", p)}
			if order == "process first" {
				spans[0], spans[1] = spans[1], spans[0]
			}
			m.AddSpans(spans[:1])
			m.AddSpans(spans[1:])
			svc := m.Snapshot().Service("poller")
			if want := (SpanCounts{All: 2, Consumer: 1, Own: 1}); svc.Spans != want {
				t.Errorf("spans = %+v, want %+v", svc.Spans, want)
			}
			if len(svc.Edges) != 0 || len(svc.Stores) != 0 || len(svc.Consumes) != 1 || svc.Consumes[0].Calls != 2 {
				t.Errorf("edges %v, stores %v, consumes %v; want none, none, kafka://orders twice", svc.Edges, svc.Stores, svc.Consumes)
			}
		})
	}
}

// TestBatchReceiveSpanParent: a receive span is the parent of the process
// span of each message of the batch it received (the semantic
// conventions' batch receiving): every one joins it, whichever arrives
// first and in however many exports, and none is left to count as called
// from outside the traced system. A shard that hands the receive span to
// the store and takes it back (TakePending, RestorePending) keeps it for
// the whole batch too.
func TestBatchReceiveSpanParent(t *testing.T) {
	r := telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "receive"}
	p := telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "process"}
	receive := span("poller", telemetry.SpanKindClient, 1, 0, "poll orders", r)
	process := func(id byte) telemetry.Span {
		return span("poller", telemetry.SpanKindConsumer, id, 1, "process orders", p)
	}
	tests := []struct {
		name    string
		batches [][]telemetry.Span
		handed  bool // the receive span goes through TakePending and RestorePending
	}{
		{"receive first, one export", [][]telemetry.Span{{receive, process(2), process(3), process(4)}}, false},
		{"receive first, an export a message", [][]telemetry.Span{{receive}, {process(2)}, {process(3)}, {process(4)}}, false},
		{"process first", [][]telemetry.Span{{process(2), process(3), process(4)}, {receive}}, false},
		{"receive between", [][]telemetry.Span{{process(2)}, {receive}, {process(3), process(4)}}, false},
		{"receive handed to the store and back", [][]telemetry.Span{{receive}, {process(2), process(3), process(4)}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			for i, b := range tt.batches {
				m.AddSpans(b)
				if tt.handed && i == 0 {
					m.RestorePending(m.TakePending())
				}
			}
			m.Settle()
			svc := m.Snapshot().Service("poller")
			if want := (SpanCounts{All: 4, Consumer: 3, Own: 3}); svc.Spans != want {
				t.Errorf("spans = %+v, want %+v", svc.Spans, want)
			}
		})
	}
}

// TestEndpointTimeSamples: the samples an endpoint or a span name led to
// a function count every profile's, and their time samples those of
// time-sampled profiles, kept through a checkpoint and a merge of
// shards. A JFR recording's allocation samples carry span ids as its CPU
// samples do, and 4 CPU samples of an endpoint beside 1000 allocated
// objects were 1004 samples of it.
func TestEndpointTimeSamples(t *testing.T) {
	m := newModel()
	m.AddSpans(shopSpans())
	profile := func(sampleType, unit string, samples ...telemetry.Sample) *telemetry.ProfileBatch {
		return &telemetry.ProfileBatch{
			Service: "orders", SampleType: sampleType, Unit: unit, Period: 10_000_000, Start: t0, Duration: time.Minute,
			Locations: [][]attribution.Frame{{frameParse}, {frameHandler}}, Samples: samples,
		}
	}
	m.AddProfile(profile("cpu", "nanoseconds", telemetry.Sample{Locations: []int32{0, 1}, Count: 4, Value: 40_000_000, SpanID: "0000000000000003"}))
	m.AddProfile(profile("alloc_objects", "count",
		telemetry.Sample{Locations: []int32{0, 1}, Count: 1000, Value: 1000, SpanID: "0000000000000003"},
		telemetry.Sample{Locations: []int32{0, 1}, Count: 500, Value: 500, SpanName: "nightly-export"}))
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored := newModel()
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	merged, err := MergeStates(Joins{}, data, data)
	if err != nil {
		t.Fatal(err)
	}
	twice := newModel()
	if err := twice.UnmarshalBinary(merged); err != nil {
		t.Fatal(err)
	}
	type named struct{ Endpoints, SpanNames []NamedSamples }
	want := named{
		Endpoints: []NamedSamples{{Name: "GET /internal/orders/{id}", Samples: 1004, TimeSamples: 4}},
		SpanNames: []NamedSamples{{Name: "nightly-export", Samples: 500}},
	}
	for _, tt := range []struct {
		name  string
		m     *Model
		times int64
	}{{"live", m, 1}, {"restored", restored, 1}, {"two shards merged", twice, 2}} {
		t.Run(tt.name, func(t *testing.T) {
			w := named{Endpoints: slices.Clone(want.Endpoints), SpanNames: slices.Clone(want.SpanNames)}
			for _, l := range [][]NamedSamples{w.Endpoints, w.SpanNames} {
				for i := range l {
					l[i].Samples, l[i].TimeSamples = l[i].Samples*tt.times, l[i].TimeSamples*tt.times
				}
			}
			fns := tt.m.Snapshot().Service("orders").Functions
			i := slices.IndexFunc(fns, func(f Function) bool { return f.Symbol == "Parse" })
			if i < 0 {
				t.Fatal("no function Parse")
			}
			if diff := cmp.Diff(w, named{fns[i].Endpoints, fns[i].SpanNames}); diff != "" {
				t.Errorf("endpoints and span names of Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFunctionOrder: a service's functions and packages, and each
// function's example stack, are heaviest first by time samples, then by
// every profile's: a heap profile's 1000 allocated objects in one
// function beside 10 CPU samples in another made the allocating
// function the service's heaviest (CycloneDX's evident:heaviest_function,
// the service page) and its allocating stack the example.
func TestFunctionOrder(t *testing.T) {
	frameWrite := attribution.Frame{Function: "encoding/json.(*encodeState).marshal", File: "encoding/json/encode.go"}
	profile := func(sampleType, unit string, samples ...telemetry.Sample) *telemetry.ProfileBatch {
		return &telemetry.ProfileBatch{
			Service: "orders", SampleType: sampleType, Unit: unit, Period: 10_000_000, Start: t0, Duration: time.Minute,
			Locations: [][]attribution.Frame{{frameParse}, {frameHandler}, {frameWrite}, {frameServe}}, Samples: samples,
		}
	}
	m := newModel()
	// Parse runs 10 CPU samples, under products; marshal allocates 1000
	// objects, under products too, and runs 2 CPU samples under serve.
	m.AddProfile(profile("cpu", "nanoseconds",
		telemetry.Sample{Locations: []int32{0, 1}, Count: 10, Value: 100_000_000},
		telemetry.Sample{Locations: []int32{2, 3}, Count: 2, Value: 20_000_000}))
	m.AddProfile(profile("alloc_objects", "count", telemetry.Sample{Locations: []int32{2, 1}, Count: 1000, Value: 1000}))
	svc := m.Snapshot().Service("orders")
	type fn struct {
		Name                 string
		Samples, TimeSamples int64
		Stack                string
	}
	var gotFns []fn
	for _, f := range svc.Functions {
		var stack []string
		for _, s := range f.Stack {
			stack = append(stack, s.Symbol)
		}
		gotFns = append(gotFns, fn{f.Package + "." + f.Symbol, f.Samples, f.TimeSamples, strings.Join(stack, " < ")})
	}
	wantFns := []fn{
		{"example.com/shop/gateway.Server.products", 1010, 10, "Parse < Server.products"},
		{"golang.org/x/text/language.Parse", 10, 10, "Parse < Server.products"},
		{"encoding/json.encodeState.marshal", 1002, 2, "encodeState.marshal < conn.serve"},
		{"net/http.conn.serve", 2, 2, "encodeState.marshal < conn.serve"},
	}
	if diff := cmp.Diff(wantFns, gotFns); diff != "" {
		t.Errorf("functions (-want +got):\n%s", diff)
	}
	var gotPkgs []string
	for _, p := range svc.Packages {
		gotPkgs = append(gotPkgs, p.Package)
	}
	if diff := cmp.Diff([]string{"example.com/shop/gateway", "golang.org/x/text/language", "encoding/json", "net/http"}, gotPkgs); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
}
