package model

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// joinInGo matches pending callers and callees by span id, as the shared
// store does (a PRODUCER caller joins every consumer and keeps waiting),
// and returns the joined calls and what is left waiting.
func joinInGo(callers []PendingCaller, callees []PendingCallee) ([]JoinedCall, []PendingCaller, []PendingCallee) {
	byID := map[[8]byte]PendingCaller{}
	for _, c := range callers {
		byID[c.SpanID] = c
	}
	var calls []JoinedCall
	var leftCallees []PendingCallee
	matched := map[[8]byte]bool{}
	for _, e := range callees {
		if c, ok := byID[e.ParentSpanID]; ok {
			calls = append(calls, JoinedCall{Caller: c, Callee: e.Service})
			matched[c.SpanID] = true
			continue
		}
		leftCallees = append(leftCallees, e)
	}
	var left []PendingCaller
	for _, c := range callers {
		if !matched[c.SpanID] || c.Producer {
			left = append(left, c)
		}
	}
	return calls, left, leftCallees
}

// TestShardsMerge feeds the shop's spans and a profile to one model, and
// the same split by service to two shards whose pending calls are
// joined outside them, checkpoint by checkpoint: the merged state equals
// the one model's, and reports the edges, stores and consumed
// destinations it holds as new.
func TestShardsMerge(t *testing.T) {
	spans := shopSpans()
	// A self-call joins in its shard, and another, whose SERVER span
	// comes first, outside (JoinCalls): both are Own, no traced caller.
	// A call from mailer back to gateway errs. mailer receives a batch too: the process spans under
	// its own receive span count as Own, not Linked, however they join.
	receive := telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "order-events", MessagingOperation: "receive"}
	process := telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "order-events", MessagingOperation: "process"}
	spans = append(spans,
		span("orders", telemetry.SpanKindServer, 11, 6, "GET /health", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/health"}),
		span("mailer", telemetry.SpanKindClient, 12, 8, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "gateway.internal"}),
		span("gateway", telemetry.SpanKindServer, 13, 12, "GET /products", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/products"}),
		span("mailer", telemetry.SpanKindConsumer, 15, 14, "process order-events", process),
		span("mailer", telemetry.SpanKindClient, 14, 0, "poll order-events", receive),
		span("mailer", telemetry.SpanKindConsumer, 16, 14, "process order-events", process),
		span("orders", telemetry.SpanKindServer, 17, 18, "GET /health", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/health"}),
		span("orders", telemetry.SpanKindClient, 18, 3, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "127.0.0.1"}),
	)
	spans[11].Error = true
	prof := &telemetry.ProfileBatch{
		Service: "orders", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: time.Minute,
		Locations: [][]attribution.Frame{{frameParse}, {frameHandler}},
		Samples:   []telemetry.Sample{{Locations: []int32{0, 1}, Count: 4, Value: 40_000_000, SpanID: "0000000000000003"}},
	}
	one := newModel()
	shardOf := map[string]string{"gateway": "a", "orders": "b", "mailer": "a"}
	two := map[string]*Model{"a": newModel(), "b": newModel()}

	var callers []PendingCaller
	var callees []PendingCallee
	var calls []JoinedCall
	// One span a "checkpoint": the worst case for joins across shards.
	for i := range spans {
		one.AddSpans(spans[i : i+1])
		sh := two[shardOf[spans[i].Service]]
		sh.AddSpans([]telemetry.Span{spans[i]})
		p := sh.TakePending()
		callers, callees = append(callers, p.Callers...), append(callees, p.Callees...)
		var c []JoinedCall
		c, callers, callees = joinInGo(callers, callees)
		calls = append(calls, c...)
	}
	one.AddProfile(prof)
	two["b"].AddProfile(prof)

	var states [][]byte
	for _, k := range []string{"a", "b"} {
		data, err := two[k].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, data)
	}
	merged, err := MergeStates(JoinCalls(calls), states...)
	if err != nil {
		t.Fatal(err)
	}
	got := newModel()
	ch, err := got.Replace(merged)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one.Snapshot(), got.Snapshot()); diff != "" {
		t.Errorf("merged shards differ from one model (-one +merged):\n%s", diff)
	}
	if sc := got.Snapshot().Service("mailer").Spans; sc.Linked != 1 || sc.Own != 2 {
		t.Errorf("mailer spans %+v, want 1 linked (orders' message) and 2 own (its batch)", sc)
	}
	if sc := got.Snapshot().Service("orders").Spans; sc.Linked != 1 || sc.Own != 2 {
		t.Errorf("orders spans %+v, want 1 linked (gateway's call) and 2 own (its calls to itself)", sc)
	}
	var edges []string
	for _, e := range ch.NewEdges {
		edges = append(edges, e.From+">"+e.To)
	}
	if diff := cmp.Diff([]string{"gateway>orders", "mailer>gateway", "orders>mailer"}, edges); diff != "" {
		t.Errorf("new edges (-want +got):\n%s", diff)
	}
	if len(ch.NewStores) != 2 {
		t.Errorf("new stores = %+v, want the database and the topic", ch.NewStores)
	}
	if len(ch.NewConsumes) != 1 || ch.NewConsumes[0].Service != "mailer" || ch.NewConsumes[0].Name != "kafka://order-events" {
		t.Errorf("new consumes = %+v, want mailer's kafka://order-events", ch.NewConsumes)
	}
	if ch, _ := got.Replace(merged); !ch.Empty() {
		t.Errorf("the same state again reports %+v new", ch)
	}
}

