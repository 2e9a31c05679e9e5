package otlp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/ingest/ingesttest"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// The attacks of issue 9, scaled down by small limits so that the tests
// stay quick: each asserts the answer and a memory ceiling far below
// what the attack took before.

// zstdZeros compresses n zero bytes: 100 MiB take about 3 KiB.
func zstdZeros(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for n > 0 {
		m := min(n, len(chunk))
		if _, err := zw.Write(chunk[:m]); err != nil {
			t.Fatal(err)
		}
		n -= m
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestZstdBomb: 100 MiB of zeros in a few KiB of zstd, with and without
// Content-Encoding, four at once, against a 1 MiB limit: 413 each, and
// the receiver never holds more than a few limits' worth.
func TestZstdBomb(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 20
	r, _ := startReceiver(t, cfg, &recorder[[]telemetry.Span]{}, &recorder[[]*telemetry.ProfileBatch]{})
	bomb := zstdZeros(t, 100<<20)
	var valid bytes.Buffer // a valid request of 3 MiB
	zw, _ := zstd.NewWriter(&valid)
	zw.Write(mustProto(t, tracesRequest(20000, false)))
	zw.Close()
	cases := []struct {
		name, path, contentType, encoding string
		body                              []byte
	}{
		{"sniffed", TracesPath, "application/x-protobuf", "", bomb},
		{"declared", TracesPath, "application/x-protobuf", "zstd", bomb},
		{"json", TracesPath, "application/json", "", bomb},
		{"profiles", ProfilesPath, "application/x-protobuf", "", bomb},
		{"valid request over the limit", TracesPath, "application/x-protobuf", "", valid.Bytes()},
	}
	peak := ingesttest.HeapPeak(func() {
		var wg sync.WaitGroup
		for _, tc := range cases {
			for range 4 {
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodPost, "http://"+r.HTTPAddr()+tc.path, bytes.NewReader(tc.body))
					req.Header.Set("Content-Type", tc.contentType)
					if tc.encoding != "" {
						req.Header.Set("Content-Encoding", tc.encoding)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Errorf("%s: %v", tc.name, err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusRequestEntityTooLarge {
						t.Errorf("%s: status %d, want 413", tc.name, resp.StatusCode)
					}
				})
			}
		}
		wg.Wait()
	})
	t.Logf("heap grew by %d MiB", peak>>20)
	// 20 requests at once: their 1 MiB buffers and zstd windows; the
	// bombs expanded would be 2 GB.
	if peak > 96<<20 {
		t.Errorf("heap grew by %d MiB, want under 96 MiB", peak>>20)
	}
}

// rawCodec sends pre-marshalled bytes, so that a test's client holds one
// copy of a request however many calls send it.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestGRPCFlood: 100 concurrent calls of almost the 1 MiB limit while the
// consumer is slow. Each call reserves its message as it arrives, and
// keeps what the message holds: while the consumer holds them, at most
// the budget's worth of calls (4 MiB) are past the read, and the others
// are refused with RESOURCE_EXHAUSTED and a RetryInfo once the budget is
// spent, or served once the consumer lets the others go; heap stays near
// the budget. The calls share the budget as their bytes arrive, and the
// first the budget refused waits for room while the others are
// refused, so one call always gets through (admission.ReserveRead);
// the next call, once the flood has been answered, is served.
func TestGRPCFlood(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 20
	cfg.ReadHeaderTimeout, cfg.ReadTimeout = time.Second, 3*time.Second
	const budget = 4 << 20
	g := &gate{entered: make(chan struct{}, 100), open: make(chan struct{})}
	r, adm := startBudgeted(t, cfg, g, budget)
	n := 1
	for len(mustProto(t, tracesRequest(n*2, false))) < 900<<10 {
		n *= 2
	}
	msg := mustProto(t, tracesRequest(n, false))
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	const calls = 100
	codes := make([]codes.Code, calls)
	var retryInfo, admitted int
	answered := make(chan struct{}, calls)
	var peakBuffered int64
	var mu sync.Mutex
	peak := ingesttest.HeapPeak(func() {
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				var resp []byte
				err := cc.Invoke(t.Context(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", msg, &resp, grpc.ForceCodec(rawCodec{}))
				st := status.Convert(err)
				codes[i] = st.Code()
				mu.Lock()
				retryInfo += len(st.Details())
				mu.Unlock()
				answered <- struct{}{}
			})
		}
		// The admitted calls wait in the consumer until the others have
		// been answered.
		deadline := time.After(10 * time.Second)
	wait:
		for done := 0; done+admitted < calls; {
			select {
			case <-g.entered:
				admitted++
				if buffered := adm.Buffered(); buffered > peakBuffered {
					peakBuffered = buffered
				}
			case <-answered:
				done++
			case <-deadline:
				break wait
			}
		}
		close(g.open)
		wg.Wait()
	})
	counts := map[string]int{}
	for _, c := range codes {
		counts[c.String()]++
	}
	// A call past the read holds its 900 KiB message and its decoded spans.
	if admitted == 0 || admitted > 4 {
		t.Errorf("%d calls past the read at once, want 1 to 4 (the 4 MiB budget)", admitted)
	}
	if peakBuffered > budget {
		t.Errorf("%d bytes reserved, over the %d budget", peakBuffered, budget)
	}
	// A call whose read_timeout ends while its message arrives gets
	// DEADLINE_EXCEEDED, which OTLP clients retry too.
	if counts["OK"] < admitted || counts["ResourceExhausted"]+counts["DeadlineExceeded"] != calls-counts["OK"] {
		t.Errorf("answers %v, want OK for the %d admitted calls and RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED for the rest", counts, admitted)
	}
	if retryInfo != counts["ResourceExhausted"] {
		t.Errorf("%d RetryInfo for %d refusals", retryInfo, counts["ResourceExhausted"])
	}
	if !released(adm) {
		t.Errorf("%d bytes still reserved after every call ended", adm.Buffered())
	}
	var resp []byte
	if err := cc.Invoke(t.Context(), tracesMethod, msg, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		t.Errorf("a call after the flood: %v", err)
	}
	t.Logf("answers %v, %d past the read at once, heap grew by %d MiB", counts, admitted, peak>>20)
	// Before, every call was read and decoded: about 200 MiB here. Now
	// the calls past the read hold the budget's worth and their spans,
	// and the others what the budget let them read before their refusal.
	if peak > 64<<20 {
		t.Errorf("heap grew by %d MiB, want under 64 MiB", peak>>20)
	}
}

