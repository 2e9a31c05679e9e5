package otlp

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/evidentsec/evident/internal/ingest/ingesttest"
	"github.com/evidentsec/evident/internal/telemetry"
)

// The test clients compress with code other than the receiver's:
// grpc.WithCompressor and grpc.WithDecompressor take compressor objects
// that grpc-go uses instead of its process-wide registry, so requests are
// compressed as the Collector's otlp exporter does it, by the same
// libraries: the standard library's gzip (grpc-go's own gzip
// compressor), klauspost/compress's zstd encoder with configgrpc's
// 512 KiB window, and github.com/golang/snappy's framed writer, whatever
// else the test binary registers.

// clientCompressor compresses a client's requests with do.
type clientCompressor struct {
	name string
	do   func(w io.Writer, p []byte) error
}

func (c clientCompressor) Do(w io.Writer, p []byte) error { return c.do(w, p) }
func (c clientCompressor) Type() string                   { return c.name }

// collectorGzip compresses p as grpc-go's gzip compressor, the one
// configgrpc uses, does.
func collectorGzip(w io.Writer, p []byte) error {
	gw := gzip.NewWriter(w)
	if _, err := gw.Write(p); err != nil {
		return err
	}
	return gw.Close()
}

// collectorZstd compresses p as configgrpc's zstd compressor does.
func collectorZstd(w io.Writer, p []byte) error {
	enc, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(512<<10))
	if err != nil {
		return err
	}
	if _, err := enc.Write(p); err != nil {
		return err
	}
	return enc.Close()
}

// collectorSnappy compresses p as configgrpc's snappy compressor does.
func collectorSnappy(w io.Writer, p []byte) error {
	sw := snappy.NewBufferedWriter(w)
	if _, err := sw.Write(p); err != nil {
		return err
	}
	return sw.Close()
}

// sends returns a compressor that sends b whatever the message: bombs
// and corrupt streams, made once.
func sends(b []byte) func(io.Writer, []byte) error {
	return func(w io.Writer, _ []byte) error {
		_, err := w.Write(b)
		return err
	}
}

