package waf

import (
	"maps"
	"reflect"
	"slices"
	"strings"
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

// TestTrafficClone: a clone is what the traffic was: spans added to the
// traffic afterwards change neither its counts, its longest values nor
// its requests, and the clone reads alike while the traffic learns
// (the race detector watches).
func TestTrafficClone(t *testing.T) {
	tr := shopTraffic()
	c := tr.Clone()
	if !reflect.DeepEqual(c, tr) {
		t.Fatal("the clone differs from the traffic")
	}
	search := Endpoint{Method: "GET", Route: "/search"}
	before := *c.Endpoint("gateway", search)
	before.Params, before.Headers = maps.Clone(before.Params), maps.Clone(before.Headers)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			tr.Add([]telemetry.Span{serverSpan("gateway", "GET", "/search", "/search", "q="+strings.Repeat("x", 100+i)+"&page=2",
				map[string]string{"accept-language": strings.Repeat("en,", 40), "content-type": "text/plain; charset=utf-8"})})
		}
	}()
	for range 50 {
		for _, et := range c.Endpoints("gateway") {
			_ = len(et.Params) + len(et.Replay) + len(et.ContentTypes)
		}
	}
	<-done
	after := c.Endpoint("gateway", before.Endpoint)
	if after.Requests != before.Requests || !maps.Equal(after.Params, before.Params) || !maps.Equal(after.Headers, before.Headers) ||
		len(after.Replay) != len(before.Replay) || !slices.Equal(after.ContentTypes, before.ContentTypes) {
		t.Errorf("the clone changed with the traffic: %+v, was %+v", after, before)
	}
	if got := tr.Endpoint("gateway", before.Endpoint); got.Requests == before.Requests {
		t.Error("the traffic learnt nothing from the spans added")
	}
}
