package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/httpapi"
	"github.com/evidentsec/evident/internal/ingest/otlp"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
)

// viewState is the engine's latest view as the API's state, as serve
// wires it.
type viewState struct{ e *Engine }

func (s viewState) Result() *report.Result {
	v := s.e.View()
	return &report.Result{Generated: v.At, Summary: v.Summary, Assessments: v.Assessments, Snapshot: v.Snapshot, Exposure: v.Exposure}
}

func (s viewState) SetFindings(ctx context.Context, u store.FindingsUpdate) error {
	return s.e.SetFindings(ctx, u)
}

// telemetrygenTraces is n traces of service as `telemetrygen traces
// --service` sends them: a CLIENT span "lets-go" that starts the trace and
// a SERVER span "okey-dokey-0" under it, with the peer attributes it sets.
func telemetrygenTraces(t testing.TB, service string, n int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	now := time.Now()
	for i := range n {
		trace := pcommon.TraceID{0: byte(i + 1), 15: 1}
		client := ss.Spans().AppendEmpty()
		client.SetTraceID(trace)
		client.SetSpanID(pcommon.SpanID{0: byte(i + 1), 7: 1})
		client.SetName("lets-go")
		client.SetKind(ptrace.SpanKindClient)
		client.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		client.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(123 * time.Microsecond)))
		client.Attributes().PutStr("network.peer.address", "1.2.3.4")
		client.Attributes().PutStr("peer.service", "telemetrygen-server")
		server := ss.Spans().AppendEmpty()
		server.SetTraceID(trace)
		server.SetSpanID(pcommon.SpanID{0: byte(i + 1), 7: 2})
		server.SetParentSpanID(client.SpanID())
		server.SetName("okey-dokey-0")
		server.SetKind(ptrace.SpanKindServer)
		server.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		server.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(123 * time.Microsecond)))
		server.Attributes().PutStr("network.peer.address", "1.2.3.4")
		server.Attributes().PutStr("peer.service", "telemetrygen-client")
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rootSpans is n SERVER spans of service that start their traces.
func rootSpans(t testing.TB, service string, n int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0: byte(i + 1), 15: 2})
		sp.SetSpanID(pcommon.SpanID{0: byte(i + 1), 7: 3})
		sp.SetName("GET /")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("http.route", "/")
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func postTraces(t testing.TB, addr string, req []byte) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/v1/traces", "application/x-protobuf", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces: %s", resp.Status)
	}
}

