package assess

import (
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// otlpSpan is a span of an OTLP request: its service, kind, parent (0 for
// none) and attributes.
type otlpSpan struct {
	service string
	kind    ptrace.SpanKind
	parent  byte
	attrs   map[string]string
}

// modelOf decodes an OTLP request of spans, as an SDK exports them, into
// a model whose joins are settled.
func modelOf(t *testing.T, spans []otlpSpan) *model.Snapshot {
	t.Helper()
	return modelWith(t, model.DefaultConfig(), spans)
}

// modelWith is modelOf with a model of cfg.
func modelWith(t *testing.T, cfg model.Config, spans []otlpSpan) *model.Snapshot {
	t.Helper()
	td := ptrace.NewTraces()
	for i, sp := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", sp.service)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID([16]byte{1})
		s.SetSpanID([8]byte{byte(i + 1)})
		if sp.parent != 0 {
			s.SetParentSpanID([8]byte{sp.parent})
		}
		s.SetKind(sp.kind)
		s.SetName(sp.service)
		for k, v := range sp.attrs {
			s.Attributes().PutStr(k, v)
		}
	}
	req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	m := model.New(cfg, attribution.New(attribution.Config{}))
	if err := telemetry.DecodeTraceRequest(req, "test", func(s []telemetry.Span) error { m.AddSpans(s); return nil }); err != nil {
		t.Fatal(err)
	}
	m.Settle()
	return m.Snapshot()
}

