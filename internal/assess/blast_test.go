package assess

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
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
	tests := []struct {
		name     string
		produce  telemetry.Span
		consume  telemetry.Span
		producer []StoreRef // orders' blast radius
		poller   []StoreRef
	}{
		{
			name:    "PRODUCER span, receive CLIENT span",
			produce: span("orders", telemetry.SpanKindProducer, 1, 0, msg("send")),
			consume: span("poller", telemetry.SpanKindClient, 2, 0, msg("receive")),
			producer: []StoreRef{
				{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}, Via: []string{"poller"}},
				{Name: "kafka://orders", Kind: "messaging"},
				{Name: "postgresql://shop/invoices", Kind: "database", Via: []string{"mailer"}},
			},
			poller: []StoreRef{{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}}},
		},
		{
			name:    "send CLIENT span, receive CLIENT span",
			produce: span("orders", telemetry.SpanKindClient, 1, 0, msg("send")),
			consume: span("poller", telemetry.SpanKindClient, 2, 0, msg("receive")),
			producer: []StoreRef{
				{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}, Via: []string{"poller"}},
				{Name: "kafka://orders", Kind: "messaging"},
				{Name: "postgresql://shop/invoices", Kind: "database", Via: []string{"mailer"}},
			},
			poller: []StoreRef{{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}}},
		},
		{
			name:    "PRODUCER span, settle CLIENT span",
			produce: span("orders", telemetry.SpanKindProducer, 1, 0, msg("")),
			consume: span("poller", telemetry.SpanKindClient, 2, 0, msg("settle")),
			producer: []StoreRef{
				{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}, Via: []string{"poller"}},
				{Name: "kafka://orders", Kind: "messaging"},
				{Name: "postgresql://shop/invoices", Kind: "database", Via: []string{"mailer"}},
			},
			poller: []StoreRef{{Name: "postgresql://shop/customers", Kind: "database", Labels: []string{"pii"}}},
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
			if diff := cmp.Diff(tt.producer, a.BlastRadius("orders")); diff != "" {
				t.Errorf("orders' blast radius (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.poller, a.BlastRadius("poller")); diff != "" {
				t.Errorf("poller's blast radius (-want +got):\n%s", diff)
			}
		})
	}
}
