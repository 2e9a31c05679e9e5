package waf

import (
	"testing"

	"github.com/evidentsec/evident/internal/telemetry"
)

// TestKeeps checks which spans the traffic learns from: Keeps and Add
// must agree, since the serve command redacts only what Keeps says.
func TestKeeps(t *testing.T) {
	for _, tc := range []struct {
		name string
		span telemetry.Span
		want bool
	}{
		{"HTTP SERVER span", telemetry.Span{Kind: telemetry.SpanKindServer, Attrs: telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/a"}}, true},
		{"HTTP SERVER span without a route", telemetry.Span{Kind: telemetry.SpanKindServer, Name: "GET /a", Attrs: telemetry.Attrs{HTTPMethod: "GET"}}, true},
		{"SERVER span without a method", telemetry.Span{Kind: telemetry.SpanKindServer, Name: "okey-dokey-0"}, false},
		{"gRPC SERVER span", telemetry.Span{Kind: telemetry.SpanKindServer, Name: "shop.Cart/Add", Attrs: telemetry.Attrs{RPCSystem: "grpc", RPCService: "shop.Cart", RPCMethod: "Add"}}, false},
		{"HTTP CLIENT span", telemetry.Span{Kind: telemetry.SpanKindClient, Attrs: telemetry.Attrs{HTTPMethod: "GET", URLFull: "https://api.example.com/a"}}, false},
		{"HTTP CONSUMER span", telemetry.Span{Kind: telemetry.SpanKindConsumer, Attrs: telemetry.Attrs{HTTPMethod: "POST"}}, false},
		{"internal span", telemetry.Span{Kind: telemetry.SpanKindInternal, Attrs: telemetry.Attrs{HTTPMethod: "GET"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := tc.span
			sp.Service = "shop"
			if got := Keeps(&sp); got != tc.want {
				t.Errorf("Keeps = %v, want %v", got, tc.want)
			}
			tr := NewTraffic(0)
			tr.Add([]telemetry.Span{sp})
			if learnt := tr.services["shop"] != nil; learnt != tc.want {
				t.Errorf("Add learnt from the span: %v, Keeps says %v", learnt, tc.want)
			}
		})
	}
}
