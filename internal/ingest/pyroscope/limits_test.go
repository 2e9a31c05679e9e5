package pyroscope

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/ingest/ingesttest"
)

// The attacks of issue 9 on the Pyroscope receiver, scaled down by small
// limits: each asserts the answer and a memory ceiling.

func compressZeros(t testing.TB, n int, zstdCodec bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	if zstdCodec {
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	} else {
		w = gzip.NewWriter(&buf)
	}
	chunk := make([]byte, 1<<20)
	for n > 0 {
		m := min(n, len(chunk))
		w.Write(chunk[:m])
		n -= m
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPushBomb: one small Push of 200 profiles, each 900 KiB after
// decompression, under a 1 MiB limit. The limit holds for the request,
// not for each profile: the Push is refused with INVALID_ARGUMENT naming
// max_request_bytes, after decompressing about the limit, not 180 MiB.
func TestPushBomb(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 20
	rec := &recorder{}
	r, _ := startReceiver(t, cfg, rec)
	bomb := compressZeros(t, 900<<10, false)
	profiles := make([][]byte, 200)
	for i := range profiles {
		profiles[i] = bomb
	}
	req := pushRequest(t, profiles...)
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, "http://"+r.Addr())
	var err error
	peak := ingesttest.HeapPeak(func() {
		_, err = client.Push(t.Context(), connect.NewRequest(req))
	})
	t.Logf("heap grew by %d MiB", peak>>20)
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "max_request_bytes 1048576") {
		t.Errorf("Push: %v, want INVALID_ARGUMENT naming max_request_bytes", err)
	}
	if len(rec.all()) != 0 {
		t.Errorf("consumer got %d batches of a refused Push", len(rec.all()))
	}
	if peak > 32<<20 {
		t.Errorf("heap grew by %d MiB, want under 32 MiB", peak>>20)
	}
}

// manySamples returns a gzipped CPU profile of n samples.
func manySamples(t testing.TB, n int) []byte {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "main.handler", SystemName: "main.handler", Filename: "/src/main.go"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn, Line: 12}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		TimeNanos:  time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixNano(),
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
	}
	for range n {
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{10_000_000}})
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSampleLimit: a profile over max_samples is refused, by /ingest with
// 413 and by Push with INVALID_ARGUMENT, both naming the limit.
func TestSampleLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Profiles.MaxSamples = 100
	rec := &recorder{}
	r, _ := startReceiver(t, cfg, rec)
	prof := manySamples(t, 101)
	resp, err := http.Post("http://"+r.Addr()+IngestPath+"?name=checkout", "application/octet-stream", bytes.NewReader(prof))
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	msg.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(msg.String(), "over max_samples 100") {
		t.Errorf("/ingest: %d %q, want 413 naming max_samples", resp.StatusCode, msg.String())
	}
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, "http://"+r.Addr())
	_, err = client.Push(t.Context(), connect.NewRequest(pushRequest(t, prof)))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "over max_samples 100") {
		t.Errorf("Push: %v, want INVALID_ARGUMENT naming max_samples", err)
	}
	if len(rec.all()) != 0 {
		t.Errorf("consumer got %d batches", len(rec.all()))
	}
}

// TestIngestBombs: /ingest bodies that are zstd or gzip bombs, four at
// once, under a 1 MiB limit: 413 each.
func TestIngestBombs(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 20
	r, _ := startReceiver(t, cfg, &recorder{})
	bombs := map[string][]byte{"zstd": compressZeros(t, 100<<20, true), "gzip": compressZeros(t, 100<<20, false)}
	peak := ingesttest.HeapPeak(func() {
		done := make(chan struct{})
		for name, bomb := range bombs {
			for range 4 {
				go func() {
					defer func() { done <- struct{}{} }()
					resp, err := http.Post("http://"+r.Addr()+IngestPath+"?name=checkout", "application/octet-stream", bytes.NewReader(bomb))
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusRequestEntityTooLarge {
						t.Errorf("%s bomb: %d, want 413", name, resp.StatusCode)
					}
				}()
			}
		}
		for range 4 * len(bombs) {
			<-done
		}
	})
	t.Logf("heap grew by %d MiB", peak>>20)
	if peak > 64<<20 {
		t.Errorf("heap grew by %d MiB, want under 64 MiB", peak>>20)
	}
}

