package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/evidentsec/evident/internal/ingest/ingesttest"
)

// TestServeUnderAttack runs the attacks of issue 9 against evident serve,
// scaled down by a 1 MiB request limit and small connection caps: each
// is refused with its status, /healthz answers throughout, the heap
// stays far below what the attacks took before, and the memory the Go
// runtime holds, and without -race the process's peak RSS, under 512 MB.
func TestServeUnderAttack(t *testing.T) {
	resetPeakRSS(t)
	cfg := serveTestConfig(t)
	sc := &cfg.Serve
	sc.OTLP.MaxRequestBytes, sc.Pyroscope.MaxRequestBytes = 1<<20, 1<<20
	sc.OTLP.MaxConnections, sc.OTLP.ReadHeaderTimeout, sc.OTLP.ReadTimeout = 128, time.Second, 20*time.Second
	sc.Memory.MaxBufferedBytes = 8 << 20
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
	fl := serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}}
	srv, err := startServer(t.Context(), g, cfg, fl, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, srv)
	healthy := func(during string) {
		t.Helper()
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(srv.apiURL() + "/healthz")
		if err != nil {
			t.Errorf("/healthz during %s: %v", during, err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz during %s: %d", during, resp.StatusCode)
		}
	}
	otlpHTTP := "http://" + srv.otlp.HTTPAddr() + "/v1/traces"

	peak := ingesttest.Measure(func() {
		t.Run("zstd without Content-Encoding", func(t *testing.T) {
			bomb := compressedZeros(t, 100<<20)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					resp, err := http.Post(otlpHTTP, "application/x-protobuf", bytes.NewReader(bomb))
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusRequestEntityTooLarge {
						t.Errorf("status %d, want 413", resp.StatusCode)
					}
				})
			}
			healthy("zstd bombs")
			wg.Wait()
		})
		t.Run("Push of many bombs", func(t *testing.T) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(make([]byte, 900<<10))
			zw.Close()
			var samples []*pushv1.RawSample
			for range 200 {
				samples = append(samples, &pushv1.RawSample{RawProfile: buf.Bytes()})
			}
			req := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
				Labels: []*typesv1.LabelPair{{Name: "service_name", Value: "checkout"}}, Samples: samples}}}
			client := pushv1connect.NewPusherServiceClient(http.DefaultClient, "http://"+srv.pyro.Addr())
			_, err := client.Push(t.Context(), connect.NewRequest(req))
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "max_request_bytes") {
				t.Errorf("Push: %v, want INVALID_ARGUMENT naming max_request_bytes", err)
			}
			healthy("Push bombs")
		})
		t.Run("gRPC flood", func(t *testing.T) {
			msg := nearLimitTraces(t, 900<<10)
			cc, err := grpc.NewClient(srv.otlp.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			var mu sync.Mutex
			got := map[codes.Code]int{}
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					var resp []byte
					err := cc.Invoke(t.Context(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", msg, &resp, grpc.ForceCodec(rawCodec{}))
					mu.Lock()
					got[status.Code(err)]++
					mu.Unlock()
				})
			}
			healthy("the gRPC flood")
			wg.Wait()
			// The calls share the budget as their bytes arrive; the first
			// refused waits for room, so some get through.
			if got[codes.OK]+got[codes.ResourceExhausted] != 64 || got[codes.OK] == 0 {
				t.Errorf("answers %v, want OK or RESOURCE_EXHAUSTED only, some OK", got)
			}
			var resp []byte
			if err := cc.Invoke(t.Context(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", msg, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
				t.Errorf("a call after the flood: %v", err)
			}
			t.Logf("gRPC answers %v", got)
		})
		t.Run("stalled gRPC calls", func(t *testing.T) {
			// More calls than request slots send 20 KB of their message and
			// stop: they hold what they sent, so calls and requests beside
			// them are served. Each stalled call has a connection of its
			// own, and they leave some of max_connections to the calls
			// beside them: with every connection taken (2 × 64 calls, 128
			// connections), whether the call beside them connected before
			// the last of them did was a race it lost on a busy machine.
			msg := nearLimitTraces(t, 900<<10)
			dial, closeStalled := ingesttest.StallDialer(20 << 10)
			for range 3 * sc.OTLP.MaxConcurrentRequests / 2 {
				cc, err := grpc.NewClient(srv.otlp.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Close()
				go cc.Invoke(t.Context(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", msg, new([]byte), grpc.ForceCodec(rawCodec{}))
			}
			defer closeStalled()
			cc, err := grpc.NewClient(srv.otlp.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var resp []byte
			if err := cc.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", nearLimitTraces(t, 10<<10), &resp, grpc.ForceCodec(rawCodec{})); err != nil {
				t.Errorf("OTLP/gRPC beside stalled calls: %v", err)
			}
			r, err := http.Post(otlpHTTP, "application/x-protobuf", bytes.NewReader(nearLimitTraces(t, 10<<10)))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusOK {
				t.Errorf("OTLP/HTTP beside stalled gRPC calls: %d, want 200", r.StatusCode)
			}
			healthy("stalled gRPC calls")
		})
		t.Run("slow bodies", func(t *testing.T) {
			// As many slow clients as there are request slots hold none.
			for _, c := range slowClients(t, srv.otlp.HTTPAddr(), sc.OTLP.MaxConcurrentRequests) {
				defer c.Close()
			}
			resp, err := http.Post(otlpHTTP, "application/x-protobuf", bytes.NewReader(nearLimitTraces(t, 10<<10)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("normal client beside slow ones: %d, want 200", resp.StatusCode)
			}
			healthy("slow bodies")
		})
		t.Run("connection flood", func(t *testing.T) {
			before := openFiles(t)
			const flood = 400
			conns := slowClients(t, srv.otlp.HTTPAddr(), flood)
			for _, c := range conns {
				defer c.Close()
			}
			// The client's own flood connections are files of this
			// process too; the server's side stays at the cap.
			if n := openFiles(t) - before; n > flood+sc.OTLP.MaxConnections+32 {
				t.Errorf("%d more open files with %d connections, want at most %d", n, flood, flood+sc.OTLP.MaxConnections+32)
			}
			healthy("the connection flood")
			resp, err := http.Get("http://" + srv.pyro.Addr() + "/ingest")
			if err != nil {
				t.Errorf("pyroscope receiver during the flood: %v", err)
			} else {
				resp.Body.Close()
			}
		})
	})
	rss := peakRSS(t)
	t.Logf("heap grew by %d MiB at most, the Go runtime held %d MiB at most, peak RSS %d MiB", peak.Heap>>20, peak.Go>>20, rss>>20)
	// The attacks unbounded took gigabytes; here the 4 bombs alone would
	// have expanded to 400 MiB.
	if peak.Heap > 128<<20 {
		t.Errorf("heap grew by %d MiB, want under 128 MiB", peak.Heap>>20)
	}
	if peak.Go > 512<<20 {
		t.Errorf("the Go runtime held %d MiB, want under 512 MiB", peak.Go>>20)
	}
	// With -race, the process's resident set also holds the race
	// detector's shadow memory, several times the heap, which the
	// package's earlier tests leave behind: 414 MiB before the attacks
	// in one run, whatever evident serve itself takes.
	if !raceEnabled && rss > 512<<20 {
		t.Errorf("peak RSS %d MiB, want under 512 MiB", rss>>20)
	}
}

// compressedZeros is n zero bytes in zstd: 100 MiB take a few KiB.
func compressedZeros(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for ; n > 0; n -= len(chunk) {
		zw.Write(chunk[:min(n, len(chunk))])
	}
	zw.Close()
	return buf.Bytes()
}

// nearLimitTraces is a valid ExportTraceServiceRequest of about size
// bytes.
func nearLimitTraces(t *testing.T, size int) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "flood")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; ; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(pcommon.TraceID{1, byte(i >> 8), byte(i)})
		s.SetSpanID(pcommon.SpanID{1, byte(i >> 8), byte(i)})
		s.SetName("GET /flood")
		s.SetKind(ptrace.SpanKindServer)
		// Attributes of a usual size, so that a span takes about 300
		// bytes, as the OTel SDKs' spans do.
		a := s.Attributes()
		a.PutStr("url.path", "/flood/"+strconv.Itoa(i))
		a.PutStr("http.route", "/flood/{id}")
		a.PutStr("http.request.method", "GET")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
		a.PutStr("client.address", "203.0.113.7")
		a.PutStr("server.address", "shop.example.com")
		if i%100 == 0 {
			if b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto(); len(b) >= size {
				return b
			}
		}
	}
}

// rawCodec sends pre-marshalled bytes, so the test's client holds one
// copy of a request however many calls send it.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// slowClients opens n connections that announce a body and send one byte
// of it.
func slowClients(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n\x0a")
		conns = append(conns, c)
	}
	return conns
}

// openFiles counts the process's open files (Linux).
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// resetPeakRSS returns the memory the tests before this one freed to the
// system and sets the process's peak resident set to what it holds then
// (Linux 4.0 and later), so that peakRSS measures from here rather than
// what those tests took. Elsewhere peakRSS stays the process's peak: a
// stricter check.
func resetPeakRSS(t *testing.T) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Logf("peak RSS not reset, it includes the tests before this one: %v", err)
	}
}

// peakRSS reads the process's peak resident set (Linux), 0 elsewhere.
func peakRSS(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