// TestGRPCSlowCall: a call whose message never arrives holds no request
// slot, so another call is served while it waits, and it ends at
// read_timeout with DEADLINE_EXCEEDED.
func TestGRPCSlowCall(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrentRequests = 1
	cfg.ReadHeaderTimeout, cfg.ReadTimeout = 200*time.Millisecond, 500*time.Millisecond
	r, _ := startReceiver(t, cfg, &recorder[[]telemetry.Span]{}, nil)
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// A client stream opened and never sent on.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, tracesMethod, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(t.Context(), tracesRequest(1, false)); err != nil {
		t.Errorf("call beside the stalled one, with one request slot: %v", err)
	}
	var resp []byte
	if err := stream.RecvMsg(&resp); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("stalled call: %v, want DEADLINE_EXCEEDED at read_timeout", err)
	}
}

// TestGRPCStalledCalls: calls that send 20 KB of a large message and then
// stop hold what they sent, not a reservation of the largest message
// (two of them held the whole 64 MiB budget before, and OTLP/gRPC and
// OTLP/HTTP were refused until read_timeout), nor request slots: more of
// them than there are slots, a normal call over each transport is served
// at once.
func TestGRPCStalledCalls(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrentRequests = 4
	r, adm := startBudgeted(t, cfg, &recorder[[]telemetry.Span]{}, 0)
	big := mustProto(t, tracesRequest(3000, false))
	const stalled = 3 * 4
	dial, closeStalled := ingesttest.StallDialer(20 << 10)
	for range stalled {
		cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		go cc.Invoke(t.Context(), tracesMethod, big, new([]byte), grpc.ForceCodec(rawCodec{}))
	}
	defer closeStalled()
	// Until the stalled calls hold what they sent.
	deadline := time.Now().Add(10 * time.Second)
	for adm.Buffered() < stalled*(10<<10) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	held := adm.Buffered()
	// Each holds what it sent, and the room of the buffer that waits for
	// the rest.
	if most := int64(stalled * (20<<10 + 2*16<<10)); held == 0 || held > most {
		t.Errorf("%d stalled calls of a %d-byte message hold %d bytes of the budget, want 1 to %d", stalled, len(big), held, most)
	}
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, tracesRequest(1, false)); err != nil {
		t.Errorf("OTLP/gRPC beside %d stalled calls: %v", stalled, err)
	}
	resp, err := http.Post("http://"+r.HTTPAddr()+TracesPath, "application/x-protobuf", bytes.NewReader(mustProto(t, tracesRequest(1, false))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("OTLP/HTTP beside %d stalled calls: %d, want 200", stalled, resp.StatusCode)
	}
	t.Logf("%d stalled calls hold %d bytes", stalled, held)
}

