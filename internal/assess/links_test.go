package assess

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// linkedSpan is a span of an OTLP request: its service, kind, id and
// parent (0 for none), the ids of the spans it links to, and its
// attributes.
type linkedSpan struct {
	service    string
	kind       ptrace.SpanKind
	id, parent byte
	links      []byte
	attrs      map[string]string
}

// linkedSpans encodes spans as an SDK exports them, with pdata, and
// decodes them with the decoder evident's receivers use. The linked
// spans are of the producer's trace, the others of the consumer's.
func linkedSpans(t *testing.T, spans []linkedSpan) []telemetry.Span {
	t.Helper()
	if len(spans) == 0 {
		return nil
	}
	td := ptrace.NewTraces()
	for _, sp := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", sp.service)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID([16]byte{15: sp.id})
		s.SetSpanID(id8(sp.id))
		if sp.parent != 0 {
			s.SetTraceID([16]byte{15: sp.parent})
			s.SetParentSpanID(id8(sp.parent))
		}
		for _, l := range sp.links {
			link := s.Links().AppendEmpty()
			link.SetTraceID([16]byte{15: 1})
			link.SetSpanID(id8(l))
		}
		s.SetKind(sp.kind)
		s.SetName(sp.service)
		s.SetStartTimestamp(1)
		for k, v := range sp.attrs {
			s.Attributes().PutStr(k, v)
		}
	}
	req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	var out []telemetry.Span
	if err := telemetry.DecodeTraceRequest(req, "test", func(s []telemetry.Span) error { out = append(out, s...); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExposureOfLinkedConsumers: checkout publishes to the RabbitMQ
// exchange orders; worker receives from its queue orders.worker, a
// destination no traced service names, and its spans link to checkout's
// PRODUCER span, the messages' creation context, as the semantic
// conventions ask of a pull or batch consumer (and the OpenTelemetry Java
// agent's RabbitMQ and JMS receive spans, Google's Pub/Sub subscribe
// spans do). worker is fed by checkout, whichever span arrives first:
// internal, and checkout's blast radius reaches worker's database.
// Before, evident decoded no link, and worker was exposed once the join
// window had passed (fed from outside the traced system), and checkout's
// blast radius missed shop/customers.
func TestExposureOfLinkedConsumers(t *testing.T) {
	msg := func(dest, op string) map[string]string {
		return map[string]string{"messaging.system": "rabbitmq", "messaging.destination.name": dest, "messaging.operation.type": op}
	}
	db := func(parent byte) linkedSpan {
		return linkedSpan{"worker", ptrace.SpanKindClient, 9, parent, nil, map[string]string{"db.system.name": "postgresql", "db.namespace": "shop", "db.collection.name": "customers"}}
	}
	producer := []linkedSpan{
		{"checkout", ptrace.SpanKindServer, 1, 0, nil, map[string]string{"http.request.method": "POST", "http.route": "/orders"}},
		{"checkout", ptrace.SpanKindProducer, 2, 1, nil, msg("orders", "send")},
	}
	consumers := []struct {
		name  string
		spans []linkedSpan
	}{
		{"pull: receive CLIENT span", []linkedSpan{
			{"worker", ptrace.SpanKindClient, 3, 0, []byte{2}, msg("orders.worker", "receive")}, db(3),
		}},
		{"batch: process CONSUMER span under its own receive span", []linkedSpan{
			{"worker", ptrace.SpanKindClient, 3, 0, nil, msg("orders.worker", "receive")},
			{"worker", ptrace.SpanKindConsumer, 4, 3, []byte{2}, msg("orders.worker", "process")}, db(4),
		}},
		{"CONSUMER span that starts a trace", []linkedSpan{
			{"worker", ptrace.SpanKindConsumer, 3, 0, []byte{2}, msg("orders.worker", "process")}, db(3),
		}},
	}
	tests := []struct {
		name            string
		first, then     bool // the producer's spans arrive first, or a while after the consumer's
		after           time.Duration
		settle          bool
		want            Exposure
		rule            string
		reachesOrdersDB bool
	}{
		{name: "producer first", first: true, after: time.Minute, want: Internal, rule: "fed only by traced services", reachesOrdersDB: true},
		{name: "consumer first", then: true, after: 5 * time.Second, want: Internal, rule: "fed only by traced services", reachesOrdersDB: true},
		{name: "consumer first, window passed", then: true, after: time.Minute, want: Internal, rule: "fed only by traced services", reachesOrdersDB: true},
		{name: "input all read", then: true, settle: true, want: Internal, rule: "fed only by traced services", reachesOrdersDB: true},
		{name: "no producer, window passed", after: time.Minute, want: Exposed, rule: "fed from outside the traced system"},
	}
	for _, c := range consumers {
		for _, tt := range tests {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				now := t0
				m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
				m.SetClock(func() time.Time { return now })
				if tt.first {
					m.AddSpans(linkedSpans(t, producer))
				}
				m.AddSpans(linkedSpans(t, c.spans))
				if tt.then {
					now = now.Add(5 * time.Second)
					m.AddSpans(linkedSpans(t, producer))
				}
				now = now.Add(tt.after)
				if tt.settle {
					m.Settle()
				}
				a := New(DefaultConfig(), nil, m.Snapshot())
				if got := a.Exposure("worker"); got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
					t.Errorf("worker's exposure = %s (%s), want %s (...%s...)", got.Level, got.Rule, tt.want, tt.rule)
				}
				reaches := slices.ContainsFunc(a.BlastRadius("checkout"), func(s StoreRef) bool { return s.Name == "postgresql://shop/customers" })
				if reaches != tt.reachesOrdersDB {
					t.Errorf("checkout's blast radius reaches postgresql://shop/customers: %v, want %v (%v)", reaches, tt.reachesOrdersDB, a.BlastRadius("checkout"))
				}
			})
		}
	}
}

