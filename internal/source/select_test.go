package source_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/source/sourcetest"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestSelectedServicesWithReceivers checks a pull of selected services
// (serve's services:, analyze's --service) whose traces hold spans of
// another service that reaches the model another way too (serve's
// receivers, analyze's --traces files): the other service's spans are
// counted once (its store, its calls further on, its endpoints' callers
// other than the selected service), while the spans that join it to the
// selected service are handed on, so that the selected service's callers
// and edges are the whole trace's.
func TestSelectedServicesWithReceivers(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w := source.Window{From: t0, To: t0.Add(time.Hour)}
	// Trace 1: gateway's request calls orders, which calls its database
	// and the payments service. Trace 2: orders calls gateway. The model
	// joins spans by span id alone: the ids are the traces' apart.
	type span struct {
		trace          int
		service        string
		kind           ptrace.SpanKind
		id, parent     byte
		db, serverAddr string
	}
	spans := []span{
		{1, "gateway", ptrace.SpanKindServer, 1, 0, "", ""},
		{1, "gateway", ptrace.SpanKindClient, 2, 1, "", "orders"},
		{1, "orders", ptrace.SpanKindServer, 3, 2, "", ""},
		{1, "orders", ptrace.SpanKindClient, 4, 3, "postgresql", ""},
		{1, "orders", ptrace.SpanKindClient, 5, 3, "", "payments"},
		{1, "payments", ptrace.SpanKindServer, 6, 5, "", ""},
		{2, "orders", ptrace.SpanKindServer, 7, 0, "", ""},
		{2, "orders", ptrace.SpanKindClient, 8, 7, "", "gateway"},
		{2, "gateway", ptrace.SpanKindServer, 9, 8, "", ""},
	}
	traces := make([]ptrace.Traces, len(spans))
	for i, s := range spans {
		td := traceSpan(s.trace, s.service, s.kind, s.id, s.parent, t0.Add(time.Minute+time.Duration(i)*time.Millisecond))
		attrs := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
		if s.db != "" {
			attrs.PutStr("db.system.name", s.db)
			attrs.PutStr("db.namespace", "shop")
		}
		if s.serverAddr != "" {
			attrs.PutStr("server.address", s.serverAddr)
		}
		traces[i] = td
	}
	tempo := sourcetest.NewTempo()
	for _, td := range traces {
		tempo.Add(td)
	}
	srv := httptest.NewServer(tempo.Handler())
	defer srv.Close()

	for _, tc := range []struct {
		name string
		// received are the services whose spans reach the model through
		// the receivers, before the pull.
		received []string
		// later is how long after them the pull hands its spans on: at
		// once (analyze: --traces files, then the sources), or a poll's
		// lag later, beyond the model's join window (serve).
		later time.Duration
	}{
		{"the others received", []string{"orders", "payments"}, 0},
		{"the others received, polled a lag later", []string{"orders", "payments"}, 2 * time.Minute},
		{"orders received, payments not", []string{"orders"}, 0},
		{"orders received, payments not, polled a lag later", []string{"orders"}, 2 * time.Minute},
		{"nothing received", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			now := t0
			m.SetClock(func() time.Time { return now })
			for i, s := range spans {
				if slices.Contains(tc.received, s.service) {
					msg, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(traces[i])
					if err != nil {
						t.Fatal(err)
					}
					if err := telemetry.DecodeTraceRequest(msg, "receiver", func(b []telemetry.Span) error { m.AddSpans(b); return nil }); err != nil {
						t.Fatal(err)
					}
				}
			}
			now = now.Add(tc.later)
			pull := source.Pull{Tempo: newPull(t, srv.URL, source.Auth{}, nil).Tempo, Services: []string{"gateway"}}
			if len(tc.received) > 0 {
				pull.Elsewhere = func(svc string) bool { return slices.Contains(tc.received, svc) }
			}
			if err := pull.Run(context.Background(), w, modelHandler{m}, func(err error) { t.Error(err) }); err != nil {
				t.Fatal(err)
			}
			snap := m.Snapshot()
			// Every span of every service once, received or pulled.
			want := map[string]int64{}
			for _, s := range spans {
				want[s.service]++
			}
			for svc, n := range want {
				got := snap.Service(svc)
				if got == nil {
					t.Errorf("service %s: not in the model", svc)
					continue
				}
				if got.Spans.All != n {
					t.Errorf("service %s: %d spans counted, want %d", svc, got.Spans.All, n)
				}
			}
			// The spans that join orders to gateway, handed on again with
			// gateway's, are copies of spans the model counted: orders'
			// SERVER span gateway called counts once, and joins gateway's
			// call whether its wait ended before the pull or not.
			if orders := snap.Service("orders"); orders != nil {
				i := slices.IndexFunc(orders.Endpoints, func(e model.Endpoint) bool { return e.Route == "orders 3" })
				if i < 0 || orders.Endpoints[i].Calls != 1 {
					t.Errorf("orders' endpoints: %+v, want the one gateway called called once", orders.Endpoints)
				}
				if got := orders.Spans; got.Server != 2 || got.Linked != 1 || got.Root != 1 || got.Pending+got.Unlinked != 0 {
					t.Errorf("orders' span counts: %+v, want 2 SERVER spans, one a root, one linked, none pending or unlinked", got)
				}
			}
			if orders := snap.Service("orders"); orders != nil && (len(orders.Stores) != 1 || orders.Stores[0].Calls != 1) {
				t.Errorf("orders' stores: %+v, want its database called once", orders.Stores)
			}
			for _, e := range []struct{ from, to string }{{"gateway", "orders"}, {"orders", "gateway"}, {"orders", "payments"}} {
				s := snap.Service(e.from)
				if s == nil {
					continue
				}
				i := slices.IndexFunc(s.Edges, func(ed model.Edge) bool { return ed.To == e.to })
				if i < 0 || s.Edges[i].Calls != 1 {
					t.Errorf("edges of %s: %+v, want one call to %s", e.from, s.Edges, e.to)
				}
			}
			if gw := snap.Service("gateway"); gw == nil || gw.Spans.Root != 1 || gw.Spans.Server != 2 {
				t.Errorf("gateway's span counts: %+v, want 2 SERVER spans, one of them a root (the other called by orders)", gw.Spans)
			}
		})
	}
}
