package waf

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
)

var update = flag.Bool("update", false, "rewrite golden files")

// loadRecords loads the trimmed OSV records of testdata/records.
func loadRecords(t testing.TB) *vulndb.DB {
	t.Helper()
	db, problems, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{filepath.Join("testdata", "records")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("load records: %v", p)
	}
	return db
}

// serverSpan is a SERVER span of service for one request.
func serverSpan(service, method, route, path, query string, headers map[string]string) telemetry.Span {
	return telemetry.Span{
		Service: service, Kind: telemetry.SpanKindServer, Name: method + " " + route,
		Start: time.Unix(1_700_000_000, 0), End: time.Unix(1_700_000_000, 1_000_000),
		Attrs: telemetry.Attrs{HTTPMethod: method, HTTPRoute: route, URLPath: path, URLQuery: query,
			UserAgent: "shop-load/1.0", StatusCode: 200, RequestHeaders: headers},
	}
}

// shopTraffic is the gateway's traffic as the shop's load generator makes it.
func shopTraffic() *Traffic {
	var spans []telemetry.Span
	queries := []string{"q=creme", "q=cr%C3%A8me+br%C3%BBl%C3%A9e", "q=reykjav%C3%ADk", "q=tea", "q=chocolate+cake"}
	for i := range 40 {
		spans = append(spans,
			serverSpan("gateway", "GET", "/search", "/search", queries[i%len(queries)], map[string]string{"accept-language": "de-DE,de;q=0.9,en;q=0.8"}),
			serverSpan("gateway", "GET", "/products/{id}", "/products/"+string(rune('1'+i%9)), "", nil),
			serverSpan("gateway", "POST", "/orders", "/orders", "", map[string]string{"content-type": "application/json"}),
		)
	}
	return trafficFromSpans(spans, 0)
}

func executedExposed(service, vuln, pkg string, endpoints ...string) assess.Assessment {
	return assess.Assessment{
		Finding:      findings.Finding{Service: service, Package: findings.Package{Name: pkg}, Vulnerability: findings.Vulnerability{ID: vuln}},
		Reachability: assess.Reachability{Verdict: assess.Executed, Endpoints: endpoints},
		Exposure:     assess.ExposureResult{Level: assess.Exposed},
	}
}

// trafficFromSpans builds traffic from spans, keeping at most
// replayPerEndpoint requests per endpoint for replay.
func trafficFromSpans(spans []telemetry.Span, replayPerEndpoint int) *Traffic {
	t := NewTraffic(replayPerEndpoint)
	t.Add(spans)
	return t
}
