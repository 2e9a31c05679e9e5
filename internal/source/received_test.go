package source_test

import (
	"context"
	"errors"
	"testing"

	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestReceived checks that the services a Received keeps are those of
// the batches that go where the poll's do and that the engine accepted.
func TestReceived(t *testing.T) {
	type poll struct{}
	ours := func(ctx context.Context) bool { return ctx.Value(poll{}) != nil }
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		refuse  error
		wantHas bool
	}{
		{"accepted, the poll's tenant", context.WithValue(context.Background(), poll{}, true), nil, true},
		{"accepted, another tenant", context.Background(), nil, false},
		{"refused", context.WithValue(context.Background(), poll{}, true), pipeline.ErrFull, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := source.NewReceived(ours)
			c := r.Consumer(pipeline.ConsumerFunc[[]telemetry.Span](func(context.Context, []telemetry.Span) error { return tc.refuse }))
			err := c.Consume(tc.ctx, []telemetry.Span{{Service: "orders"}, {Service: "orders"}, {Service: "payments"}})
			if !errors.Is(err, tc.refuse) {
				t.Fatalf("consume: %v, want %v", err, tc.refuse)
			}
			for _, svc := range []string{"orders", "payments"} {
				if got := r.Has(svc); got != tc.wantHas {
					t.Errorf("Has(%s) = %v, want %v", svc, got, tc.wantHas)
				}
			}
			if r.Has("gateway") {
				t.Error("Has(gateway), a service no batch held")
			}
		})
	}
}

// BenchmarkReceived is the steady state: every service of a batch was
// received before, in runs of one service's spans.
func BenchmarkReceived(b *testing.B) {
	r := source.NewReceived(nil)
	c := r.Consumer(pipeline.ConsumerFunc[[]telemetry.Span](func(context.Context, []telemetry.Span) error { return nil }))
	spans := make([]telemetry.Span, 512)
	for i := range spans {
		spans[i].Service = []string{"orders", "payments", "gateway", "stock"}[i/128]
	}
	ctx := context.Background()
	if err := c.Consume(ctx, spans); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := c.Consume(ctx, spans); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
}