// compressed returns what compress makes of p.
func compressed(t *testing.T, compress func(io.Writer, []byte) error, p []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := compress(&buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zeros is a reader of n zero bytes.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// zstdZerosWindow compresses n zero bytes into one zstd frame with the
// given window, as a stream (the frame states its window, not its size).
func zstdZerosWindow(t *testing.T, n int64, window int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.ReadFrom(zeros(n)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dialCompressed connects to r's gRPC listener with a client that
// compresses every request with compress under the grpc-encoding name.
// It has no decompressor of that name for the answers, which come
// uncompressed.
func dialCompressed(t *testing.T, r *Receiver, name string, compress func(io.Writer, []byte) error) *grpc.ClientConn {
	t.Helper()
	//lint:ignore SA1019 only the legacy option compresses with an object outside grpc-go's process-wide registry.
	withCompressor := grpc.WithCompressor(clientCompressor{name, compress})
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), withCompressor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// exportTraces sends req over cc and returns the answer and the spans the
// consumer got from it.
func exportTraces(t *testing.T, cc *grpc.ClientConn, traces *recorder[[]telemetry.Span], req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, []telemetry.Span, error) {
	t.Helper()
	before := len(traces.all())
	resp, err := ptraceotlp.NewGRPCClient(cc).Export(t.Context(), req)
	var spans []telemetry.Span
	for _, b := range traces.all()[before:] {
		spans = append(spans, b...)
	}
	return resp, spans, err
}

// TestGRPCCompression: requests compressed as the Collector's otlp
// exporter compresses them (compression: gzip, zstd, snappy) are
// decompressed by the receiver's decompressor, the one OTLP/HTTP uses,
// into the spans of the same request uncompressed, and answered
// uncompressed; bombs are refused with RESOURCE_EXHAUSTED within about
// the 1 MiB limit, corrupt streams with INTERNAL (grpc-go's code for a
// message that does not decompress), an encoding no OTLP exporter sends
// with UNIMPLEMENTED, as gRPC asks, and the receiver serves the next
// request.
func TestGRPCCompression(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 20
	traces := &recorder[[]telemetry.Span]{}
	profiles := &recorder[[]*telemetry.ProfileBatch]{}
	r, _ := startReceiver(t, cfg, traces, profiles)

	// 200 spans and one the decoder drops, so that the answer carries a
	// partial success.
	req := tracesRequest(200, true)
	msg := mustProto(t, req)
	plain, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, want, err := exportTraces(t, plain, traces, req)
	if err != nil || len(want) != 200 {
		t.Fatalf("uncompressed: %d spans, %v; want 200", len(want), err)
	}

	goodZstd := compressed(t, collectorZstd, msg)
	goodSnappy := compressed(t, collectorSnappy, msg)
	corruptSnappy := bytes.Clone(goodSnappy)
	corruptSnappy[len(corruptSnappy)/2] ^= 0xff
	var snappyZeros bytes.Buffer // 4 MiB in about 200 KiB
	sw := snappy.NewBufferedWriter(&snappyZeros)
	if _, err := io.Copy(sw, zeros(4<<20)); err != nil {
		t.Fatal(err)
	}
	sw.Close()
	collector := map[string]func(io.Writer, []byte) error{"gzip": collectorGzip, "zstd": collectorZstd, "snappy": collectorSnappy}

	tests := []struct {
		name, encoding string
		compress       func(io.Writer, []byte) error
		wantCode       codes.Code
		wantMessage    string // substring of the status message
		// maxHeap bounds the heap's growth while the call is served
		// (client included); 0: not measured.
		maxHeap uint64
	}{
		{name: "gzip", encoding: "gzip", compress: collectorGzip, wantCode: codes.OK},
		{name: "zstd", encoding: "zstd", compress: collectorZstd, wantCode: codes.OK},
		{name: "snappy", encoding: "snappy", compress: collectorSnappy, wantCode: codes.OK},
		{name: "zstd bomb: 1 GiB of zeros", encoding: "zstd", compress: sends(zstdZerosWindow(t, 1<<30, 512<<10)),
			wantCode: codes.ResourceExhausted, wantMessage: "more than 1048576 bytes after decompression", maxHeap: 8 << 20},
		{name: "snappy over the limit: 4 MiB of zeros", encoding: "snappy", compress: sends(snappyZeros.Bytes()),
			wantCode: codes.ResourceExhausted, wantMessage: "more than 1048576 bytes after decompression", maxHeap: 8 << 20},
		{name: "zstd frame with a 16 MiB window", encoding: "zstd", compress: sends(zstdZerosWindow(t, 32<<20, 16<<20)),
			wantCode: codes.ResourceExhausted, wantMessage: "more than 1048576 bytes after decompression (zstd)", maxHeap: 8 << 20},
		{name: "corrupt zstd", encoding: "zstd", compress: sends([]byte("\x28\xb5\x2f\xfdnot zstd at all")),
			wantCode: codes.Internal, wantMessage: "corrupt compressed data: zstd"},
		{name: "truncated zstd", encoding: "zstd", compress: sends(goodZstd[:len(goodZstd)/2]),
			wantCode: codes.Internal, wantMessage: "corrupt compressed data: zstd"},
		{name: "corrupt snappy", encoding: "snappy", compress: sends(corruptSnappy),
			wantCode: codes.Internal, wantMessage: "corrupt compressed data: snappy"},
		{name: "snappy without its stream identifier", encoding: "snappy", compress: sends(goodSnappy[10:]),
			wantCode: codes.Internal, wantMessage: "corrupt compressed data: snappy"},
		{name: "lz4, which no OTLP exporter sends over gRPC", encoding: "lz4", compress: sends(goodSnappy),
			wantCode: codes.Unimplemented, wantMessage: `grpc-encoding "lz4" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := dialCompressed(t, r, tt.encoding, tt.compress)
			var resp ptraceotlp.ExportResponse
			var spans []telemetry.Span
			var err error
			peak := ingesttest.HeapPeak(func() { resp, spans, err = exportTraces(t, cc, traces, req) })
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMessage) {
				t.Errorf("answer %v %q, want %v with %q", st.Code(), st.Message(), tt.wantCode, tt.wantMessage)
			}
			if tt.maxHeap > 0 {
				t.Logf("heap grew by %d KiB", peak>>10)
				if peak > tt.maxHeap {
					t.Errorf("heap grew by %d KiB, want under %d KiB", peak>>10, tt.maxHeap>>10)
				}
			}
			if tt.wantCode != codes.OK {
				t.Logf("answer %v %q", st.Code(), st.Message())
				if len(spans) != 0 {
					t.Errorf("consumer got %d spans of a refused request", len(spans))
				}
				// The receiver serves the next request in the same
				// encoding, from a decoder that may be the one that failed.
				good, ok := collector[tt.encoding]
				if !ok {
					return
				}
				cc = dialCompressed(t, r, tt.encoding, good)
				resp, spans, err = exportTraces(t, cc, traces, req)
				if err != nil {
					t.Fatalf("next request: %v", err)
				}
			}
			if got := resp.PartialSuccess().RejectedSpans(); got != 1 {
				t.Errorf("answer rejects %d spans, want 1", got)
			}
			if diff := cmp.Diff(spans, want); diff != "" {
				t.Errorf("spans (-%s +uncompressed):\n%s", tt.encoding, diff)
			}
		})
	}

	t.Run("profiles", func(t *testing.T) {
		for name, compress := range collector {
			before := len(profiles.all())
			cc := dialCompressed(t, r, name, compress)
			if _, err := pprofileotlp.NewGRPCClient(cc).Export(t.Context(), profilesRequest(false)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if got := len(profiles.all()) - before; got != 1 {
				t.Errorf("%s: consumer got %d batches, want 1", name, got)
			}
		}
	})
}
