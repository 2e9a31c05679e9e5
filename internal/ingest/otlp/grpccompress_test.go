package otlp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"
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
// that grpc-go uses instead of its registry (grpc.UseCompressor looks its
// name up in the registry, where the receiver's compressors are), so
// requests are compressed, and answers decompressed, as the Collector's
// otlp exporter does it: klauspost/compress's zstd encoder with
// configgrpc's 512 KiB window, and github.com/golang/snappy's framed
// writer and reader.

// clientCompressor compresses a client's requests with do.
type clientCompressor struct {
	name string
	do   func(w io.Writer, p []byte) error
}

func (c clientCompressor) Do(w io.Writer, p []byte) error { return c.do(w, p) }
func (c clientCompressor) Type() string                   { return c.name }

// clientDecompressor decompresses a client's answers with do.
type clientDecompressor struct {
	name string
	do   func(r io.Reader) ([]byte, error)
}

func (c clientDecompressor) Do(r io.Reader) ([]byte, error) { return c.do(r) }
func (c clientDecompressor) Type() string                   { return c.name }

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

// clientDecoders decompress answers as configgrpc does.
var clientDecoders = map[string]func(io.Reader) ([]byte, error){
	"zstd": func(r io.Reader) ([]byte, error) {
		dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		return io.ReadAll(dec)
	},
	"snappy": func(r io.Reader) ([]byte, error) { return io.ReadAll(snappy.NewReader(r)) },
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
// compresses every request with compress under the grpc-encoding name,
// and reads answers in that encoding with its own decoder, counting them
// in answers.
func dialCompressed(t *testing.T, r *Receiver, name string, compress func(io.Writer, []byte) error) (cc *grpc.ClientConn, answers *atomic.Int64) {
	t.Helper()
	answers = new(atomic.Int64)
	decode := func(r io.Reader) ([]byte, error) {
		answers.Add(1)
		return clientDecoders[name](r)
	}
	//lint:ignore SA1019 only the legacy option compresses with an object outside grpc-go's registry, where the receiver's compressors are.
	withCompressor := grpc.WithCompressor(clientCompressor{name, compress})
	//lint:ignore SA1019 as above, for the answers.
	withDecompressor := grpc.WithDecompressor(clientDecompressor{name, decode})
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), withCompressor, withDecompressor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, answers
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
// exporter compresses them (compression: zstd, snappy) are decoded into
// the spans of the same request uncompressed, and answered in their
// compression; bombs are refused with RESOURCE_EXHAUSTED within about
// the 1 MiB limit, corrupt streams with INTERNAL (grpc-go's code for a
// message that does not decompress), and the receiver serves the next
// request.
func TestGRPCCompression(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 20
	traces := &recorder[[]telemetry.Span]{}
	profiles := &recorder[[]*telemetry.ProfileBatch]{}
	r, _ := startReceiver(t, cfg, traces, profiles)

	// 200 spans and one the decoder drops, so that the answer carries a
	// partial success: an empty answer would go uncompressed.
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
	collector := map[string]func(io.Writer, []byte) error{"zstd": collectorZstd, "snappy": collectorSnappy}

	tests := []struct {
		name, encoding string
		compress       func(io.Writer, []byte) error
		wantCode       codes.Code
		wantMessage    string // substring of the status message
		// maxHeap bounds the heap's growth while the call is served
		// (client included); 0: not measured.
		maxHeap uint64
	}{
		{name: "zstd", encoding: "zstd", compress: collectorZstd, wantCode: codes.OK},
		{name: "snappy", encoding: "snappy", compress: collectorSnappy, wantCode: codes.OK},
		{name: "zstd bomb: 1 GiB of zeros", encoding: "zstd", compress: sends(zstdZerosWindow(t, 1<<30, 512<<10)),
			wantCode: codes.ResourceExhausted, wantMessage: "after decompression larger than max 1048576", maxHeap: 8 << 20},
		{name: "snappy over the limit: 4 MiB of zeros", encoding: "snappy", compress: sends(snappyZeros.Bytes()),
			wantCode: codes.ResourceExhausted, wantMessage: "after decompression larger than max 1048576", maxHeap: 8 << 20},
		{name: "zstd frame with a 16 MiB window", encoding: "zstd", compress: sends(zstdZerosWindow(t, 32<<20, 16<<20)),
			wantCode: codes.Internal, wantMessage: "zstd: frame window over the", maxHeap: 8 << 20},
		{name: "corrupt zstd", encoding: "zstd", compress: sends([]byte("\x28\xb5\x2f\xfdnot zstd at all")),
			wantCode: codes.Internal, wantMessage: "failed to read decompressed data: zstd:"},
		{name: "truncated zstd", encoding: "zstd", compress: sends(goodZstd[:len(goodZstd)/2]),
			wantCode: codes.Internal, wantMessage: "failed to read decompressed data: zstd:"},
		{name: "corrupt snappy", encoding: "snappy", compress: sends(corruptSnappy),
			wantCode: codes.Internal, wantMessage: "failed to read decompressed data: snappy:"},
		{name: "snappy without its stream identifier", encoding: "snappy", compress: sends(goodSnappy[10:]),
			wantCode: codes.Internal, wantMessage: "failed to read decompressed data: snappy:"},
		{name: "lz4, which no OTLP exporter sends over gRPC", encoding: "lz4", compress: sends(goodSnappy),
			wantCode: codes.Unimplemented, wantMessage: `Decompressor is not installed for grpc-encoding "lz4"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, answers := dialCompressed(t, r, tt.encoding, tt.compress)
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
				cc, answers = dialCompressed(t, r, tt.encoding, good)
				resp, spans, err = exportTraces(t, cc, traces, req)
				if err != nil {
					t.Fatalf("next request: %v", err)
				}
			}
			// The answer was compressed by the receiver and read by the
			// client's own decoder.
			if got := resp.PartialSuccess().RejectedSpans(); got != 1 || answers.Load() != 1 {
				t.Errorf("answer rejects %d spans, %d answers decompressed by the client; want 1 and 1", got, answers.Load())
			}
			if diff := cmp.Diff(spans, want); diff != "" {
				t.Errorf("spans (-%s +uncompressed):\n%s", tt.encoding, diff)
			}
		})
	}

	t.Run("profiles", func(t *testing.T) {
		for name, compress := range collector {
			before := len(profiles.all())
			cc, _ := dialCompressed(t, r, name, compress)
			if _, err := pprofileotlp.NewGRPCClient(cc).Export(t.Context(), profilesRequest(false)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if got := len(profiles.all()) - before; got != 1 {
				t.Errorf("%s: consumer got %d batches, want 1", name, got)
			}
		}
	})
}

// TestZstdDecoderBounds: a zstd compressor's decoders refuse a frame
// whose window is over the largest limit raised, or over 8 MiB, before
// decoding it; the next message, after a refusal or after a message read
// partly, is read afresh, with the bound raised since; a reader can be
// closed twice, and reads nothing after.
func TestZstdDecoderBounds(t *testing.T) {
	msg := bytes.Repeat([]byte("span "), 1<<20) // 5 MiB, so the frames state their window
	frame := func(window int) []byte {
		var buf bytes.Buffer
		enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window))
		if err != nil {
			t.Fatal(err)
		}
		enc.Write(msg)
		enc.Close()
		return buf.Bytes()
	}
	c := &zstdCompressor{}
	tests := []struct {
		name    string
		raise   uint64
		window  int
		readAll bool // false: read 1 KiB and close, as grpc-go does past its limit
		wantErr string
	}{
		{"512 KiB window, 1 MiB limit", 1 << 20, 512 << 10, true, ""},
		{"2 MiB window, 1 MiB limit", 1 << 20, 2 << 20, true, "frame window over the 1048576 bytes accepted"},
		{"read partly", 1 << 20, 512 << 10, false, ""},
		{"2 MiB window, limit raised to 16 MiB", 16 << 20, 2 << 20, true, ""},
		{"16 MiB window, 16 MiB limit", 16 << 20, 16 << 20, true, "frame window over the 8388608 bytes accepted"},
		{"8 MiB window after a refusal", 16 << 20, 8 << 20, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.raise(tt.raise)
			dr, err := c.Decompress(bytes.NewReader(frame(tt.window)))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if tt.readAll {
				got, err = io.ReadAll(dr)
			} else {
				got = make([]byte, 1024)
				_, err = io.ReadFull(dr, got)
			}
			switch want := msg[:len(got)]; {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case tt.readAll:
				want = msg
				fallthrough
			default:
				if !bytes.Equal(got, want) {
					t.Errorf("read %d bytes that are not the message's first %d", len(got), len(want))
				}
			}
			closer := dr.(io.Closer)
			closer.Close()
			closer.Close()
			if _, err := dr.Read(make([]byte, 1)); !errors.Is(err, errReaderClosed) {
				t.Errorf("read after close: %v, want errReaderClosed", err)
			}
		})
	}
}
