package assess

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestBlastRadiusThroughPullConsumers: a producer's blast radius runs
// through a queue to the services that consume from it, whether they
// are pushed the messages (CONSUMER process spans) or pull them (CLIENT
// receive spans), and a pull consumer's does not run through the queue
// it reads to the queue's other consumers.
func TestBlastRadiusThroughPullConsumers(t *testing.T) {
	msg := func(op string) telemetry.Attrs {
		return telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: op}
	}
	db := func(coll string) telemetry.Attrs {
		return telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: coll}
	}
	cfg := DefaultConfig()
	cfg.Sensitivity = []SensitivityRule{{Store: "postgresql://shop/customers", Labels: []string{"pii"}}}
	// orders' blast radius runs through the poller (and mailer, which
	// the CONSUMER spans of the fixture make a consumer); the poller's is
	// its own database alone.
	throughPoller := []StoreRef{
		{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}, Via: []string{"poller"}},
		{Name: "kafka://orders", Kind: "messaging"},
		{Name: "postgresql://shop/invoices", Kind: "database", Via: []string{"mailer"}},
	}
	pollerOwn := []StoreRef{{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}}}
	tests := []struct {
		name             string
		produce, consume telemetry.Span
	}{
		{
			name:    "PRODUCER span, receive CLIENT span",
			produce: span("orders", telemetry.SpanKindProducer, 1, 0, msg("send")),
			consume: span("poller", telemetry.SpanKindClient, 2, 0, msg("receive")),
		},
		{
			name:    "send CLIENT span, receive CLIENT span",
			produce: span("orders", telemetry.SpanKindClient, 1, 0, msg("send")),
			consume: span("poller", telemetry.SpanKindClient, 2, 0, msg("receive")),
		},
		{
			name:    "PRODUCER span, settle CLIENT span",
			produce: span("orders", telemetry.SpanKindProducer, 1, 0, msg("")),
			consume: span("poller", telemetry.SpanKindClient, 2, 0, msg("settle")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			m.AddSpans([]telemetry.Span{
				tt.produce,
				tt.consume,
				span("poller", telemetry.SpanKindClient, 3, 0, db("customers")),
				// Another consumer of the queue, pushed its messages.
				span("mailer", telemetry.SpanKindConsumer, 4, 0, msg("process")),
				span("mailer", telemetry.SpanKindClient, 5, 4, db("invoices")),
			})
			a := New(cfg, nil, m.Snapshot())
			if diff := cmp.Diff(throughPoller, a.BlastRadius("orders")); diff != "" {
				t.Errorf("orders' blast radius (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(pollerOwn, a.BlastRadius("poller")); diff != "" {
				t.Errorf("poller's blast radius (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBlastRadiusOldDBSystemNames: a database that one service's client
// names by the old db.system value and another's by the current
// db.system.name is one store, which a sensitivity pattern labels
// whichever of the two names it is written with.
func TestBlastRadiusOldDBSystemNames(t *testing.T) {
	td := ptrace.NewTraces()
	for i, c := range []struct{ svc, key, system string }{
		{"legacy", "db.system", "mssql"},
		{"modern", "db.system.name", "microsoft.sql_server"},
	} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", c.svc)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID([16]byte{1})
		s.SetSpanID([8]byte{byte(i + 1)})
		s.SetKind(ptrace.SpanKindClient)
		s.SetName("SELECT customers")
		s.Attributes().PutStr(c.key, c.system)
		s.Attributes().PutStr("db.namespace", "shop")
		s.Attributes().PutStr("db.collection.name", "customers")
	}
	req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	if err := telemetry.DecodeTraceRequest(req, "test", func(s []telemetry.Span) error { m.AddSpans(s); return nil }); err != nil {
		t.Fatal(err)
	}
	snap := m.Snapshot()
	for _, pattern := range []string{"mssql://shop/customers", "mssql://shop/*", "microsoft.sql_server://shop/customers", "*://shop/customers"} {
		t.Run(pattern, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Sensitivity = []SensitivityRule{{Store: pattern, Labels: []string{"pii"}}}
			a := New(cfg, nil, snap)
			want := []StoreRef{{Name: "microsoft.sql_server://shop/customers", Kind: "database", Labels: []string{"pii"}}}
			for _, svc := range []string{"legacy", "modern"} {
				if diff := cmp.Diff(want, a.BlastRadius(svc)); diff != "" {
					t.Errorf("%s's blast radius (-want +got):\n%s", svc, diff)
				}
			}
		})
	}
}

// TestLabelsOldDBSystemNames: a sensitivity pattern whose system is a
// db.system value that db.system.name renamed matches the store under
// the current name too; other patterns match as written.
func TestLabelsOldDBSystemNames(t *testing.T) {
	tests := []struct {
		pattern, store string
		want           bool
	}{
		{"mssql://shop/*", "microsoft.sql_server://shop/orders", true},
		{"mssql://shop/*", "mssql://shop/orders", true},
		{"oracle://*", "oracle.db://ledger", true},
		{"cosmosdb://app/*", "azure.cosmosdb://app/users", true},
		{"microsoft.sql_server://shop/*", "microsoft.sql_server://shop/orders", true},
		{"postgresql://shop/*", "microsoft.sql_server://shop/orders", false},
		{"mssql://shop/*", "microsoft.sql_server://crm/orders", false},
		// A system written as a glob is matched as written.
		{"m*://shop/*", "microsoft.sql_server://shop/orders", true},
		{"ms*://shop/*", "microsoft.sql_server://shop/orders", false},
		{"https://mssql", "https://mssql", true},
		{"mssql", "microsoft.sql_server://shop/orders", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.store, func(t *testing.T) {
			cfg := Config{Sensitivity: []SensitivityRule{{Store: tt.pattern, Labels: []string{"pii"}}}}
			if got := len(cfg.Labels(tt.store)) > 0; got != tt.want {
				t.Errorf("labelled %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBlastRadiusBeyondBounds: a service on the way that reached
// destinations, stores or hosts beyond the model's bounds, whose names
// the model did not keep, leaves the blast radius incomplete, and it
// says so rather than looking smaller than it is.
func TestBlastRadiusBeyondBounds(t *testing.T) {
	send := func(id byte, dest string) telemetry.Span {
		return span("orders", telemetry.SpanKindProducer, id, 1, telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: dest, MessagingOperation: "send"})
	}
	db := func(svc string, id byte, coll string) telemetry.Span {
		return span(svc, telemetry.SpanKindClient, id, 0, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: coll})
	}
	consume := func(id byte, dest string) telemetry.Span {
		return span("billing", telemetry.SpanKindConsumer, id, 0, telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: dest, MessagingOperation: "process"})
	}
	host := func(id byte, addr string) telemetry.Span {
		return span("orders", telemetry.SpanKindClient, id, 1, telemetry.Attrs{HTTPMethod: "POST", ServerAddress: addr})
	}
	audit := span("audit", telemetry.SpanKindConsumer, 24, 0, telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "audit", MessagingOperation: "process"})
	audit.LinksDropped = 1
	batch := span("ledger", telemetry.SpanKindConsumer, 25, 0, telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "refunds", MessagingOperation: "process"})
	batch.LinksDropped = 372
	// gateway calls orders; billing consumes kafka://refunds and writes
	// the customers table.
	base := []telemetry.Span{
		span("gateway", telemetry.SpanKindClient, 20, 0, telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "orders"}),
		span("orders", telemetry.SpanKindServer, 1, 20, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"}),
		consume(21, "refunds"),
		db("billing", 22, "customers"),
	}
	tests := []struct {
		name  string
		spans []telemetry.Span
		// want is the note of orders' and gateway's blast radius.
		want string
	}{
		{"within the bounds", []telemetry.Span{send(2, "refunds")}, ""},
		{
			// refunds is beyond max_stores: billing's customers table is
			// out of orders' blast radius, which cannot tell.
			"a destination beyond max_stores", []telemetry.Span{send(2, "orders"), send(3, "refunds")},
			"orders sends messages to destinations beyond max_stores (1 call), whose consumers are not known",
		},
		{
			"a store beyond max_stores", []telemetry.Span{db("orders", 2, "orders"), db("orders", 3, "payments")},
			"orders calls stores beyond max_stores (1 call)",
		},
		{
			"a host beyond max_hosts", []telemetry.Span{host(2, "payments.example.com"), host(3, "fraud.example.com")},
			"orders calls hosts beyond max_hosts (1 call)",
		},
		{
			// billing took refunds beyond its max_stores (after
			// invoices), and its spans join no producer: it is not
			// among refunds' consumers, so orders' blast radius lacks
			// billing's customers table.
			"a consumer's destination beyond max_stores", []telemetry.Span{consume(23, "invoices"), send(2, "refunds")},
			"billing consumes from destinations beyond max_stores, which may be ones orders sends to",
		},
		{
			// audit lost links of its spans (beyond the decoder's
			// MaxSpanLinks): the PRODUCER spans of orders may be among
			// them, so audit may be fed by refunds through a queue of
			// another name.
			"a consumer's links not kept", []telemetry.Span{send(2, "refunds"), audit},
			"audit took messages whose links were not kept, which may come from destinations orders sends to",
		},
		{
			// A batch consumer of a topic its producer names, whose
			// batches pass the bound of links: the name tells who
			// feeds it, and the blast radius is whole.
			"a consumer's links not kept, from a destination named", []telemetry.Span{send(2, "refunds"), batch},
			"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := model.DefaultConfig()
			cfg.MaxStores, cfg.MaxHosts = 1, 1
			m := model.New(cfg, attribution.New(attribution.Config{}))
			// tt.spans come first, so that they can take a bound's places.
			m.AddSpans(append(slices.Clone(tt.spans), base...))
			a := New(DefaultConfig(), nil, m.Snapshot())
			for _, svc := range []string{"orders", "gateway"} {
				b := a.blastRadius(svc)
				want := tt.want
				if want != "" {
					want = "incomplete: " + want
				}
				if b.incomplete != want {
					t.Errorf("blast radius of %s %+v says %q, want %q", svc, b.stores, b.incomplete, want)
				}
			}
			// An assessment carries the note, and its priority says it.
			as := a.One(textFinding("gateway", findings.StaticRequired))
			if as.BlastRadiusIncomplete != a.blastRadius("gateway").incomplete {
				t.Errorf("gateway's finding: blast radius incomplete %q", as.BlastRadiusIncomplete)
			}
			if said := slices.ContainsFunc(as.Priority.Reasons, func(r string) bool { return strings.Contains(r, "blast radius incomplete: ") }); said != (tt.want != "") {
				t.Errorf("gateway's finding: priority reasons %q, want the blast radius said incomplete: %v", as.Priority.Reasons, tt.want != "")
			}
			if got := a.blastRadius("billing").incomplete; got != "" {
				t.Errorf("billing's blast radius says %q, want nothing: it reaches nothing beyond the bounds", got)
			}
		})
	}
}