// TestSlowBodies: more clients than request slots send their bodies
// slowly; they hold bytes, not slots, so a normal client is served at
// once, and each slow one loses its connection at read_timeout.
func TestSlowBodies(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrentRequests = 2
	cfg.ReadHeaderTimeout, cfg.ReadTimeout = 200*time.Millisecond, 500*time.Millisecond
	traces := &recorder[[]telemetry.Span]{}
	r, _ := startReceiver(t, cfg, traces, nil)
	var slow []net.Conn
	for range 3 * cfg.MaxConcurrentRequests {
		c, err := net.Dial("tcp", r.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n\x0a", TracesPath)
		slow = append(slow, c)
	}
	body := mustProto(t, tracesRequest(1, false))
	resp, err := http.Post("http://"+r.HTTPAddr()+TracesPath, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("normal client beside %d slow ones: %d, want 200", len(slow), resp.StatusCode)
	}
	for i, c := range slow {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("slow client %d: %d", i, resp.StatusCode)
			}
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("slow client %d still connected after read_timeout", i)
		}
	}
}

// TestZstdRequest: zstd requests within the limit are read, declared or
// recognised by content, as the Collector's exporters send them.
func TestZstdRequest(t *testing.T) {
	traces := &recorder[[]telemetry.Span]{}
	r, _ := startReceiver(t, testConfig(), traces, nil)
	plain := mustProto(t, tracesRequest(10, false))
	var stream bytes.Buffer
	zw, err := zstd.NewWriter(&stream)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(plain)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	whole := enc.EncodeAll(plain, nil)
	for _, tc := range []struct {
		name, encoding string
		body           []byte
	}{
		{"stream declared", "zstd", stream.Bytes()},
		{"stream sniffed", "", stream.Bytes()},
		{"whole declared", "zstd", whole},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.HTTPAddr()+TracesPath, bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", tc.encoding)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %q, want 200", tc.name, resp.StatusCode, msg)
		}
	}
	if got := countSpans(traces.all()); got != 30 {
		t.Errorf("%d spans, want 30", got)
	}
}

