package model

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// clock is a settable clock for the join window.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// step is a batch received after a wait.
type step struct {
	after time.Duration
	spans []telemetry.Span
}

// receive returns a model, its MaxPendingSpans max (0: the default), that
// received steps, from t0 on.
func receive(max int, steps []step) *Model {
	cfg := DefaultConfig()
	if max > 0 {
		cfg.MaxPendingSpans = max
	}
	m := New(cfg, attribution.New(attribution.Config{}))
	c := &clock{t: t0}
	m.SetClock(c.now)
	for _, st := range steps {
		c.t = c.t.Add(st.after)
		m.AddSpans(st.spans)
	}
	return m
}

// TestJoinWindow: a SERVER or CONSUMER span whose parent has not arrived
// is pending, neither linked nor called from outside, until its parent
// arrives or the join window passes.
func TestJoinWindow(t *testing.T) {
	server := func(svc string, id, parent byte) telemetry.Span {
		return span(svc, telemetry.SpanKindServer, id, parent, "GET /x", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/x"})
	}
	client := func(svc string, id, parent byte) telemetry.Span {
		return span(svc, telemetry.SpanKindClient, id, parent, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "orders"})
	}
	consumer := func(svc string, id, parent byte) telemetry.Span {
		return span(svc, telemetry.SpanKindConsumer, id, parent, "process", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "events"})
	}
	producer := func(svc string, id, parent byte) telemetry.Span {
		return span(svc, telemetry.SpanKindProducer, id, parent, "publish", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "events"})
	}
	endedApart := []step{
		{0, []telemetry.Span{consumer("billing", 9, 7)}}, {40 * time.Second, []telemetry.Span{consumer("mailer", 8, 7)}},
		{20 * time.Second, []telemetry.Span{consumer("billing", 10, 7)}}, {40 * time.Second, nil},
		{time.Minute, []telemetry.Span{producer("orders", 7, 3)}},
	}
	tests := []struct {
		name    string
		max     int // MaxPendingSpans; 0 is the default
		steps   []step
		settle  bool
		service string
		want    SpanCounts
		waits   int64 // Overflow.Waits
	}{
		{
			name:    "callee first, caller within the window",
			steps:   []step{{0, []telemetry.Span{server("orders", 3, 2)}}, {20 * time.Second, []telemetry.Span{client("gateway", 2, 1)}}},
			service: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1},
		},
		{
			name:    "callee waiting",
			steps:   []step{{0, []telemetry.Span{server("orders", 3, 2)}}, {29 * time.Second, nil}},
			service: "orders", want: SpanCounts{All: 1, Server: 1, Pending: 1},
		},
		{
			name:    "no caller within the window",
			steps:   []step{{0, []telemetry.Span{server("orders", 3, 2)}}, {30 * time.Second, nil}},
			service: "orders", want: SpanCounts{All: 1, Server: 1, Unlinked: 1},
		},
		{
			// The window ends the wait, Unlinked till then; a caller
			// after it still joins the span (a pull's, a poll's lag
			// after the receivers).
			name: "caller after the window",
			steps: []step{
				{0, []telemetry.Span{server("orders", 3, 2)}}, {10 * time.Second, []telemetry.Span{server("orders", 5, 4)}},
				{25 * time.Second, []telemetry.Span{client("gateway", 4, 1)}}, {40 * time.Second, []telemetry.Span{client("gateway", 2, 1)}},
			},
			service: "orders", want: SpanCounts{All: 2, Server: 2, Linked: 2},
		},
		{
			// Two children of one parent whose waits end in different
			// generations: the caller joins both.
			name: "callees ended apart, caller after the window",
			steps: []step{
				{0, []telemetry.Span{server("orders", 3, 2)}}, {40 * time.Second, []telemetry.Span{server("orders", 5, 2)}},
				{2 * time.Minute, []telemetry.Span{client("gateway", 2, 1)}},
			},
			service: "orders", want: SpanCounts{All: 2, Server: 2, Linked: 2},
		},
		{
			// The consumers of one message, of two services, end their
			// waits together (endedMore): a late producer joins both.
			name: "consumers of two services ended, producer after the window",
			steps: []step{
				{0, []telemetry.Span{consumer("mailer", 8, 7), consumer("billing", 9, 7), consumer("billing", 10, 7)}},
				{2 * time.Minute, []telemetry.Span{producer("orders", 7, 3)}},
			},
			service: "billing", want: SpanCounts{All: 2, Consumer: 2, Linked: 2},
		},
		{
			// The same, their waits ended in different generations:
			// billing's merged in one entry, mailer's beside it.
			name:    "consumers of two services ended apart, producer after the window",
			steps:   endedApart,
			service: "billing", want: SpanCounts{All: 2, Consumer: 2, Linked: 2},
		},
		{
			name:    "consumers of two services ended apart, producer after the window, the other service",
			steps:   endedApart,
			service: "mailer", want: SpanCounts{All: 1, Consumer: 1, Linked: 1},
		},
		{
			// The late window (LateJoinWindow, 2 min) forgets a wait
			// that ended more than 2 to 4 min ago: a caller after it
			// joins nothing.
			name: "caller after the late window",
			steps: []step{
				{0, []telemetry.Span{server("orders", 3, 2)}}, {time.Minute, nil},
				{5 * time.Minute, []telemetry.Span{client("gateway", 2, 1)}},
			},
			service: "orders", want: SpanCounts{All: 1, Server: 1, Unlinked: 1},
		},
		{
			// Under steady traffic a wait that ended is kept at least
			// LateJoinWindow.
			name: "caller within the late window, traffic all along",
			steps: []step{
				{0, []telemetry.Span{server("orders", 3, 2)}}, {30 * time.Second, nil}, {30 * time.Second, nil},
				{30 * time.Second, nil}, {30 * time.Second, nil}, {30 * time.Second, nil},
				{20 * time.Second, []telemetry.Span{client("gateway", 2, 1)}},
			},
			service: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1},
		},
		{
			name: "no caller yet after the window",
			steps: []step{
				{0, []telemetry.Span{server("orders", 3, 2)}}, {10 * time.Second, []telemetry.Span{server("orders", 5, 4)}},
				{25 * time.Second, []telemetry.Span{client("gateway", 4, 1)}}, {40 * time.Second, nil},
			},
			service: "orders", want: SpanCounts{All: 2, Server: 2, Linked: 1, Unlinked: 1},
		},
		{
			name: "spans waiting in both generations",
			steps: []step{
				// The first generation turns at 40 s, and is forgotten
				// at 70 s.
				{0, []telemetry.Span{server("orders", 3, 2)}}, {20 * time.Second, []telemetry.Span{server("orders", 5, 4)}},
				{20 * time.Second, nil}, {5 * time.Second, []telemetry.Span{server("orders", 7, 6)}}, {25 * time.Second, nil},
			},
			service: "orders", want: SpanCounts{All: 3, Server: 3, Pending: 1, Unlinked: 2},
		},
		{
			name:    "settled",
			steps:   []step{{0, []telemetry.Span{server("orders", 3, 2), server("orders", 5, 4)}}},
			settle:  true,
			service: "orders", want: SpanCounts{All: 2, Server: 2, Unlinked: 2},
		},
		{
			name:    "two consumers before their producer",
			steps:   []step{{0, []telemetry.Span{consumer("mailer", 8, 7), consumer("mailer", 9, 7)}}, {time.Second, []telemetry.Span{producer("orders", 7, 3)}}},
			service: "mailer", want: SpanCounts{All: 2, Consumer: 2, Linked: 2},
		},
		{
			name:    "two consumers after their producer",
			steps:   []step{{0, []telemetry.Span{producer("orders", 7, 3)}}, {time.Second, []telemetry.Span{consumer("mailer", 8, 7), consumer("billing", 9, 7)}}},
			service: "billing", want: SpanCounts{All: 1, Consumer: 1, Linked: 1},
		},
		{
			name: "wait cut short by a full table",
			max:  2,
			steps: []step{
				{0, []telemetry.Span{server("orders", 3, 2)}}, {time.Second, []telemetry.Span{server("orders", 5, 4)}},
				{time.Second, []telemetry.Span{server("orders", 7, 6)}}, {time.Second, []telemetry.Span{client("gateway", 6, 1)}},
			},
			// Span 3 is forgotten after 2 s: no caller can join it.
			service: "orders", want: SpanCounts{All: 3, Server: 3, Linked: 1, Pending: 1, Unlinked: 1}, waits: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := receive(tt.max, tt.steps)
			if tt.settle {
				m.Settle()
			}
			got := m.Snapshot().Service(tt.service)
			if got == nil {
				t.Fatalf("no service %s", tt.service)
			}
			if diff := cmp.Diff(tt.want, got.Spans); diff != "" {
				t.Errorf("%s spans (-want +got):\n%s", tt.service, diff)
			}
			if got.Overflow.Waits != tt.waits {
				t.Errorf("%s waits forgotten early = %d, want %d", tt.service, got.Overflow.Waits, tt.waits)
			}
		})
	}
}

