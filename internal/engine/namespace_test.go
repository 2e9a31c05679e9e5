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
	"github.com/evidentsec/evident/internal/telemetry"
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

// TestMergedNamespacesReassessed: orders' finding, not_affected on its
// profiles, is re-assessed when another service named orders, in the
// namespace billing, sends its first spans, and is under_investigation:
// the profiles may be either's. Its exposure stays internal, so nothing
// else would re-assess it.
func TestMergedNamespacesReassessed(t *testing.T) {
	acfg := assess.DefaultConfig()
	acfg.VEX = assess.VEXPolicy{MaxShare: 1, AllowLoaded: true}
	e, err := New(testConfig(), Deps{
		Store: &memStore{}, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})), Assess: acfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, e)
	ctx := context.Background()
	if err := e.SetFindings(ctx, allFindings(textFinding("orders"))); err != nil {
		t.Fatal(err)
	}
	vexOf := func() string {
		for _, a := range e.Assessments() {
			if a.Finding.Service == "orders" {
				return a.VEX.Status
			}
		}
		return ""
	}
	request := func(ordersNamespace string, first byte) {
		t.Helper()
		spans := shopSpans()
		for i := range spans {
			spans[i].SpanID[7] += first
			if spans[i].ParentSpanID != [8]byte{} {
				spans[i].ParentSpanID[7] += first
			}
			spans[i].Namespace = "shop"
			if spans[i].Service == "orders" {
				spans[i].Namespace = ordersNamespace
			}
		}
		if err := e.TracesConsumer().Consume(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	request("shop", 0)
	if err := e.ProfilesConsumer().Consume(ctx, []*telemetry.ProfileBatch{textProfile("orders", false)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "orders not_affected", func() bool { return vexOf() == assess.StatusNotAffected })
	request("billing", 10)
	eventually(t, "orders under_investigation", func() bool { return vexOf() == assess.StatusUnderInvestigation })
}
