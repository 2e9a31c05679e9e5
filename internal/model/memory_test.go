package model_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// BenchmarkMemoryFlat feeds 1M, then 10M synthetic spans through the
// model and the span detections (exploit rules, anomalies) as the engine
// does, with what makes unbounded state grow: new span and trace ids on
// every span, CLIENT spans whose SERVER side never comes, URL paths and
// span names with ids, per-tenant hosts and database names. It reports
// the heap in use after each (after a GC): flat means the bounds
// (model.Config, detect.AnomalyConfig) hold. One iteration is the whole
// run:
//
//	go test -run '^$' -bench MemoryFlat -benchtime 1x ./internal/model
func BenchmarkMemoryFlat(b *testing.B) {
	for b.Loop() {
		m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
		rules, err := detect.CompileRules(detect.DefaultRules())
		if err != nil {
			b.Fatal(err)
		}
		anomalies := detect.NewAnomalies(detect.DefaultAnomalyConfig())
		batch := make([]telemetry.Span, 1000)
		var n uint64
		feed := func(total int) {
			for range total / len(batch) {
				for i := range batch {
					batch[i] = synthetic(n)
					n++
				}
				m.AddSpans(batch)
				for i := range batch {
					rules.Scan(&batch[i], func(detect.Hit) {})
					anomalies.Observe(&batch[i], batch[i].End, batch[i].End)
				}
			}
		}
		feed(1_000_000)
		at1M := heapMiB()
		feed(9_000_000)
		at10M := heapMiB()
		b.ReportMetric(at1M, "heap-MiB@1M")
		b.ReportMetric(at10M, "heap-MiB@10M")
		b.ReportMetric(100*(at10M-at1M)/at1M, "growth-%")
		runtime.KeepAlive(m)
	}
}

func heapMiB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// synthetic is the n-th span of a stream from 20 services: a third SERVER
// spans (some without a route, named after their path), a third HTTP
// CLIENT spans to per-tenant hosts, a third database calls per tenant.
func synthetic(n uint64) telemetry.Span {
	sp := telemetry.Span{
		Service: fmt.Sprintf("svc-%d", n%20),
		Start:   epoch.Add(time.Duration(n) * time.Millisecond),
	}
	sp.End = sp.Start.Add(time.Millisecond)
	sp.TraceID = [16]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24), byte(n >> 32), 1}
	sp.SpanID = [8]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24), byte(n >> 32), 2}
	p := n - 1
	sp.ParentSpanID = [8]byte{byte(p), byte(p >> 8), byte(p >> 16), byte(p >> 24), byte(p >> 32), 2}
	tenant := n % 100_000
	a := &sp.Attrs
	switch n % 3 {
	case 0:
		sp.Kind = telemetry.SpanKindServer
		a.HTTPMethod = "GET"
		a.URLPath = fmt.Sprintf("/users/%d/orders", n)
		a.URLQuery = fmt.Sprintf("page=%d&sort=date", n%7)
		a.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"
		a.ClientAddress = "203.0.113.9"
		sp.Name = "GET " + a.URLPath
		if n%2 == 0 {
			a.HTTPRoute = "/users/{id}/orders"
			sp.Name = "GET /users/{id}/orders"
		}
	case 1:
		sp.Kind = telemetry.SpanKindClient
		a.HTTPMethod = "POST"
		a.ServerAddress = fmt.Sprintf("tenant-%d.api.example.com", tenant)
		a.URLFull = "https://" + a.ServerAddress + "/v1/charges"
		sp.Name = "POST"
	default:
		sp.Kind = telemetry.SpanKindClient
		a.DBSystem = "postgresql"
		a.DBNamespace = fmt.Sprintf("tenant_%d", tenant)
		a.DBCollection = "orders"
		a.DBQueryText = "SELECT * FROM orders WHERE id = $1"
		sp.Name = "SELECT orders"
	}
	return sp
}