// TestSpanTwice: a span that arrives again (a pull of selected services
// hands on the spans that join them to a service the receivers brought
// too) counts once, whichever of its caller and its copies comes first
// and however late, and the call it joins counts once.
func TestSpanTwice(t *testing.T) {
	server := span("orders", telemetry.SpanKindServer, 3, 2, "GET /x", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/x"})
	client := span("gateway", telemetry.SpanKindClient, 2, 1, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "orders"})
	producer := span("gateway", telemetry.SpanKindProducer, 4, 1, "send", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "events"})
	consumer := func(svc string, id byte) telemetry.Span {
		return span(svc, telemetry.SpanKindConsumer, id, 4, "process", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "events"})
	}
	one := func(sp telemetry.Span) []telemetry.Span { return []telemetry.Span{sp} }
	tests := []struct {
		name  string
		steps []step
		// callee is the service called, calls the calls of gateway's edge
		// to it.
		callee string
		want   SpanCounts
		calls  int64
	}{
		{
			name:   "callee twice before its caller",
			steps:  []step{{0, one(server)}, {time.Second, one(server)}, {time.Second, one(client)}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1}, calls: 1,
		},
		{
			name:   "callee, its caller, the callee again",
			steps:  []step{{0, one(server)}, {time.Second, one(client)}, {time.Second, one(server)}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1}, calls: 1,
		},
		{
			name:   "callee, its window ended, its caller, the callee again",
			steps:  []step{{0, one(server)}, {2 * time.Minute, one(client)}, {time.Second, one(server)}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1}, calls: 1,
		},
		{
			name:   "callee, its window ended, the callee again, its caller",
			steps:  []step{{0, one(server)}, {2 * time.Minute, one(server)}, {time.Second, one(client)}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1}, calls: 1,
		},
		{
			name:   "caller, the callee twice",
			steps:  []step{{0, one(client)}, {time.Second, one(server)}, {2 * time.Minute, one(server)}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1}, calls: 1,
		},
		{
			name:   "caller twice, then its callee",
			steps:  []step{{0, one(client)}, {time.Second, one(client)}, {time.Second, one(server)}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1}, calls: 1,
		},
		{
			name:   "caller, its callee, the caller again",
			steps:  []step{{0, one(client)}, {time.Second, one(server)}, {2 * time.Minute, one(client)}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Linked: 1}, calls: 1,
		},
		{
			name:   "consumer, its window ended, its producer, the consumer again",
			steps:  []step{{0, one(consumer("mailer", 5))}, {2 * time.Minute, one(producer)}, {time.Second, one(consumer("mailer", 5))}},
			callee: "mailer", want: SpanCounts{All: 1, Consumer: 1, Linked: 1}, calls: 1,
		},
		{
			// Zipkin's shared spans (B3): the callee's SERVER span has
			// the id of the caller's CLIENT span. Neither is a copy.
			name:   "a SERVER span with its CLIENT span's id",
			steps:  []step{{0, one(client)}, {time.Second, one(span("orders", telemetry.SpanKindServer, 2, 1, "GET /x", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/x"}))}},
			callee: "orders", want: SpanCounts{All: 1, Server: 1, Pending: 1}, calls: 0,
		},
		{
			name: "producer, a consumer, the producer again, another consumer",
			steps: []step{
				{0, one(producer)}, {time.Second, one(consumer("mailer", 5))}, {time.Second, one(producer)},
				{time.Second, one(consumer("mailer", 6))}, {time.Second, one(consumer("mailer", 5))},
			},
			callee: "mailer", want: SpanCounts{All: 2, Consumer: 2, Linked: 2}, calls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := receive(0, tt.steps).Snapshot()
			callee, gateway := snap.Service(tt.callee), snap.Service("gateway")
			if callee == nil || gateway == nil {
				t.Fatalf("services %v, want gateway and %s", snap.Services, tt.callee)
			}
			if diff := cmp.Diff(tt.want, callee.Spans); diff != "" {
				t.Errorf("%s spans (-want +got):\n%s", tt.callee, diff)
			}
			if gateway.Spans.All != 1 {
				t.Errorf("gateway spans: %+v, want its one span once", gateway.Spans)
			}
			if tt.calls == 0 && len(gateway.Edges) > 0 || tt.calls > 0 && (len(gateway.Edges) != 1 || gateway.Edges[0].To != tt.callee || gateway.Edges[0].Calls != tt.calls) {
				t.Errorf("gateway's edges: %+v, want %d calls to %s", gateway.Edges, tt.calls, tt.callee)
			}
			if n := len(callee.Endpoints); n != 1 || callee.Endpoints[0].Calls != tt.want.All {
				t.Errorf("%s endpoints: %+v, want one called %d times", tt.callee, callee.Endpoints, tt.want.All)
			}
		})
	}
}

// TestCheckpointPending: a restart cuts the wait of the spans waiting
// for their parent short (the join tables are not saved): they stay
// undecided; a version 2 checkpoint, written before spans could wait,
// restores every SERVER or CONSUMER span neither a root nor linked as
// called from outside, as version 2 decided.
func TestCheckpointPending(t *testing.T) {
	m := newModel()
	m.AddSpans([]telemetry.Span{
		span("orders", telemetry.SpanKindServer, 3, 2, "GET /x", telemetry.Attrs{}),
		span("orders", telemetry.SpanKindServer, 5, 4, "GET /x", telemetry.Attrs{}),
		span("gateway", telemetry.SpanKindClient, 4, 1, "GET", telemetry.Attrs{}),
	})
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored := newModel()
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	// The restored model has no join table: the caller of span 3 joins
	// nothing.
	restored.AddSpans([]telemetry.Span{span("gateway", telemetry.SpanKindClient, 2, 1, "GET", telemetry.Attrs{})})
	if diff := cmp.Diff(SpanCounts{All: 2, Server: 2, Linked: 1}, restored.Snapshot().Service("orders").Spans); diff != "" {
		t.Errorf("restored orders spans (-want +got):\n%s", diff)
	}

	var buf bytes.Buffer
	v2 := modelState{Version: 2, Services: []serviceState{{Name: "orders", Spans: SpanCounts{All: 4, Server: 3, Consumer: 1, Root: 1, Linked: 1}}}}
	if err := gob.NewEncoder(&buf).Encode(v2); err != nil {
		t.Fatal(err)
	}
	old := newModel()
	if err := old.UnmarshalBinary(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(SpanCounts{All: 4, Server: 3, Consumer: 1, Root: 1, Linked: 1, Unlinked: 2}, old.Snapshot().Service("orders").Spans); diff != "" {
		t.Errorf("version 2 orders spans (-want +got):\n%s", diff)
	}
}

// TestIsPublic checks which client addresses count as the public
// internet: what net.ParseIP's IsGlobalUnicast and not IsPrivate say, the
// definition isPublic had before it parsed without allocating.
func TestIsPublic(t *testing.T) {
	var cases []string
	for _, tc := range []struct {
		addr string
		want bool
		// special is an address of IANA's special-purpose registries,
		// which net.IP's predicates call public.
		special bool
	}{
		{addr: "", want: false},
		{addr: "203.0.113.7", want: true},
		{addr: "8.8.8.8", want: true},
		{addr: "10.1.2.3", want: false},
		{addr: "192.168.0.1", want: false},
		{addr: "172.16.5.4", want: false},
		{addr: "127.0.0.1", want: false},
		{addr: "0.0.0.0", want: false},
		{addr: "255.255.255.255", want: false},
		{addr: "224.0.0.1", want: false},
		{addr: "169.254.1.1", want: false},
		{addr: "::ffff:203.0.113.7", want: true},
		{addr: "::ffff:10.0.0.1", want: false},
		{addr: "2001:db8::1", want: true},
		{addr: "fd00::1", want: false},
		{addr: "fe80::1", want: false},
		{addr: "fe80::1%eth0", want: false},
		{addr: "2001:db8::1%eth0", want: false},
		{addr: "::1", want: false},
		{addr: "::", want: false},
		{addr: "ff02::1", want: false},
		{addr: "01.2.3.4", want: false},
		{addr: "example.com", want: false},
		{addr: "203.0.113.7:443", want: false},
		// Not on the internet though global unicast (IANA's
		// special-purpose registries): carrier-grade NAT's shared space,
		// which cloud pod networks and Tailscale use, benchmarking,
		// protocol assignments, class E; and NAT64 of a private address.
		{addr: "100.64.3.4", want: false, special: true},
		{addr: "100.127.255.254", want: false, special: true},
		{addr: "::ffff:100.100.1.1", want: false, special: true},
		{addr: "198.18.0.7", want: false, special: true},
		{addr: "192.0.0.9", want: false, special: true},
		{addr: "240.0.0.1", want: false, special: true},
		{addr: "64:ff9b::a00:1", want: false, special: true},
		{addr: "64:ff9b::808:808", want: true},
		{addr: "100.128.0.1", want: true},
	} {
		cases = append(cases, tc.addr)
		t.Run(tc.addr, func(t *testing.T) {
			if got := isPublic(tc.addr); got != tc.want {
				t.Errorf("isPublic(%q) = %v, want %v", tc.addr, got, tc.want)
			}
			ip := net.ParseIP(tc.addr)
			if old := ip != nil && ip.IsGlobalUnicast() && !ip.IsPrivate(); !tc.special && old != tc.want {
				t.Errorf("net.ParseIP says %v, want %v", old, tc.want)
			}
		})
	}
	// A model remembers the last address it was asked about: it answers
	// as isPublic whatever the address before, the same or another.
	var m Model
	for _, addr := range slices.Concat(cases, cases, []string{cases[1], cases[1], cases[3], cases[3], cases[1]}) {
		prev := m.lastClient
		if got, want := m.publicClient(addr), isPublic(addr); got != want {
			t.Errorf("publicClient(%q) after %q = %v, want %v", addr, prev, got, want)
		}
	}
}

// TestJoinChildren: the SERVER children of one CLIENT span that arrive
// before it wait as one entry per service and arrival, and count one by
// one when their caller joins them, when their wait ends and when they
// are taken for the cluster's join.
func TestJoinChildren(t *testing.T) {
	child := func(svc string, id byte) telemetry.Span {
		return span(svc, telemetry.SpanKindServer, id, 2, "okey-dokey", telemetry.Attrs{})
	}
	children := func(svc string, first, n byte) []telemetry.Span {
		var out []telemetry.Span
		for id := first; id < first+n; id++ {
			out = append(out, child(svc, id))
		}
		return out
	}
	caller := span("gateway", telemetry.SpanKindClient, 2, 1, "lets-go", telemetry.Attrs{PeerService: "orders"})
	tests := []struct {
		name    string
		max     int
		steps   []step
		want    SpanCounts // of orders
		calls   int64      // gateway → orders
		waits   int64      // orders' Overflow.Waits
		pending int        // callees TakePending returns
	}{
		{
			name:  "nine children, then their caller",
			steps: []step{{0, children("orders", 10, 9)}, {time.Second, []telemetry.Span{caller}}},
			want:  SpanCounts{All: 9, Server: 9, Linked: 9}, calls: 9,
		},
		{
			name: "children in two batches and of two services",
			steps: []step{
				{0, append(children("orders", 10, 3), append(children("billing", 20, 2), children("orders", 30, 1)...)...)},
				{time.Second, children("orders", 40, 2)},
				{time.Second, []telemetry.Span{caller}},
			},
			want: SpanCounts{All: 6, Server: 6, Linked: 6}, calls: 6,
		},
		{
			name:  "children waiting",
			steps: []step{{0, children("orders", 10, 3)}, {time.Second, children("orders", 20, 2)}},
			want:  SpanCounts{All: 5, Server: 5, Pending: 5}, pending: 5,
		},
		{
			name:  "no caller within the window",
			steps: []step{{0, children("orders", 10, 3)}, {20 * time.Second, children("orders", 20, 2)}, {70 * time.Second, nil}},
			want:  SpanCounts{All: 5, Server: 5, Unlinked: 5},
		},
		{
			name: "wait cut short by a full table",
			max:  2,
			steps: []step{
				{0, children("orders", 10, 3)},
				{time.Second, []telemetry.Span{span("orders", telemetry.SpanKindServer, 50, 49, "x", telemetry.Attrs{})}},
				{time.Second, []telemetry.Span{span("orders", telemetry.SpanKindServer, 52, 51, "x", telemetry.Attrs{})}},
			},
			want: SpanCounts{All: 5, Server: 5, Pending: 2, Unlinked: 3}, waits: 3, pending: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := receive(tt.max, tt.steps)
			snap := m.Snapshot()
			got := snap.Service("orders")
			if diff := cmp.Diff(tt.want, got.Spans); diff != "" {
				t.Errorf("orders spans (-want +got):\n%s", diff)
			}
			if got.Overflow.Waits != tt.waits {
				t.Errorf("orders waits forgotten early = %d, want %d", got.Overflow.Waits, tt.waits)
			}
			var calls int64
			if gw := snap.Service("gateway"); gw != nil {
				for _, e := range gw.Edges {
					if e.To == "orders" {
						calls = e.Calls
					}
				}
			}
			if calls != tt.calls {
				t.Errorf("gateway → orders calls = %d, want %d", calls, tt.calls)
			}
			// Each with its own span id: the store keys them by it.
			pending := map[[8]byte]bool{}
			for _, p := range m.TakePending().Callees {
				if p.Service == "orders" {
					pending[p.SpanID] = true
				}
			}
			if len(pending) != tt.pending {
				t.Errorf("TakePending gave %d callees of orders with distinct span ids, want %d", len(pending), tt.pending)
			}
			if n := m.Snapshot().Service("orders").Spans.Pending; n != 0 {
				t.Errorf("orders has %d spans pending after TakePending, want 0", n)
			}
		})
	}
}

// TestHostOfUnparsedURL: the host of a URL that does not parse is taken
// without its user info, which may hold a password (it named the third
// party "user:s3cret@api.stripe.com:443" in the report), and without its
// port, as the host of a URL that parses is.
func TestHostOfUnparsedURL(t *testing.T) {
	for full, want := range map[string]string{
		"https://user:s3cret@api.stripe.com:443/v1/%zz": "api.stripe.com",
		"https://api.stripe.com/v1/%zz":                 "api.stripe.com",
		"https://[2001:db8::1]:8443/%zz":                "2001:db8::1",
		"https://api.stripe.com?q=%zz":                  "api.stripe.com",
		"https://api.stripe.com/v1/charges":             "api.stripe.com",
	} {
		if got, _ := hostOf(&telemetry.Attrs{URLFull: full}); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", full, got, want)
		}
	}
}

// TestIsLocal: the hosts that are never a third party: this machine,
// private and link-local addresses (with a zone too: net.ParseIP took
// none, and fe80::1%eth0 was a third party), and the special-purpose
// ranges that are not on the internet (a service on a pod address in
// carrier-grade NAT's range).
func TestIsLocal(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "::1": true, "10.0.0.5": true, "192.168.1.1": true,
		"fe80::1": true, "fe80::1%eth0": true, "169.254.169.254": true, "0.0.0.0": true,
		"100.64.0.10": true, "::ffff:10.0.0.1": true,
		"api.stripe.com": false, "8.8.8.8": false, "2001:4860:4860::8888": false, "203.0.113.7": false,
	} {
		if got := isLocal(host); got != want {
			t.Errorf("isLocal(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestPendingCalleeIDs: the children of one parent that wait together
// are one callee in the model, but go to the store each under an id of
// its own, which is the same when a checkpoint that failed gives them
// back (RestorePending) and takes them again: the store counts each
// child once, and every child.
func TestPendingCalleeIDs(t *testing.T) {
	m := New(DefaultConfig(), attribution.New(attribution.Config{}))
	var spans []telemetry.Span
	// orders, billing, orders: two callees of orders of one time, apart.
	for i, svc := range []string{"orders", "orders", "billing", "orders"} {
		spans = append(spans, span(svc, telemetry.SpanKindServer, byte(10+i), 2, "op", telemetry.Attrs{}))
	}
	m.AddSpans(spans)
	ids := func(p Pending) map[[8]byte]string {
		out := map[[8]byte]string{}
		for _, c := range p.Callees {
			out[c.SpanID] = c.Service
		}
		return out
	}
	first := m.TakePending()
	if got := ids(first); len(got) != 4 {
		t.Fatalf("%d distinct ids for 4 children: %v", len(got), got)
	}
	m.RestorePending(first)
	again := m.TakePending()
	if diff := cmp.Diff(ids(first), ids(again)); diff != "" {
		t.Errorf("ids after RestorePending (-first +again):\n%s", diff)
	}
}

// TestSpanIDsGrow: the table of span ids counted starts small, so that a
// model of few spans (one of a tenant's, or of a Kafka partition's, in a
// cluster) holds a few KiB and not max_pending_spans slots, and grows up
// to its bound as ids come, keeping those it held: the latest are still
// known after each growth.
func TestSpanIDsGrow(t *testing.T) {
	id := func(k uint64) [8]byte {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], k*0x9e3779b97f4a7c15)
		return b
	}
	tests := []struct {
		max, ids, slots int
	}{
		{max: 1 << 17, ids: 10, slots: spanIDsFirst},
		{max: 1 << 17, ids: 3100, slots: 4 * spanIDsFirst},
		{max: 5000, ids: 100_000, slots: 8192},
		{max: 100, ids: 1000, slots: 128},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d ids, max %d", tt.ids, tt.max), func(t *testing.T) {
			s := spanIDs{max: tt.max}
			for k := range tt.ids {
				if s.add(id(uint64(k)+1), telemetry.SpanKindServer) {
					t.Fatalf("id %d was there before it was added", k)
				}
			}
			if len(s.slots) != tt.slots {
				t.Errorf("%d slots, want %d", len(s.slots), tt.slots)
			}
			// Of the last ids, nearly all are still known (some met
			// a later one in their slot).
			last := min(tt.ids, len(s.slots)/8)
			known := 0
			for k := tt.ids - last; k < tt.ids; k++ {
				if s.add(id(uint64(k)+1), telemetry.SpanKindServer) {
					known++
				}
			}
			if known < last*3/4 {
				t.Errorf("%d of the last %d ids known", known, last)
			}
		})
	}
}