// TestExposureOfReceiveCONSUMERSpan: the OpenTelemetry Java agent with
// its messaging receive telemetry on makes a Kafka consumer's receive
// span of kind CONSUMER (the semantic conventions gave receive spans that
// kind until v1.24), with no parent and no links, since it takes a batch
// of messages whose contexts its process spans link to. Such a span
// takes its input through the destination it names, as a receive CLIENT
// span does: its producers tell whose input it is. It counted as a
// request that entered the traced system there, and every such consumer
// was exposed.
func TestExposureOfReceiveCONSUMERSpan(t *testing.T) {
	msg := func(dest, op string) map[string]string {
		return map[string]string{"messaging.system": "kafka", "messaging.destination.name": dest, "messaging.operation": op}
	}
	producer := []linkedSpan{
		{"checkout", ptrace.SpanKindServer, 1, 0, nil, map[string]string{"http.request.method": "POST", "http.route": "/orders"}},
		{"checkout", ptrace.SpanKindProducer, 2, 1, nil, msg("orders", "publish")},
	}
	tests := []struct {
		name     string
		spans    []linkedSpan
		producer bool
		want     Exposure
		rule     string
	}{
		{"receive span alone", []linkedSpan{
			{"worker", ptrace.SpanKindConsumer, 3, 0, nil, msg("orders", "receive")},
		}, true, Internal, "fed only by traced services"},
		{"receive span, process spans under it linked", []linkedSpan{
			{"worker", ptrace.SpanKindConsumer, 3, 0, nil, msg("orders", "receive")},
			{"worker", ptrace.SpanKindConsumer, 4, 3, []byte{2}, msg("orders", "process")},
		}, true, Internal, "fed only by traced services"},
		{"receive span of a topic no traced service produces to", []linkedSpan{
			{"worker", ptrace.SpanKindConsumer, 3, 0, nil, msg("partner-events", "receive")},
		}, true, Exposed, "fed from outside the traced system"},
		// A process span that starts a trace without links came with no
		// context: whoever sent it is not known to be traced.
		{"process span without parent or links", []linkedSpan{
			{"worker", ptrace.SpanKindConsumer, 3, 0, nil, msg("orders", "process")},
		}, true, Exposed, "entry point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			m.SetClock(func() time.Time { return now })
			if tt.producer {
				m.AddSpans(linkedSpans(t, producer))
			}
			m.AddSpans(linkedSpans(t, tt.spans))
			now = now.Add(time.Minute)
			a := New(DefaultConfig(), nil, m.Snapshot())
			if got := a.Exposure("worker"); got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("worker's exposure = %s (%s), want %s (...%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}
