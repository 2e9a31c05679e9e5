package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkProxyOverhead sends the shop's search request directly to an
// upstream and through the proxy enforcing the shop's patches, and
// reports the latency percentiles of each.
func BenchmarkProxyOverhead(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"id":1,"name":"Crème brûlée","score":2}]`)
	}))
	defer upstream.Close()
	dir, _ := shopRules(b)
	p, _ := startProxy(b, dir, upstream.URL, nil)
	for _, tc := range []struct{ name, base string }{{"direct", upstream.URL}, {"proxy", "http://" + p.Addr()}} {
		b.Run(tc.name, func(b *testing.B) {
			client := &http.Client{}
			defer client.CloseIdleConnections()
			url := tc.base + "/search?q=cr%C3%A8me+br%C3%BBl%C3%A9e"
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkRuleEvaluation runs one transaction (phases 1 and 2) through
// the shop's generated patch set with the engine rules.
func BenchmarkRuleEvaluation(b *testing.B) {
	dir, _ := shopRules(b)
	rules, err := LoadRules(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	w, err := newWAF(rules)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"legitimate", Request{Method: "GET", Target: "/search?q=cr%C3%A8me+br%C3%BBl%C3%A9e", Headers: map[string]string{"User-Agent": "shop-load/1.0"}}},
		{"exploit", Request{Method: "GET", Target: "/search?q=%ff%fe", Headers: map[string]string{"User-Agent": "shop-load/1.0"}}},
		{"out-of-scope", Request{Method: "POST", Target: "/orders", Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"items":[{"product_id":1,"quantity":2}]}`}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := replay(w, tc.req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