// TestRestoreForgetsJoins: a model restored from a checkpoint in place
// (UnmarshalBinary into a model that received spans) forgets what its
// join tables held, as one restored fresh does, since a checkpoint keeps
// none of them: a span whose wait had ended stays unlinked when its
// caller comes, and a span counted before is counted again.
func TestRestoreForgetsJoins(t *testing.T) {
	server := span("orders", telemetry.SpanKindServer, 2, 1, "GET /x", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/x"})
	client := span("gateway", telemetry.SpanKindClient, 1, 0, "GET", telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "orders"})
	// orders' SERVER span ends its wait, unlinked, two windows on.
	m := receive(0, []step{{0, []telemetry.Span{server}}, {2 * time.Minute, nil}})
	m.AddSpans(nil)
	if got := m.Snapshot().Service("orders").Spans.Unlinked; got != 1 {
		t.Fatalf("orders' unlinked spans before the restore: %d, want 1", got)
	}
	state, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	m.AddSpans([]telemetry.Span{client})
	orders := m.Snapshot().Service("orders")
	if orders.Spans.Unlinked != 1 || orders.Spans.Linked != 0 {
		t.Errorf("orders' spans after the restore and its caller: %+v, want 1 unlinked, none linked", orders.Spans)
	}
	m.AddSpans([]telemetry.Span{server})
	if got := m.Snapshot().Service("orders").Spans.Server; got != 2 {
		t.Errorf("orders' SERVER spans after the same span again: %d, want 2 (counted again)", got)
	}
}