// TestMergeConsumesWaiting: a service that consumes from one destination
// in two shards (a repartitioned log) waits for its producers from the
// first time either received its span, for the join window (30 s) of
// the shards' clock, which the receipt times are of: the merged view
// judges the wait at the latest time its shards' states were written,
// whatever the clock of the replica that merges them says (it may be
// skewed, and it runs on while the states it holds do not, so that a
// producer another shard received within the window but has not
// checkpointed yet would be missed). Before, the replica judged it by
// its own clock. A state that says when it was written (one from before)
// leaves it to the replica's clock. The states are written again once
// the wait ended, though nothing was received since (the cluster's
// TestWaitEndsWithoutRecords); until then, the view waits.
func TestMergeConsumesWaiting(t *testing.T) {
	receive := span("worker", telemetry.SpanKindClient, 1, 0, "poll orders",
		telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "receive"})
	type shard struct{ received, written time.Duration } // after t0, by the shards' clock
	tests := []struct {
		name          string
		first, second shard
		replica       time.Duration // after t0, the replica's clock
		want          bool
	}{
		{"the shards wrote more than the window after the first", shard{0, 5 * time.Second}, shard{20 * time.Second, 35 * time.Second}, 35 * time.Second, false},
		{"both within the window", shard{10 * time.Second, 15 * time.Second}, shard{20 * time.Second, 35 * time.Second}, 35 * time.Second, true},
		{"the replica's clock ahead of the shards'", shard{0, 5 * time.Second}, shard{20 * time.Second, 25 * time.Second}, 35 * time.Second, true},
		{"the shards' states not written again since (yet)", shard{0, 5 * time.Second}, shard{20 * time.Second, 25 * time.Second}, time.Hour, true},
		{"a shard's state written again once the wait ended", shard{0, 5 * time.Second}, shard{20 * time.Second, time.Hour}, time.Hour, false},
		{"the replica's clock behind the shards'", shard{0, 5 * time.Second}, shard{20 * time.Second, 40 * time.Second}, 10 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var states [][]byte
			// The later shard's state first: merging must not keep its time.
			for _, sh := range []shard{tt.second, tt.first} {
				m := newModel()
				m.SetClock(func() time.Time { return t0.Add(sh.received) })
				m.AddSpans([]telemetry.Span{receive})
				m.SetClock(func() time.Time { return t0.Add(sh.written) })
				data, err := m.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				states = append(states, data)
			}
			merged, err := MergeStates(Joins{}, states...)
			if err != nil {
				t.Fatal(err)
			}
			got := newModel()
			got.SetClock(func() time.Time { return t0.Add(tt.replica) })
			if err := got.UnmarshalBinary(merged); err != nil {
				t.Fatal(err)
			}
			c := got.Snapshot().Service("worker").Consumes
			if len(c) != 1 || c[0].Waiting != tt.want || !c[0].Received.Equal(t0.Add(tt.first.received)) {
				t.Errorf("consumes = %+v, want kafka://orders received at %v, waiting %v", c, t0.Add(tt.first.received), tt.want)
			}
		})
	}
}

// TestMergeSameService merges two states of one service (after the log
// was repartitioned): every count adds up.
func TestMergeSameService(t *testing.T) {
	prof := func(start time.Time) *telemetry.ProfileBatch {
		return &telemetry.ProfileBatch{
			Service: "orders", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: start, Duration: time.Minute,
			Locations: [][]attribution.Frame{{frameParse}, {frameHandler}, {frameServe}},
			Samples:   []telemetry.Sample{{Locations: []int32{0, 1}, Count: 4, Value: 40}, {Locations: []int32{2}, Count: 1, Value: 10}},
		}
	}
	sp := shopSpans()
	one, a, b := newModel(), newModel(), newModel()
	one.AddSpans(sp)
	one.AddProfile(prof(t0))
	one.AddProfile(prof(t0.Add(5 * time.Minute)))
	a.AddSpans(sp[:4])
	a.AddProfile(prof(t0))
	b.AddSpans(sp[4:])
	b.AddProfile(prof(t0.Add(5 * time.Minute)))
	pa, pb := a.TakePending(), b.TakePending()
	calls, _, _ := joinInGo(append(pa.Callers, pb.Callers...), append(pa.Callees, pb.Callees...))
	sa, _ := a.MarshalBinary()
	sb, _ := b.MarshalBinary()
	merged, err := MergeStates(JoinCalls(calls), sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	got := newModel()
	if err := got.UnmarshalBinary(merged); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one.Snapshot(), got.Snapshot()); diff != "" {
		t.Errorf("merged service differs (-one +merged):\n%s", diff)
	}
	if _, err := MergeStates(Joins{}, []byte("not gob")); err == nil {
		t.Error("a garbage state merged")
	}
}

