package model

import (
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// rabbit is the attributes of a RabbitMQ span: publish names the
// exchange, receive the queue.
func rabbit(dest, op string) telemetry.Attrs {
	return telemetry.Attrs{MessagingSystem: "rabbitmq", MessagingDestination: dest, MessagingOperation: op}
}

// linked is sp with links to the spans ids name.
func linked(sp telemetry.Span, ids ...byte) telemetry.Span {
	for _, id := range ids {
		sp.Links = append(sp.Links, telemetry.Link{TraceID: [16]byte{1}, SpanID: id8(id)})
	}
	return sp
}

// TestLinkJoins: a span that took messages (a receive CLIENT span, a
// CONSUMER span) and links to a PRODUCER span of another service is fed
// by it, whichever of the two arrives first (each waits until the bound
// of the join tables forgets it): an edge, and its destination known fed
// (Store.Linked). A link to a span of its own service, to a span that
// sends no message, or to its own parent joins nothing more.
func TestLinkJoins(t *testing.T) {
	const queue = "rabbitmq://orders.worker"
	publish := func(svc string, id byte) telemetry.Span {
		return span(svc, telemetry.SpanKindProducer, id, 1, "orders publish", rabbit("orders", "send"))
	}
	pull := func(svc string, id byte, links ...byte) telemetry.Span {
		return linked(span(svc, telemetry.SpanKindClient, id, 0, "orders.worker receive", rabbit("orders.worker", "receive")), links...)
	}
	tests := []struct {
		name   string
		max    int // MaxPendingSpans, 0: the default
		steps  []step
		edges  map[string]int64 // calls from each service to worker
		linked int64            // worker's Store.Linked of queue
	}{
		{name: "producer first", steps: []step{{0, []telemetry.Span{publish("checkout", 2)}}, {5 * time.Second, []telemetry.Span{pull("worker", 10, 2)}}},
			edges: map[string]int64{"checkout": 1}, linked: 1},
		{name: "link first", steps: []step{{0, []telemetry.Span{pull("worker", 10, 2)}}, {5 * time.Second, []telemetry.Span{publish("checkout", 2)}}},
			edges: map[string]int64{"checkout": 1}, linked: 1},
		// A link is kept until the table forgets it too: a pull of
		// selected services brings a PRODUCER span a poll after the
		// receivers brought the consumer's.
		{name: "link first, producer two windows later", steps: []step{{0, []telemetry.Span{pull("worker", 10, 2)}}, {61 * time.Second, []telemetry.Span{publish("checkout", 2)}}},
			edges: map[string]int64{"checkout": 1}, linked: 1},
		{name: "link first, producer ten minutes later", steps: []step{{0, []telemetry.Span{pull("worker", 10, 2)}}, {10 * time.Minute, []telemetry.Span{publish("checkout", 2)}}},
			edges: map[string]int64{"checkout": 1}, linked: 1},
		// A PRODUCER span is kept until the table forgets it, for its
		// message's consumers as for its CONSUMER spans.
		{name: "producer first, link two windows later", steps: []step{{0, []telemetry.Span{publish("checkout", 2)}}, {61 * time.Second, []telemetry.Span{pull("worker", 10, 2)}}},
			edges: map[string]int64{"checkout": 1}, linked: 1},
		{name: "a batch from two producers", steps: []step{{0, []telemetry.Span{publish("checkout", 2), pull("worker", 10, 2, 3)}}, {5 * time.Second, []telemetry.Span{publish("billing", 3)}}},
			edges: map[string]int64{"checkout": 1, "billing": 1}, linked: 2},
		{name: "two spans wait for one producer", steps: []step{{0, []telemetry.Span{pull("worker", 10, 2), pull("worker", 11, 2)}}, {5 * time.Second, []telemetry.Span{publish("checkout", 2)}}},
			edges: map[string]int64{"checkout": 2}, linked: 2},
		{name: "process spans under its own receive span", steps: []step{{0, []telemetry.Span{
			pull("worker", 10),
			linked(span("worker", telemetry.SpanKindConsumer, 11, 10, "orders.worker process", rabbit("orders.worker", "process")), 2),
			publish("checkout", 2),
		}}}, edges: map[string]int64{"checkout": 1}, linked: 1},
		{name: "its own message", steps: []step{{0, []telemetry.Span{publish("worker", 2), pull("worker", 10, 2)}}}},
		{name: "a link to a span that sends no message", steps: []step{{0, []telemetry.Span{
			span("checkout", telemetry.SpanKindClient, 2, 1, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "stock"}),
			pull("worker", 10, 2),
		}}}},
		{name: "a link to its own parent", steps: []step{{0, []telemetry.Span{
			publish("checkout", 2),
			linked(span("worker", telemetry.SpanKindConsumer, 11, 2, "orders.worker process", rabbit("orders.worker", "process")), 2),
		}}}, edges: map[string]int64{"checkout": 1}},
		{name: "forgotten by a full table", max: 4, steps: []step{
			{0, []telemetry.Span{pull("worker", 10, 2)}},
			{0, []telemetry.Span{pull("worker", 11, 50), pull("worker", 12, 51), pull("worker", 13, 52), pull("worker", 14, 53)}},
			{time.Second, []telemetry.Span{publish("checkout", 2)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := receive(tt.max, tt.steps).Snapshot()
			for _, svc := range []string{"checkout", "billing"} {
				var got int64
				if s := snap.Service(svc); s != nil {
					for _, e := range s.Edges {
						if e.To == "worker" {
							got = e.Calls
						}
					}
				}
				if got != tt.edges[svc] {
					t.Errorf("%s -> worker: %d calls, want %d", svc, got, tt.edges[svc])
				}
			}
			var got int64
			for _, st := range snap.Service("worker").Consumes {
				if st.Name == queue {
					got = st.Linked
					if st.Waiting && got > 0 {
						t.Errorf("%s waits for its producers, though linked", queue)
					}
				}
			}
			if got != tt.linked {
				t.Errorf("%s linked %d times, want %d", queue, got, tt.linked)
			}
		})
	}
}

// TestLinkedCONSUMERSpanStartsNoTrace: a CONSUMER span without a parent
// that links to its messages' creation contexts (a batch's process span)
// took its input through its destination (SpanCounts.Own), not from
// outside the traced system (Root), as does a receive span; without
// links, or without a destination to tell whose input it is, it starts a
// trace.
func TestLinkedCONSUMERSpanStartsNoTrace(t *testing.T) {
	process := func(dest string, links ...byte) telemetry.Span {
		return linked(span("worker", telemetry.SpanKindConsumer, 11, 0, "process", rabbit(dest, "process")), links...)
	}
	// Beyond max_stores (1 here, after a first destination) a
	// destination is not kept, and still named: who feeds it is not
	// known (Overflow.Consumes), which is no entry point either.
	first := span("worker", telemetry.SpanKindClient, 9, 0, "receive", rabbit("refunds", "receive"))
	tests := []struct {
		name      string
		before    []telemetry.Span
		sp        telemetry.Span
		own, root int64
	}{
		{name: "linked", sp: process("orders.worker", 2), own: 1},
		{name: "no links", sp: process("orders.worker"), root: 1},
		{name: "no destination", sp: process("", 2), root: 1},
		{name: "linked, destination beyond max_stores", before: []telemetry.Span{first}, sp: process("orders.worker", 2), own: 1},
		{name: "receive span, destination beyond max_stores", before: []telemetry.Span{first}, sp: span("worker", telemetry.SpanKindConsumer, 11, 0, "receive", rabbit("orders.worker", "receive")), own: 1},
		// A receive span of kind CONSUMER (semantic conventions before
		// v1.24, the Java agent's Kafka receive span) has no links: its
		// process spans do.
		{name: "receive span", sp: span("worker", telemetry.SpanKindConsumer, 11, 0, "receive", rabbit("orders.worker", "receive")), own: 1},
		{name: "receive span, no destination", sp: span("worker", telemetry.SpanKindConsumer, 11, 0, "receive", rabbit("", "receive")), root: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxStores = 1
			m := New(cfg, attribution.New(attribution.Config{}))
			m.SetClock(func() time.Time { return t0 })
			m.AddSpans(tt.before)
			m.AddSpans([]telemetry.Span{tt.sp})
			sc := m.Snapshot().Service("worker").Spans
			if sc.Own != tt.own || sc.Root != tt.root {
				t.Errorf("own %d, root %d; want %d, %d", sc.Own, sc.Root, tt.own, tt.root)
			}
		})
	}
}

// TestLinkedKept: a destination known fed through links stays so in a
// checkpoint restored, and in the merged view of shards, which add the
// links of each.
func TestLinkedKept(t *testing.T) {
	spans := []telemetry.Span{
		span("checkout", telemetry.SpanKindProducer, 2, 1, "publish", rabbit("orders", "send")),
		linked(span("worker", telemetry.SpanKindClient, 10, 0, "receive", rabbit("orders.worker", "receive")), 2),
	}
	m := newModel()
	m.AddSpans(spans)
	state, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored := New(DefaultConfig(), attribution.New(attribution.Config{}))
	if err := restored.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	merged, err := MergeStates(Joins{}, state, state)
	if err != nil {
		t.Fatal(err)
	}
	view := New(DefaultConfig(), attribution.New(attribution.Config{}))
	if err := view.UnmarshalBinary(merged); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		m      *Model
		linked int64
	}{{"restored", restored, 1}, {"merged", view, 2}} {
		if got := tt.m.Snapshot().Service("worker").Consumes[0].Linked; got != tt.linked {
			t.Errorf("%s: linked %d, want %d", tt.name, got, tt.linked)
		}
	}
}

