package engine

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/logtest"
	"github.com/evidentsec/evident/internal/model"
)

// TestMergedNamespaces: orders in the namespaces shop and billing, which
// the model merges into one service, is warned of once, naming both,
// and counted by evident_service_merged_namespaces; gateway, in one
// namespace, is neither.
func TestMergedNamespaces(t *testing.T) {
	var logs logtest.Buffer
	reg := prometheus.NewRegistry()
	e, err := New(testConfig(), Deps{
		Store: &memStore{}, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
		Assess: assess.DefaultConfig(), Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, e)
	ctx := context.Background()
	for _, namespaces := range [][]string{{"shop", "shop"}, {"billing", "shop"}, {"billing", "shop"}} {
		spans := shopSpans()
		spans[0].Namespace = "shop"
		spans[2].Namespace, spans[3].Namespace = namespaces[0], namespaces[1]
		if err := e.TracesConsumer().Consume(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "orders merged in the view", func() bool {
		v := e.View()
		return v != nil && v.Snapshot != nil && v.Snapshot.Service("orders") != nil && len(v.Snapshot.Service("orders").Namespaces) == 2
	})
	want := `
# HELP evident_service_merged_namespaces Number of service.namespace values of the services of one service.name that the runtime model merged into one (their telemetry and findings mixed); only for names seen in two or more.
# TYPE evident_service_merged_namespaces gauge
evident_service_merged_namespaces{service="orders"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "evident_service_merged_namespaces"); err != nil {
		t.Error(err)
	}
	got := logs.String()
	if n := strings.Count(got, "service.namespace"); n != 1 {
		t.Errorf("%d warnings of merged namespaces, want 1:\n%s", n, got)
	}
	if !strings.Contains(got, "service=orders namespaces=\"[shop billing]\"") {
		t.Errorf("the warning does not name orders and both namespaces:\n%s", got)
	}
}