// TestManyTinySpans: a request within max_request_bytes whose spans,
// decoded, would take more than the whole byte budget is refused as too
// large (413; RESOURCE_EXHAUSTED without RetryInfo), not decoded.
func TestManyTinySpans(t *testing.T) {
	traces := &recorder[[]telemetry.Span]{}
	r, adm := startBudgeted(t, testConfig(), traces, 2<<20)
	req := tracesRequest(5000, false) // 5000 spans of 1 KiB each decoded, under 1 MiB on the wire
	resp, err := http.Post("http://"+r.HTTPAddr()+TracesPath, "application/x-protobuf", bytes.NewReader(mustProto(t, req)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("HTTP: %d, want 413", resp.StatusCode)
	}
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = ptraceotlp.NewGRPCClient(cc).Export(t.Context(), req)
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || len(st.Details()) != 0 {
		t.Errorf("gRPC: %v with details %v, want RESOURCE_EXHAUSTED without RetryInfo", st.Code(), st.Details())
	}
	if n := countSpans(traces.all()); n != 0 {
		t.Errorf("consumer got %d spans", n)
	}
	if !released(adm) {
		t.Errorf("%d bytes still reserved", adm.Buffered())
	}
}

// released waits for the reservations of ended calls to go: a call
// gives its reservation back just after it is answered.
func released(adm *admission.Controller) bool {
	for range 500 {
		if adm.Buffered() == 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestBudgetSpent: while other requests hold the whole byte budget, both
// transports throttle at once (429 with Retry-After; RESOURCE_EXHAUSTED
// with RetryInfo), and serve again once it is released.
func TestBudgetSpent(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 512 << 10
	r, adm := startBudgeted(t, cfg, &recorder[[]telemetry.Span]{}, 1<<20)
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	body := mustProto(t, tracesRequest(1, false))
	post := func() *http.Response {
		resp, err := http.Post("http://"+r.HTTPAddr()+TracesPath, "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	other := adm.Ticket()
	if err := other.Reserve(1 << 20); err != nil {
		t.Fatal(err)
	}
	if resp := post(); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("HTTP: %d Retry-After %q, want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, err = ptraceotlp.NewGRPCClient(cc).Export(t.Context(), tracesRequest(1, false))
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || len(st.Details()) != 1 {
		t.Errorf("gRPC: %v with details %v, want RESOURCE_EXHAUSTED with RetryInfo", st.Code(), st.Details())
	}
	other.Release()
	if resp := post(); resp.StatusCode != http.StatusOK {
		t.Errorf("HTTP after the release: %d, want 200", resp.StatusCode)
	}
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(t.Context(), tracesRequest(1, false)); err != nil {
		t.Errorf("gRPC after the release: %v", err)
	}
}

// TestGRPCManyClients: 100 clients send 1000-span calls at once with the
// default limits (16 MiB messages, 64 MiB budget, 64 slots). Every call
// within the slots is served: a call reserves what its message holds as
// it arrives, not the most a message may hold. Reserving that for the
// whole call, from admission on, let two calls in at a time and refused
// the others.
func TestGRPCManyClients(t *testing.T) {
	cfg := testConfig()
	r, adm := startBudgeted(t, cfg, &recorder[[]telemetry.Span]{}, 0)
	msg := mustProto(t, tracesRequest(1000, false))
	const clients = 100
	got := make([]codes.Code, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			// A connection each, as separate exporters have: one
			// connection would queue its streams beyond the slots.
			cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Error(err)
				return
			}
			defer cc.Close()
			var resp []byte
			err = cc.Invoke(t.Context(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", msg, &resp, grpc.ForceCodec(rawCodec{}))
			got[i] = status.Code(err)
		})
	}
	wg.Wait()
	counts := map[string]int{}
	for _, c := range got {
		counts[c.String()]++
	}
	// Beyond the 64 slots a call is refused for lack of one, whatever
	// its size; how many arrive together depends on the scheduler.
	if counts["OK"] < cfg.MaxConcurrentRequests || counts["OK"]+counts["ResourceExhausted"] != clients {
		t.Errorf("answers %v, want at least %d OK (the slots), the rest RESOURCE_EXHAUSTED", counts, cfg.MaxConcurrentRequests)
	}
	t.Logf("answers %v", counts)
	if !released(adm) {
		t.Errorf("%d bytes still reserved after every call ended", adm.Buffered())
	}
}

// TestGRPCTinyFrames: a client that sends its message in DATA frames of
// one byte each holds about what it sent, however its message is cut:
// grpc-go, when it served OTLP/gRPC under ServeHTTP, kept the 16 KiB
// buffer of every read of the body until the message was read, so that
// 4,000 bytes in frames read one at a time would have held 64 MiB.
func TestGRPCTinyFrames(t *testing.T) {
	r, adm := startBudgeted(t, testConfig(), &recorder[[]telemetry.Span]{}, 0)
	c, err := net.Dial("tcp", r.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex // the framer's writes
	fr := http2.NewFramer(c, c)
	write := func(f func() error) {
		mu.Lock()
		defer mu.Unlock()
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	go func() { // acknowledge the server's settings, drop the rest
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				mu.Lock()
				fr.WriteSettingsAck()
				mu.Unlock()
			}
		}
	}()
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", tracesMethod},
		{":authority", r.GRPCAddr()}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	write(func() error { _, err := c.Write([]byte(http2.ClientPreface)); return err })
	write(func() error { return fr.WriteSettings() })
	write(func() error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndHeaders: true})
	})
	const sent = 4000
	peak := ingesttest.HeapPeak(func() {
		write(func() error { return fr.WriteData(1, false, []byte{0, 0, 1, 0, 0}) }) // a 64 KiB message
		for range sent {
			write(func() error { return fr.WriteData(1, false, []byte{0x0a}) })
		}
		deadline := time.Now().Add(10 * time.Second)
		for adm.Buffered() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the last frames read
	})
	if held := adm.Buffered(); held == 0 || held > 32<<10 {
		t.Errorf("%d bytes in frames of one byte hold %d bytes of the budget, want 1 to 32 KiB", sent, held)
	}
	if peak > 8<<20 {
		t.Errorf("heap grew by %d KiB, want under 8 MiB", peak>>10)
	}
	t.Logf("%d one-byte frames: %d bytes reserved, heap grew by %d KiB", sent, adm.Buffered(), peak>>10)
}

// startBudgeted starts a receiver of cfg whose traces go to traces,
// admitted on a byte budget of budget bytes (0: the default), and shuts
// it down at the end of the test.
func startBudgeted(t *testing.T, cfg Config, traces pipeline.Consumer[[]telemetry.Span], budget int64) (*Receiver, *admission.Controller) {
	t.Helper()
	acfg := admission.DefaultConfig()
	if budget > 0 {
		acfg.MaxBufferedBytes = budget
	}
	adm, err := admission.New(acfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, traces, nil, nil, nil, adm)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r, adm
}

// TestHTTPBodyTimeout: a body that stops arriving is answered 408 at
// read_timeout, saying so, and counted as a timeout: not 400 and the
// network error's text, as for a malformed request, which a client must
// not send again.
func TestHTTPBodyTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.ReadHeaderTimeout, cfg.ReadTimeout = 200*time.Millisecond, 500*time.Millisecond
	r, _ := startReceiver(t, cfg, &recorder[[]telemetry.Span]{}, nil)
	conn, err := net.Dial("tcp", r.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: evident\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789", TracesPath)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st spb.Status
	if err := proto.Unmarshal(body, &st); err != nil {
		t.Fatalf("answer %d: %q is not a Status: %v", resp.StatusCode, body, err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || st.GetMessage() != "the body did not arrive within read_timeout 500ms" {
		t.Errorf("answer %d %q, want 408 saying the body did not arrive within read_timeout", resp.StatusCode, st.GetMessage())
	}
	if got := testutil.ToFloat64(r.m.RefusedRequests.WithLabelValues("otlp", "http", "traces", ingest.ReasonTimeout)); got != 1 {
		t.Errorf("refused requests for timeout: %v, want 1", got)
	}
}