// TestWaitsUntil: a model's destinations wait for their producers until
// the join window after the latest first receipt of one, by the model's
// clock; none when it consumes from none.
func TestWaitsUntil(t *testing.T) {
	// Each receive span has an id of its own: one id again is a copy.
	id := byte(0)
	receive := func(dest string) telemetry.Span {
		id++
		return span("worker", telemetry.SpanKindClient, id, 0, "poll "+dest,
			telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: dest, MessagingOperation: "receive"})
	}
	window := DefaultConfig().JoinWindow
	tests := []struct {
		name  string
		spans []telemetry.Span // one a second from t0
		want  time.Time
	}{
		{"none consumed from", []telemetry.Span{span("worker", telemetry.SpanKindServer, 1, 0, "GET /", telemetry.Attrs{})}, time.Time{}},
		{"one", []telemetry.Span{receive("orders")}, t0.Add(window)},
		{"the latest of two", []telemetry.Span{receive("orders"), receive("refunds")}, t0.Add(time.Second + window)},
		{"a destination's first receipt", []telemetry.Span{receive("orders"), receive("orders")}, t0.Add(window)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			for i, sp := range tt.spans {
				m.SetClock(func() time.Time { return t0.Add(time.Duration(i) * time.Second) })
				m.AddSpans([]telemetry.Span{sp})
			}
			if got := m.WaitsUntil(); !got.Equal(tt.want) {
				t.Errorf("WaitsUntil() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMergeOverflow: a service in two shards (a repartitioned log) whose
// bounds each shard overflowed: the merged view counts what each kept
// out, every kind of it, added up.
func TestMergeOverflow(t *testing.T) {
	cfg := Config{MaxPendingSpans: 4, JoinWindow: time.Minute, MaxSpanEndpoints: 4, MaxServices: 2, MaxEndpoints: 1, MaxHosts: 1, MaxStores: 1, MaxStacks: 2, MaxFunctions: 3, MaxSeries: 1}
	shard := func(from byte) *Model {
		m := New(cfg, attribution.New(attribution.Config{}))
		var spans []telemetry.Span
		for i := range byte(2) {
			n := from + 10*i
			spans = append(spans,
				span("orders", telemetry.SpanKindServer, n, 0, fmt.Sprintf("GET /orders/%d", i), telemetry.Attrs{HTTPMethod: "GET"}),
				span("orders", telemetry.SpanKindClient, n+1, n, "POST", telemetry.Attrs{ServerAddress: fmt.Sprintf("t%d.example.com", i)}),
				span("orders", telemetry.SpanKindClient, n+2, n, "SELECT", telemetry.Attrs{DBSystem: "postgresql", DBNamespace: fmt.Sprintf("t%d", i)}),
				span("orders", telemetry.SpanKindProducer, n+3, n, "publish", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: fmt.Sprintf("p%d", i)}),
				span("orders", telemetry.SpanKindConsumer, n+4, 0, "process", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: fmt.Sprintf("q%d", i)}),
			)
		}
		spans[len(spans)-1].LinksDropped = 3 // the consumer's links beyond telemetry.MaxSpanLinks
		m.AddSpans(spans)
		b := &telemetry.ProfileBatch{Service: "orders", Start: t0, Period: 10_000_000, Unit: "nanoseconds", SampleType: "cpu"}
		for i := range 5 {
			b.Locations = append(b.Locations, []attribution.Frame{{Function: fmt.Sprintf("example.com/shop.F%d", i)}})
			b.Samples = append(b.Samples, telemetry.Sample{Locations: []int32{int32(i)}, Count: 1, Value: 1})
		}
		m.AddProfile(b)
		return m
	}
	var want Overflow
	var states [][]byte
	for _, m := range []*Model{shard(10), shard(110)} {
		o := m.Snapshot().Service("orders").Overflow
		want.Endpoints, want.Hosts, want.Stores, want.Produces = want.Endpoints+o.Endpoints, want.Hosts+o.Hosts, want.Stores+o.Stores, want.Produces+o.Produces
		want.Consumes, want.Samples, want.Frames, want.Series = want.Consumes+o.Consumes, want.Samples+o.Samples, want.Frames+o.Frames, want.Series+o.Series
		want.Waits, want.Links = want.Waits+o.Waits, want.Links+o.Links
		data, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, data)
	}
	if want.Endpoints == 0 || want.Hosts == 0 || want.Stores == 0 || want.Produces == 0 || want.Consumes == 0 || want.Samples == 0 || want.Frames == 0 || want.Series == 0 || want.Links == 0 {
		t.Fatalf("the shards overflowed %+v: the test shows nothing of some", want)
	}
	merged, err := MergeStates(Joins{}, states...)
	if err != nil {
		t.Fatal(err)
	}
	got := New(cfg, attribution.New(attribution.Config{}))
	if err := got.UnmarshalBinary(merged); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got.Snapshot().Service("orders").Overflow, want); diff != "" {
		t.Errorf("merged Overflow (-got +want):\n%s", diff)
	}
}