// TestLinksInShard pins the known limit of a cluster (docs/scaling.md):
// links are not handed to the shared store (TakePending), and join a
// PRODUCER span of the same shard only; a link that waits keeps waiting
// in the shard across a checkpoint, while a PRODUCER span handed over
// joins no link that comes after.
func TestLinksInShard(t *testing.T) {
	publish := span("checkout", telemetry.SpanKindProducer, 2, 1, "publish", rabbit("orders", "send"))
	pull := linked(span("worker", telemetry.SpanKindClient, 10, 0, "receive", rabbit("orders.worker", "receive")), 2)
	tests := []struct {
		name          string
		first, second telemetry.Span
		linked        int64
	}{
		{"link first, checkpoint, producer", pull, publish, 1},
		{"producer first, checkpoint, link", publish, pull, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			m.AddSpans([]telemetry.Span{tt.first})
			p := m.TakePending()
			if len(p.Callees) != 0 {
				t.Errorf("callees handed over: %+v, want none (a link is no callee)", p.Callees)
			}
			m.AddSpans([]telemetry.Span{tt.second})
			if got := m.Snapshot().Service("worker").Consumes[0].Linked; got != tt.linked {
				t.Errorf("linked %d, want %d", got, tt.linked)
			}
		})
	}
}

// TestReceiveCONSUMERSpanCalls: a receive span of kind CONSUMER is the
// caller of the process spans under it, whichever arrives first: they
// join it as the service's own (SpanCounts.Own), none left waiting or
// unlinked.
func TestReceiveCONSUMERSpanCalls(t *testing.T) {
	recv := span("worker", telemetry.SpanKindConsumer, 3, 0, "orders receive", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "receive"})
	process := span("worker", telemetry.SpanKindConsumer, 4, 3, "orders process", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "process"})
	want := SpanCounts{All: 2, Consumer: 2, Own: 2}
	for _, tt := range []struct {
		name  string
		spans []telemetry.Span
	}{
		{"receive first", []telemetry.Span{recv, process}},
		{"process first", []telemetry.Span{process, recv}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := receive(0, []step{{0, tt.spans}, {2 * time.Minute, nil}})
			if got := m.Snapshot().Service("worker").Spans; got != want {
				t.Errorf("worker's spans: %+v, want %+v", got, want)
			}
		})
	}
}