// TestExposureOfPullConsumers: a service whose only messaging spans are
// CLIENT spans that pull messages (receive, or settle, under the current
// messaging.operation.type or the older messaging.operation) takes input
// from the destinations it pulls from: it is internal when traced
// services produce to all of them, exposed when no traced service
// produces to one (fed from outside the traced system), and has no input
// only when it pulls what it produced itself.
func TestExposureOfPullConsumers(t *testing.T) {
	msg := func(dest, key, op string) map[string]string {
		return map[string]string{"messaging.system": "kafka", "messaging.destination.name": dest, key: op}
	}
	const opType = "messaging.operation.type"
	// checkout is exposed and produces to orders.
	checkout := []otlpSpan{
		{"checkout", ptrace.SpanKindServer, 0, map[string]string{"http.request.method": "POST", "http.route": "/orders", "client.address": "203.0.113.7"}},
		{"checkout", ptrace.SpanKindProducer, 1, msg("orders", opType, "send")},
	}
	// poller's spans start at 3; its database call is under its first.
	db := otlpSpan{"poller", ptrace.SpanKindClient, 3, map[string]string{"db.system.name": "postgresql", "db.namespace": "shop", "db.collection.name": "customers"}}
	tests := []struct {
		name   string
		poller []otlpSpan
		want   Exposure
		rule   string
	}{
		{
			name:   "receive from a destination a traced service produces to",
			poller: []otlpSpan{{"poller", ptrace.SpanKindClient, 0, msg("orders", opType, "receive")}, db},
			want:   Internal, rule: "fed only by traced services: no SERVER/CONSUMER spans, and traced services produce to kafka://orders",
		},
		{
			name:   "receive under the older messaging.operation",
			poller: []otlpSpan{{"poller", ptrace.SpanKindClient, 0, msg("orders", "messaging.operation", "receive")}, db},
			want:   Internal, rule: "fed only by traced services",
		},
		{
			name:   "settle only",
			poller: []otlpSpan{{"poller", ptrace.SpanKindClient, 0, msg("orders", opType, "settle")}, db},
			want:   Internal, rule: "fed only by traced services",
		},
		{
			name:   "receive from a destination no traced service produces to",
			poller: []otlpSpan{{"poller", ptrace.SpanKindClient, 0, msg("partner-events", opType, "receive")}, db},
			want:   Exposed, rule: "fed from outside the traced system: no SERVER/CONSUMER spans, and no traced service produces to kafka://partner-events",
		},
		{
			name: "receive from both",
			poller: []otlpSpan{
				{"poller", ptrace.SpanKindClient, 0, msg("orders", opType, "receive")}, db,
				{"poller", ptrace.SpanKindClient, 0, msg("partner-events", opType, "receive")},
			},
			want: Exposed, rule: "no traced service produces to kafka://partner-events,",
		},
		{
			name: "receive from its own retry topic only",
			poller: []otlpSpan{
				{"poller", ptrace.SpanKindClient, 0, msg("orders-retry", opType, "receive")}, db,
				{"poller", ptrace.SpanKindProducer, 3, msg("orders-retry", opType, "send")},
			},
			want: NoInput, rule: "takes messages only from destinations it produces to itself",
		},
		{
			name: "receive from its own retry topic and another fed by a traced service",
			poller: []otlpSpan{
				{"poller", ptrace.SpanKindClient, 0, msg("orders-retry", opType, "receive")}, db,
				{"poller", ptrace.SpanKindProducer, 3, msg("orders-retry", opType, "send")},
				{"poller", ptrace.SpanKindClient, 0, msg("orders", opType, "receive")},
			},
			want: Internal, rule: "traced services produce to kafka://orders,",
		},
		{
			name:   "a batch job: sends, consumes nothing",
			poller: []otlpSpan{{"poller", ptrace.SpanKindProducer, 0, msg("orders", opType, "send")}, db},
			want:   NoInput, rule: "no SERVER or CONSUMER spans",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := modelOf(t, append(append([]otlpSpan(nil), checkout...), tt.poller...))
			got := New(DefaultConfig(), nil, snap).Exposure("poller")
			if got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}

// TestExposureOfBatchReceivingConsumers: a consumer whose process
// (CONSUMER) spans are children of its own receive CLIENT span (batch
// receiving, as the OpenTelemetry Java agent records it with its
// messaging receive telemetry on), or of its own PRODUCER span (a message
// it sent itself), was not called by a traced service: its input came
// through the destination, so its exposure comes from the destinations it
// consumes from, as a pull consumer's does.
func TestExposureOfBatchReceivingConsumers(t *testing.T) {
	msg := func(dest, op string) map[string]string {
		return map[string]string{"messaging.system": "kafka", "messaging.destination.name": dest, "messaging.operation.type": op}
	}
	// checkout is exposed and produces to orders.
	checkout := []otlpSpan{
		{"checkout", ptrace.SpanKindServer, 0, map[string]string{"http.request.method": "POST", "http.route": "/orders", "client.address": "203.0.113.7"}},
		{"checkout", ptrace.SpanKindProducer, 1, msg("orders", "send")},
	}
	// worker's spans start at 3: a receive span and the process spans of
	// the batch it received, under it.
	batch := func(dest string) []otlpSpan {
		return []otlpSpan{
			{"worker", ptrace.SpanKindClient, 0, msg(dest, "receive")},
			{"worker", ptrace.SpanKindConsumer, 3, msg(dest, "process")},
			{"worker", ptrace.SpanKindConsumer, 3, msg(dest, "process")},
		}
	}
	tests := []struct {
		name   string
		worker []otlpSpan
		want   Exposure
		rule   string
	}{
		{
			name:   "a batch from a destination no traced service produces to",
			worker: batch("partner-events"),
			want:   Exposed, rule: "fed from outside the traced system: no traced service produces to kafka://partner-events, whose messages 2 of 2 SERVER/CONSUMER spans process under a span of the service",
		},
		{
			name:   "a batch from a destination a traced service produces to",
			worker: batch("orders"),
			want:   Internal, rule: "fed only by traced services: traced services produce to kafka://orders, whose messages 2 of 2 SERVER/CONSUMER spans process",
		},
		{
			name:   "a batch from its own retry topic",
			worker: append(batch("orders-retry"), otlpSpan{"worker", ptrace.SpanKindProducer, 4, msg("orders-retry", "send")}),
			want:   NoInput, rule: "its 2 SERVER/CONSUMER spans take their input from the service itself: calls to itself, or messages of destinations it produces to itself",
		},
		{
			name: "a batch from a destination a traced service produces to, and one from outside",
			worker: append(batch("orders"),
				otlpSpan{"worker", ptrace.SpanKindClient, 0, msg("partner-events", "receive")},
				otlpSpan{"worker", ptrace.SpanKindConsumer, 6, msg("partner-events", "process")}),
			want: Exposed, rule: "no traced service produces to kafka://partner-events,",
		},
		{
			// The message it sent itself is no call of a traced service:
			// the other, whose producer is not traced, was the input.
			name: "a message it sent itself, and one whose producer is not traced",
			worker: []otlpSpan{
				{"worker", ptrace.SpanKindConsumer, 99, msg("partner-events", "process")},
				{"worker", ptrace.SpanKindProducer, 3, msg("partner-events-retry", "send")},
				{"worker", ptrace.SpanKindConsumer, 4, msg("partner-events-retry", "process")},
			},
			want: Exposed, rule: "no traced service produces to kafka://partner-events,",
		},
		{
			name: "a batch from its own retry topic, and a call of a traced service",
			worker: append(batch("orders-retry"),
				otlpSpan{"worker", ptrace.SpanKindProducer, 4, msg("orders-retry", "send")},
				otlpSpan{"checkout", ptrace.SpanKindClient, 1, map[string]string{"http.request.method": "GET", "server.address": "worker"}},
				otlpSpan{"worker", ptrace.SpanKindServer, 7, map[string]string{"http.request.method": "GET", "http.route": "/stock"}}),
			want: Internal, rule: "only called by traced services (1 of 3 SERVER/CONSUMER spans joined to their caller)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := modelOf(t, append(append([]otlpSpan(nil), checkout...), tt.worker...))
			got := New(DefaultConfig(), nil, snap).Exposure("worker")
			if got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}

// TestExposureOfSelfCalls: a SERVER span of a service under an HTTP
// CLIENT span of the same service (a job of its own calling its API, an
// endpoint calling another of the service's) was called by the service
// itself, no traced caller: it says nothing of who else sends the
// service requests.
func TestExposureOfSelfCalls(t *testing.T) {
	get := map[string]string{"http.request.method": "GET", "server.address": "api"}
	route := map[string]string{"http.request.method": "GET", "http.route": "/stock"}
	// api's job (an INTERNAL span that starts a trace) calls api itself.
	job := []otlpSpan{
		{"api", ptrace.SpanKindInternal, 0, nil},
		{"api", ptrace.SpanKindClient, 1, get},
		{"api", ptrace.SpanKindServer, 2, route},
	}
	tests := []struct {
		name string
		api  []otlpSpan
		want Exposure
		rule string
	}{
		{
			name: "calls to itself, and one of an untraced caller",
			api:  append(append([]otlpSpan(nil), job...), otlpSpan{"api", ptrace.SpanKindServer, 99, route}),
			want: Exposed, rule: "called from outside the traced system: 1 of 2 SERVER/CONSUMER spans found no traced caller",
		},
		{
			name: "calls to itself only",
			api:  job,
			want: NoInput, rule: "its 1 SERVER/CONSUMER spans take their input from the service itself",
		},
		{
			name: "calls to itself, and one of a traced service",
			api: append(append([]otlpSpan(nil), job...),
				otlpSpan{"checkout", ptrace.SpanKindClient, 0, get},
				otlpSpan{"api", ptrace.SpanKindServer, 4, route}),
			want: Internal, rule: "only called by traced services (1 of 2 SERVER/CONSUMER spans joined to their caller)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(DefaultConfig(), nil, modelOf(t, tt.api)).Exposure("api")
			if got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}

// TestExposureWithCallersNotFound: a service some of whose SERVER or
// CONSUMER spans joined a traced caller and others found none within the
// join window stays internal (the callers' SDK may have dropped their
// spans, docs/priority.md), but its rule says how many found none: it is
// not "only called by traced services". Before, it said so whatever the
// spans that found no caller.
func TestExposureWithCallersNotFound(t *testing.T) {
	get := map[string]string{"http.request.method": "GET", "server.address": "orders"}
	route := map[string]string{"http.request.method": "GET", "http.route": "/orders"}
	msg := func(dest, op string) map[string]string {
		return map[string]string{"messaging.system": "kafka", "messaging.destination.name": dest, "messaging.operation.type": op}
	}
	// checkout (spans 1, 2) produces to kafka://orders; gateway (3, 4)
	// calls orders, whose spans start at 5.
	traced := []otlpSpan{
		{"checkout", ptrace.SpanKindServer, 0, nil},
		{"checkout", ptrace.SpanKindProducer, 1, msg("orders", "send")},
		{"gateway", ptrace.SpanKindServer, 0, nil},
		{"gateway", ptrace.SpanKindClient, 3, get},
		{"orders", ptrace.SpanKindServer, 4, route},
	}
	// A batch orders received from kafka://orders with its span receive,
	// one of whose messages' process span is under a producer span that
	// never arrived.
	batch := func(receive byte) []otlpSpan {
		return []otlpSpan{
			{"orders", ptrace.SpanKindClient, 0, msg("orders", "receive")},
			{"orders", ptrace.SpanKindConsumer, receive, msg("orders", "process")},
			{"orders", ptrace.SpanKindConsumer, 99, msg("orders", "process")},
		}
	}
	tests := []struct {
		name   string
		orders []otlpSpan
		want   string
	}{
		{
			name:   "every span joined its caller",
			orders: traced,
			want:   "only called by traced services (1 of 1 SERVER/CONSUMER spans joined to their caller)",
		},
		{
			name:   "one span found no caller",
			orders: append(slices.Clone(traced), otlpSpan{"orders", ptrace.SpanKindServer, 99, route}),
			want:   "called by traced services (1 of 2 SERVER/CONSUMER spans joined to their caller; 1 found no traced caller within the join window: an untraced caller, or caller spans lost)",
		},
		{
			name:   "a batch of a destination traced services produce to, one message's producer not found",
			orders: append(slices.Clone(traced[:2]), batch(3)...),
			want:   "fed by traced services: traced services produce to kafka://orders, whose messages 1 of 2 SERVER/CONSUMER spans process under a span of the service's own (its receive span, a message it sent, or a call to itself) or in a trace of their own linked to the messages' spans; 1 found no traced caller within the join window: an untraced caller, or caller spans lost",
		},
		{
			name:   "a call and a batch, one message's producer not found",
			orders: append(slices.Clone(traced), batch(6)...),
			want:   "called by traced services (1 of 3 SERVER/CONSUMER spans joined to their caller; 1 process messages of kafka://orders, which traced services produce to; 1 found no traced caller within the join window: an untraced caller, or caller spans lost)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(DefaultConfig(), nil, modelOf(t, tt.orders)).Exposure("orders")
			if want := (ExposureResult{Level: Internal, Rule: tt.want}); got != want {
				t.Errorf("exposure = %+v, want %+v", got, want)
			}
		})
	}
}

// TestExposureOfConsumersBeyondMaxStores: a destination a service
// consumes from beyond model.Config.MaxStores is not kept, so who
// produces to it is not known: the destinations kept cannot say the
// service has no input, or only traced services' (unknown), though one
// that no traced service produces to still makes it exposed.
func TestExposureOfConsumersBeyondMaxStores(t *testing.T) {
	msg := func(dest, op string) map[string]string {
		return map[string]string{"messaging.system": "kafka", "messaging.destination.name": dest, "messaging.operation.type": op}
	}
	// checkout is exposed and produces to orders.
	checkout := []otlpSpan{
		{"checkout", ptrace.SpanKindServer, 0, map[string]string{"http.request.method": "POST", "http.route": "/orders", "client.address": "203.0.113.7"}},
		{"checkout", ptrace.SpanKindProducer, 1, msg("orders", "send")},
	}
	// worker's spans start at 3.
	tests := []struct {
		name   string
		worker []otlpSpan
		want   Exposure
		rule   string
	}{
		{
			name: "pulls from its own retry topic, and from one beyond max_stores",
			worker: []otlpSpan{
				{"worker", ptrace.SpanKindClient, 0, msg("orders-retry", "receive")},
				{"worker", ptrace.SpanKindProducer, 0, msg("orders-retry", "send")},
				{"worker", ptrace.SpanKindClient, 0, msg("partner-events", "receive")},
			},
			want: ExposureUnknown, rule: "consumes from destinations beyond max_stores (1 call), whose producers are not known",
		},
		{
			name: "pulls from a topic a traced service produces to, and from one beyond max_stores",
			worker: []otlpSpan{
				{"worker", ptrace.SpanKindClient, 0, msg("orders", "receive")},
				{"worker", ptrace.SpanKindClient, 0, msg("partner-events", "receive")},
			},
			want: ExposureUnknown, rule: "consumes from destinations beyond max_stores (1 call)",
		},
		{
			name: "a batch from its own retry topic, and one from a topic beyond max_stores",
			worker: []otlpSpan{
				{"worker", ptrace.SpanKindClient, 0, msg("orders-retry", "receive")},
				{"worker", ptrace.SpanKindConsumer, 3, msg("orders-retry", "process")},
				{"worker", ptrace.SpanKindProducer, 0, msg("orders-retry", "send")},
				{"worker", ptrace.SpanKindClient, 0, msg("partner-events", "receive")},
				{"worker", ptrace.SpanKindConsumer, 6, msg("partner-events", "process")},
			},
			want: ExposureUnknown, rule: "consumes from destinations beyond max_stores (2 calls)",
		},
		{
			name: "pulls from a topic no traced service produces to, and from one beyond max_stores",
			worker: []otlpSpan{
				{"worker", ptrace.SpanKindClient, 0, msg("partner-events", "receive")},
				{"worker", ptrace.SpanKindClient, 0, msg("orders", "receive")},
			},
			want: Exposed, rule: "no traced service produces to kafka://partner-events",
		},
	}
	cfg := model.DefaultConfig()
	cfg.MaxStores = 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := modelWith(t, cfg, append(append([]otlpSpan(nil), checkout...), tt.worker...))
			got := New(DefaultConfig(), nil, snap).Exposure("worker")
			if got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}

// TestExposureOfConsumersOfProducersBeyondMaxStores: a destination a
// service produces to beyond model.Config.MaxStores is not kept among its
// stores, so it is not known to have that producer; its consumers are not
// fed from outside the traced system for that (unknown). Before, they
// were exposed, and serve alerted exposed_to_sensitive_store for them.
func TestExposureOfConsumersOfProducersBeyondMaxStores(t *testing.T) {
	msg := func(dest, op string) map[string]string {
		return map[string]string{"messaging.system": "kafka", "messaging.destination.name": dest, "messaging.operation.type": op}
	}
	// checkout produces to audit, then to orders beyond max_stores (1).
	checkout := []otlpSpan{
		{"checkout", ptrace.SpanKindServer, 0, map[string]string{"http.request.method": "POST", "http.route": "/orders"}},
		{"checkout", ptrace.SpanKindProducer, 1, msg("audit", "send")},
		{"checkout", ptrace.SpanKindProducer, 1, msg("orders", "send")},
	}
	// worker's spans start at 4.
	tests := []struct {
		name   string
		worker []otlpSpan
		want   Exposure
		rule   string
	}{
		{
			name:   "pulls from the destination beyond the producer's max_stores",
			worker: []otlpSpan{{"worker", ptrace.SpanKindClient, 0, msg("orders", "receive")}},
			want:   ExposureUnknown, rule: "no traced service is known to produce to kafka://orders, but checkout produces to destinations beyond max_stores (1 call), whose names are not kept",
		},
		{
			name: "a batch of the destination beyond the producer's max_stores",
			worker: []otlpSpan{
				{"worker", ptrace.SpanKindClient, 0, msg("orders", "receive")},
				{"worker", ptrace.SpanKindConsumer, 4, msg("orders", "process")},
			},
			want: ExposureUnknown, rule: "no traced service is known to produce to kafka://orders, but checkout produces",
		},
		{
			name:   "pulls from a destination the producer keeps",
			worker: []otlpSpan{{"worker", ptrace.SpanKindClient, 0, msg("audit", "receive")}},
			want:   Internal, rule: "fed only by traced services",
		},
	}
	cfg := model.DefaultConfig()
	cfg.MaxStores = 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := modelWith(t, cfg, append(slices.Clone(checkout), tt.worker...))
			got := New(DefaultConfig(), nil, snap).Exposure("worker")
			if got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}

// TestExposureRoutedByIngress: a service in exposure.ingress passes its
// exposure on to what it routes to: the services it calls, and those
// that consume from a destination it produces to, however they take the
// messages. Before, a consumer whose CONSUMER span was under the
// ingress's PRODUCER span (an edge) was exposed, and a pull or
// batch-receiving consumer of the same destination was internal.
func TestExposureRoutedByIngress(t *testing.T) {
	msg := func(dest, op string) map[string]string {
		return map[string]string{"messaging.system": "kafka", "messaging.destination.name": dest, "messaging.operation.type": op}
	}
	// gateway (spans 1 to 3) calls orders and produces to kafka://orders;
	// the consumer's spans start at 4.
	gateway := []otlpSpan{
		{"gateway", ptrace.SpanKindServer, 0, map[string]string{"http.request.method": "POST", "http.route": "/orders"}},
		{"gateway", ptrace.SpanKindClient, 1, map[string]string{"http.request.method": "POST", "server.address": "orders"}},
		{"gateway", ptrace.SpanKindProducer, 1, msg("orders", "send")},
	}
	tests := []struct {
		name     string
		consumer []otlpSpan
		svc      string
		rule     string
	}{
		{"called", []otlpSpan{{"orders", ptrace.SpanKindServer, 2, map[string]string{"http.request.method": "POST", "http.route": "/orders"}}},
			"orders", "routed to by ingress gateway (config: exposure.ingress)"},
		{"a push consumer", []otlpSpan{{"worker", ptrace.SpanKindConsumer, 3, msg("orders", "process")}},
			"worker", "routed to by ingress gateway (config: exposure.ingress)"},
		{"a pull consumer", []otlpSpan{{"worker", ptrace.SpanKindClient, 0, msg("orders", "receive")}},
			"worker", "routed to by ingress gateway through kafka://orders (config: exposure.ingress)"},
		{"a batch-receiving consumer", []otlpSpan{
			{"worker", ptrace.SpanKindClient, 0, msg("orders", "receive")},
			{"worker", ptrace.SpanKindConsumer, 4, msg("orders", "process")},
		}, "worker", "routed to by ingress gateway through kafka://orders (config: exposure.ingress)"},
	}
	cfg := DefaultConfig()
	cfg.Exposure.Ingress = []string{"gateway"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := modelOf(t, append(slices.Clone(gateway), tt.consumer...))
			got := New(cfg, nil, snap).Exposure(tt.svc)
			if want := (ExposureResult{Level: Exposed, Rule: tt.rule}); got != want {
				t.Errorf("exposure = %+v, want %+v", got, want)
			}
		})
	}
	// The ingress passes its exposure one hop on, through a call or a
	// destination alike (docs/priority.md): the services behind it are
	// judged by their own spans, as behind any entry point.
	t.Run("two hops", func(t *testing.T) {
		snap := modelOf(t, append(slices.Clone(gateway),
			otlpSpan{"orders", ptrace.SpanKindServer, 2, map[string]string{"http.request.method": "POST", "http.route": "/orders"}},
			otlpSpan{"orders", ptrace.SpanKindClient, 4, map[string]string{"http.request.method": "POST", "server.address": "payments"}},
			otlpSpan{"payments", ptrace.SpanKindServer, 5, map[string]string{"http.request.method": "POST", "http.route": "/pay"}},
			otlpSpan{"worker", ptrace.SpanKindConsumer, 3, msg("orders", "process")},
			otlpSpan{"worker", ptrace.SpanKindProducer, 7, msg("mail", "send")},
			otlpSpan{"mailer", ptrace.SpanKindConsumer, 8, msg("mail", "process")},
		))
		a := New(cfg, nil, snap)
		for _, svc := range []string{"payments", "mailer"} {
			if got := a.Exposure(svc); got.Level != Internal {
				t.Errorf("%s two hops behind the ingress: exposure = %+v, want internal", svc, got)
			}
		}
	})
}

// TestExposureOfProbedServices: the kubelet's probes, a load balancer's
// health checks and Prometheus's scrapes start traces of their own, and
// Google Cloud's health checkers call from public addresses; none of
// them is input from outside the traced system. Before, every service
// the kubelet probed was an entry point, exposed.
func TestExposureOfProbedServices(t *testing.T) {
	get := map[string]string{"http.request.method": "GET", "server.address": "orders"}
	route := map[string]string{"http.request.method": "GET", "http.route": "/orders"}
	// gateway (spans 1, 2) calls orders (3).
	traced := []otlpSpan{
		{"gateway", ptrace.SpanKindServer, 0, map[string]string{"client.address": "203.0.113.9"}},
		{"gateway", ptrace.SpanKindClient, 1, get},
		{"orders", ptrace.SpanKindServer, 2, route},
	}
	probe := func(attrs ...string) otlpSpan {
		m := map[string]string{"http.request.method": "GET"}
		for i := 0; i < len(attrs); i += 2 {
			m[attrs[i]] = attrs[i+1]
		}
		return otlpSpan{"orders", ptrace.SpanKindServer, 0, m}
	}
	tests := []struct {
		name  string
		spans []otlpSpan
		want  Exposure
		rule  string
	}{
		{"kubelet probe", append(traced, probe("http.route", "/live", "user_agent.original", "kube-probe/1.31", "client.address", "10.0.3.1")),
			Internal, "only called by traced services (1 of 1 SERVER/CONSUMER spans joined to their caller)"},
		{"health check of a load balancer from a public range", append(traced, probe("url.path", "/", "user_agent.original", "GoogleHC/1.0", "client.address", "35.191.4.7")),
			Internal, "only called by traced services (1 of 1"},
		{"a container's HEALTHCHECK with curl", append(traced, probe("http.route", "/healthz", "user_agent.original", "curl/8.5.0", "client.address", "127.0.0.1")),
			Internal, "only called by traced services (1 of 1"},
		{"Prometheus scrape", append(traced, probe("url.path", "/metrics", "user_agent.original", "Prometheus/3.1.0")),
			Internal, "only called by traced services (1 of 1"},
		{"gRPC health check", append(traced, otlpSpan{"orders", ptrace.SpanKindServer, 0, map[string]string{"rpc.system": "grpc", "rpc.service": "grpc.health.v1.Health", "rpc.method": "Check"}}),
			Internal, "only called by traced services (1 of 1"},
		{"probes only", []otlpSpan{probe("http.route", "/readyz", "user_agent.original", "kube-probe/1.31")},
			NoInput, "no SERVER or CONSUMER spans but 1 health checks or metrics scrapes"},
		{"a request of an untraced caller still starts a trace", append(traced, probe("http.route", "/orders", "user_agent.original", "Mozilla/5.0", "client.address", "10.0.3.1")),
			Exposed, "entry point: 1 of 2 SERVER/CONSUMER spans start a trace"},
		{"a checker's User-Agent from a public address is no probe", append(traced, probe("http.route", "/orders", "user_agent.original", "kube-probe/1.31", "client.address", "198.51.100.7")),
			Exposed, "entry point: 1 of 2 SERVER/CONSUMER spans start a trace"},
		{"a health path asked from a public address is no probe", append(traced, probe("http.route", "/healthz", "client.address", "198.51.100.7")),
			Exposed, "entry point: 1 of 2"},
		{"Google's health checker's User-Agent from elsewhere is no probe", append(traced, probe("url.path", "/", "user_agent.original", "GoogleHC/1.0", "client.address", "198.51.100.7")),
			Exposed, "entry point: 1 of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(DefaultConfig(), nil, modelOf(t, tt.spans)).Exposure("orders")
			if got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}