// TestBudget: with the byte budget spent by other requests, a Push is
// throttled (RESOURCE_EXHAUSTED with Retry-After) and /ingest answers 429;
// a Push that alone needs more than the budget is refused for good.
func TestBudget(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 4 << 20
	acfg := admission.DefaultConfig()
	acfg.MaxBufferedBytes = 1 << 20
	adm, err := admission.New(acfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, &recorder{}, nil, nil, adm)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, "http://"+r.Addr())

	_, err = client.Push(t.Context(), connect.NewRequest(pushRequest(t, make([]byte, 2<<20))))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "max_buffered_bytes") {
		t.Errorf("Push over the whole budget: %v, want INVALID_ARGUMENT naming max_buffered_bytes", err)
	}

	other := adm.Ticket()
	if err := other.Reserve(1 << 20); err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	_, err = client.Push(t.Context(), connect.NewRequest(pushRequest(t, cpuProfile(t))))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted || ce.Meta().Get("Retry-After") != "1" {
		t.Errorf("Push with the budget spent: %v, want RESOURCE_EXHAUSTED with Retry-After 1", err)
	}
	resp, err := http.Post("http://"+r.Addr()+IngestPath+"?name=checkout", "application/octet-stream", bytes.NewReader(cpuProfile(t)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("/ingest with the budget spent: %d Retry-After %q, want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestPushOverLimitRefused: a Push message over max_request_bytes is
// refused as invalid, naming the limit, however it comes: gzipped (over
// the limit once inflated, which Connect refused as throttled, 429, after
// inflating all of it), or uncompressed with no length announced. A
// client retries a throttled request; this one can never pass.
func TestPushOverLimitRefused(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 64 << 10
	rec := &recorder{}
	r, _ := startReceiver(t, cfg, rec)
	req := pushRequest(t, cpuProfile(t), make([]byte, 200<<10))
	for _, tt := range []struct {
		name string
		hc   *http.Client
		opts []connect.ClientOption
	}{
		{"connect, gzip", http.DefaultClient, []connect.ClientOption{connect.WithSendGzip()}},
		{"grpc, gzip", h2cClient(), []connect.ClientOption{connect.WithGRPC(), connect.WithSendGzip()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := pushv1connect.NewPusherServiceClient(tt.hc, "http://"+r.Addr(), tt.opts...)
			_, err := client.Push(t.Context(), connect.NewRequest(req))
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "the message is over max_request_bytes 65536 after decompression") {
				t.Errorf("Push: %v, want INVALID_ARGUMENT naming max_request_bytes", err)
			}
		})
	}
	t.Run("no length announced", func(t *testing.T) {
		msg, err := protoMarshal(req)
		if err != nil {
			t.Fatal(err)
		}
		// A reader whose length net/http cannot tell: sent chunked.
		resp, err := http.Post("http://"+r.Addr()+PushPath, "application/proto", io.MultiReader(bytes.NewReader(msg)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "the body is over max_request_bytes 65536") {
			t.Errorf("status %d %s, want 400 naming max_request_bytes", resp.StatusCode, body)
		}
	})
	if len(rec.all()) != 0 {
		t.Errorf("consumer got %d batches of refused Pushes", len(rec.all()))
	}
}

// TestPushHeldIsReserved: while a Push is held (here by its consumer),
// the budget counts the profiles its decoded message holds, which a
// gzipped message inflated beyond what the budget saw arrive.
func TestPushHeldIsReserved(t *testing.T) {
	cfg := testConfig()
	acfg := admission.DefaultConfig()
	acfg.MaxBufferedBytes = 4 << 20
	adm, err := admission.New(acfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{entered: make(chan struct{}, 1), open: make(chan struct{})}
	r, err := New(cfg, g, nil, nil, adm)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	// A profile and 900 KiB that is not one, a few KiB gzipped.
	req := pushRequest(t, cpuProfile(t), make([]byte, 900<<10))
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, "http://"+r.Addr(), connect.WithSendGzip())
	done := make(chan error, 1)
	go func() {
		_, err := client.Push(context.Background(), connect.NewRequest(req))
		done <- err
	}()
	<-g.entered
	if held := adm.Buffered(); held < 900<<10 {
		t.Errorf("%d bytes reserved while the Push is held, want at least its 900 KiB of profiles", held)
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatalf("Push: %v", err)
	}
}
