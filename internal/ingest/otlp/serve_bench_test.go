package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// serveClients is the number of concurrent clients of the serve-path
// benchmarks, and serveBatch the spans of each request.
const (
	serveClients = 10
	serveBatch   = 1000
)

// startServe starts what evident serve runs for traces: a SQLite store
// with its default durability (full sync), the engine with every
// detection on, and this receiver on loopback ports.
func startServe(b *testing.B) *Receiver {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e, err := engine.New(engine.DefaultConfig(), engine.Deps{
		Store: st, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Shutdown(ctx) })
	r, err := New(testConfig(), e.TracesConsumer(), nil, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Shutdown(ctx) })
	return r
}

// errBusy is a throttling answer (RESOURCE_EXHAUSTED, 429): the client
// retries, as OTLP clients do.
var errBusy = errors.New("busy")

// benchServe runs b.N calls of send from serveClients clients, retrying
// throttled ones after a millisecond, and reports spans/s, spans per
// CPU-second of the process (clients included), the acknowledgement
// latency p50 and p99 from the first attempt, and the retries per call.
func benchServe(b *testing.B, send func() error) {
	var mu sync.Mutex
	var acks []time.Duration
	var retries atomic.Int64
	work := make(chan struct{})
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	b.ResetTimer()
	for range serveClients {
		wg.Go(func() {
			var mine []time.Duration
			for range work {
				start := time.Now()
				err := send()
				for errors.Is(err, errBusy) {
					retries.Add(1)
					time.Sleep(time.Millisecond)
					err = send()
				}
				if err != nil {
					b.Error(err)
					break
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			acks = append(acks, mine...)
			mu.Unlock()
		})
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	cpu := (cpuTime() - cpu0).Seconds()
	spans := float64(b.N * serveBatch)
	b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(spans/cpu, "spans/cpu-s")
	if len(acks) > 0 {
		slices.Sort(acks)
		q := func(p float64) float64 { return float64(acks[int(p*float64(len(acks)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.5), "p50-ack-ms")
		b.ReportMetric(q(0.99), "p99-ack-ms")
	}
	b.ReportMetric(float64(retries.Load())/float64(b.N), "retries/op")
}

// serveLoads are the requests of the serve-path benchmarks: clean spans,
// and the same spans each with an SQL injection in url.query, as a
// scanner sends it (every span a hit of the exploit rules, every alert but
// the first of its endpoint and rule a duplicate).
var serveLoads = []struct {
	name  string
	query string
}{
	{"clean", ""},
	{"attack", "id=1%27%20OR%201=1--"},
}

// serveRequest is a 1000-span request of load.
func serveRequest(query string) ptraceotlp.ExportRequest {
	req := tracesRequest(serveBatch, false)
	if query == "" {
		return req
	}
	spans := req.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		spans.At(i).Attributes().PutStr("url.query", query)
	}
	return req
}

// BenchmarkServeGRPC measures the OTLP/gRPC serve path end to end, from
// the client through the listener, the decoder and the engine to the
// log commit its acknowledgement waits for: 1000-span requests from 10
// concurrent clients, clean and attack spans.
func BenchmarkServeGRPC(b *testing.B) {
	for _, load := range serveLoads {
		b.Run(load.name, func(b *testing.B) {
			r := startServe(b)
			cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			client := ptraceotlp.NewGRPCClient(cc)
			req := serveRequest(load.query)
			benchServe(b, func() error {
				_, err := client.Export(context.Background(), req)
				if status.Code(err) == codes.ResourceExhausted {
					return fmt.Errorf("%w: %w", errBusy, err)
				}
				return err
			})
		})
	}
}

// BenchmarkServeHTTP is BenchmarkServeGRPC over OTLP/HTTP protobuf.
func BenchmarkServeHTTP(b *testing.B) {
	for _, load := range serveLoads {
		b.Run(load.name, func(b *testing.B) {
			r := startServe(b)
			body := mustProto(b, serveRequest(load.query))
			url := "http://" + r.HTTPAddr() + TracesPath
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: serveClients}}
			defer client.CloseIdleConnections()
			benchServe(b, func() error {
				resp, err := client.Post(url, "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					return err
				}
				if resp.StatusCode == http.StatusTooManyRequests {
					return fmt.Errorf("%w: POST %s: status %d", errBusy, url, resp.StatusCode)
				}
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("POST %s: status %d", url, resp.StatusCode)
				}
				return nil
			})
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