// apiServices is the names of GET /api/v1/services.
func apiServices(t testing.TB, api string) []string {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/services")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Services []struct {
			Name string `json:"name"`
		} `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET /api/v1/services: %s: %v", resp.Status, err)
	}
	var names []string
	for _, s := range body.Services {
		names = append(names, s.Name)
	}
	return names
}

func apiStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// assessments is how many assessments the engine ran.
func assessments(t testing.TB, reg prometheus.Gatherer) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "evident_engine_assess_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no evident_engine_assess_duration_seconds")
	return 0
}

// applied waits until every batch accepted so far is applied, and
// reports on the worker whether an assessment is due.
func applied(t testing.TB, e *Engine) (due bool) {
	t.Helper()
	eventually(t, "the batches applied", func() bool { return len(e.slots) == 0 })
	if err := e.call(context.Background(), func(context.Context) { due = e.w.toAssess() }); err != nil {
		t.Fatal(err)
	}
	return due
}

// TestNewServiceListed: with findings only for gateway and the full
// refresh a minute away, the spans of a new service, sent over OTLP/HTTP
// as telemetrygen sends them, make it appear in the API's list of
// services and get its page within seconds, not at the next refresh;
// more spans of services already listed, with no findings, do not
// re-assess.
func TestNewServiceListed(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig() // assess_interval 200ms, refresh_interval 1m, as serve runs
	reg := prometheus.NewRegistry()
	e, err := New(cfg, Deps{
		Store: st, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
		Assess: assess.DefaultConfig(), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, e)
	if err := e.SetFindings(ctx, allFindings(textFinding("gateway"))); err != nil {
		t.Fatal(err)
	}
	ocfg := otlp.DefaultConfig()
	ocfg.GRPCEndpoint, ocfg.HTTPEndpoint = "", "127.0.0.1:0"
	rcv, err := otlp.New(ocfg, e.TracesConsumer(), e.ProfilesConsumer(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rcv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	acfg := httpapi.DefaultConfig()
	acfg.Endpoint = "127.0.0.1:0"
	srv := httpapi.New(acfg, httpapi.Deps{State: viewState{e}})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	api := "http://" + srv.Addr().String()

	listed := func(svc string) func() bool {
		return func() bool { return slices.Contains(apiServices(t, api), svc) }
	}
	postTraces(t, rcv.HTTPAddr(), rootSpans(t, "gateway", 3))
	eventually(t, "gateway listed", listed("gateway"))

	// The new service: listed, and its page served, within the deadline
	// (5 s) that eventually polls for, far under refresh_interval.
	sent := time.Now()
	postTraces(t, rcv.HTTPAddr(), telemetrygenTraces(t, "orders", 5))
	eventually(t, "orders listed", listed("orders"))
	t.Logf("orders listed %v after its spans were accepted (assess_interval %v, refresh_interval %v)", time.Since(sent).Round(time.Millisecond), cfg.AssessInterval, cfg.RefreshInterval)
	if got := apiStatus(t, api+"/api/v1/services/orders"); got != http.StatusOK {
		t.Errorf("GET /api/v1/services/orders: %d, want 200", got)
	}
	if got := apiServices(t, api); !slices.Equal(got, []string{"gateway", "orders"}) {
		t.Errorf("services %q, want gateway and orders", got)
	}

	// Services already listed, without findings: no assessment is due
	// after their batches, however many.
	eventually(t, "the assessment of orders done", func() bool { return !applied(t, e) })
	before := assessments(t, reg)
	for range 5 {
		postTraces(t, rcv.HTTPAddr(), telemetrygenTraces(t, "orders", 5))
	}
	if applied(t, e) {
		t.Error("an assessment is due after batches of a service already listed")
	}
	if got := assessments(t, reg) - before; got != 0 {
		t.Errorf("%d assessments after batches of a service already listed, want 0", got)
	}
}

// TestNewServiceBounded: services new to the model are each worth an
// assessment once; the model holds MaxServices and keeps them, so a flood
// of new names costs at most one assessment per assess_interval until the
// model is full, and none after; a restarted engine's model holds the
// services of its checkpoint.
func TestNewServiceBounded(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	newBounded := func() *Engine {
		mcfg := model.DefaultConfig()
		mcfg.MaxServices = 4
		cfg := testConfig()
		cfg.AssessInterval = time.Hour // the test decides when to assess
		e, err := New(cfg, Deps{Store: st, Model: model.New(mcfg, attribution.New(attribution.Config{})), Assess: assess.DefaultConfig()})
		if err != nil {
			t.Fatal(err)
		}
		start(t, e)
		return e
	}
	assessNow := func(e *Engine) {
		t.Helper()
		if err := e.call(ctx, func(wctx context.Context) { e.assess(wctx) }); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(svcs ...string) []telemetry.Span {
		var out []telemetry.Span
		for i, s := range svcs {
			out = append(out, span(s, telemetry.SpanKindServer, byte(i+1), 0, telemetry.Attrs{}), span(s, telemetry.SpanKindServer, byte(i+100), 0, telemetry.Attrs{}))
		}
		return out
	}
	consume := func(e *Engine, spans []telemetry.Span) {
		t.Helper()
		if err := e.TracesConsumer().Consume(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	names := func(e *Engine) []string {
		var out []string
		for _, s := range e.View().Snapshot.Services {
			out = append(out, s.Name)
		}
		return out
	}

	e := newBounded()
	consume(e, batch("a", "b"))
	if !applied(t, e) {
		t.Fatal("no assessment due after two new services")
	}
	assessNow(e)
	if got := names(e); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("view's services %q, want a and b", got)
	}
	consume(e, batch("a", "b", "a"))
	if applied(t, e) {
		t.Error("an assessment is due after services already known")
	}
	// Spans of no service are telemetry.UnknownService's: new once.
	consume(e, batch(""))
	if !applied(t, e) {
		t.Fatal("no assessment due after spans of no service")
	}
	assessNow(e)
	consume(e, batch("", "a"))
	if applied(t, e) {
		t.Error("an assessment is due after spans of no service again")
	}
	// c fills the model (a, b, and the spans of no service); the others
	// are refused.
	var flood []string
	for i := range 50 {
		flood = append(flood, fmt.Sprintf("new-%02d", i))
	}
	consume(e, batch(append([]string{"c"}, flood...)...))
	if !applied(t, e) {
		t.Fatal("no assessment due after new services")
	}
	assessNow(e)
	if got := names(e); len(got) != 4 || !slices.Contains(got, "c") {
		t.Fatalf("view's services %q, want 4 with c", got)
	}
	consume(e, batch("more-1", "more-2"))
	if applied(t, e) {
		t.Error("an assessment is due after services the full model refused")
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// A restart with room for more: the checkpoint's services are known.
	st.mu.Lock()
	st.checkSeq, st.checkState = 0, nil
	st.batches = nil
	st.mu.Unlock()
	e = newBounded()
	consume(e, batch("x"))
	if !applied(t, e) {
		t.Fatal("no assessment due after a new service")
	}
	assessNow(e)
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e = newBounded()
	consume(e, batch("x"))
	if applied(t, e) {
		t.Error("after a restart, an assessment is due after a service of the checkpoint")
	}
}
