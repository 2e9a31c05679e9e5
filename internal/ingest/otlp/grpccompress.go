package otlp

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	grpcencoding "google.golang.org/grpc/encoding"
)

// The gRPC compressions the OpenTelemetry Collector's otlp exporter
// offers besides gzip (configgrpc's compression: zstd, snappy), by their
// grpc-encoding names.
const (
	zstdEncoding   = "zstd"
	snappyEncoding = "snappy"
)

// grpcZstdWindow bounds the window a zstd frame may ask for, as
// ingest.Decompressor does for HTTP bodies: zstd's reference encoder
// uses at most 8 MiB below level 19, the Collector's exporter 512 KiB,
// and the decoder allocates the window (and two blocks) up front, so a
// frame asking for more is refused before anything is allocated.
const grpcZstdWindow = 8 << 20

// grpcCompressorsMu serialises registerGRPCCompressors. grpc-go decodes a
// message with the compressor registered under its grpc-encoding, in one
// process-wide map that it reads without a lock and that has no
// per-server form (encoding.RegisterCompressor); a receiver registers
// evident's compressors there when it is made, so two receivers made at
// once must not write the map together. This is the only state the
// package keeps outside a Receiver, and it holds nothing.
var grpcCompressorsMu sync.Mutex

// registerGRPCCompressors makes grpc-go decode (and answer in) zstd and
// snappy, the zstd decoders bounded by maxMessage (the receiver's limit).
// A name something else registered first keeps its compressor: its name
// is returned, for the caller to say so. Registering writes grpc-go's
// registry, which its calls read without a lock, so it must happen before
// gRPC calls run in the process: receivers are made before anything
// starts (internal/cli), and only the first one made writes the map.
//
// There is one compressor per name for the whole process, so the zstd
// decoders' memory bound is the largest max_request_bytes of the
// receivers made (one in evident serve); grpc-go bounds each message's
// decompressed size by its own server's limit (MaxRecvMsgSize) anyway.
func registerGRPCCompressors(maxMessage int64) (foreign []string) {
	grpcCompressorsMu.Lock()
	defer grpcCompressorsMu.Unlock()
	switch c := grpcencoding.GetCompressor(zstdEncoding).(type) {
	case nil:
		z := &zstdCompressor{}
		z.raise(uint64(maxMessage))
		grpcencoding.RegisterCompressor(z)
	case *zstdCompressor:
		c.raise(uint64(maxMessage))
	default:
		foreign = append(foreign, zstdEncoding)
	}
	switch grpcencoding.GetCompressor(snappyEncoding).(type) {
	case nil:
		grpcencoding.RegisterCompressor(&snappyCompressor{})
	case *snappyCompressor:
	default:
		foreign = append(foreign, snappyEncoding)
	}
	return foreign
}

var (
	_ grpcencoding.Compressor = (*zstdCompressor)(nil)
	_ grpcencoding.Compressor = (*snappyCompressor)(nil)
	// grpc-go closes a reader that is an io.Closer, once, which gives its
	// decoder back.
	_ io.ReadCloser = (*zstdReader)(nil)
	_ io.ReadCloser = (*snappyReader)(nil)
)

// errReaderClosed is a read after grpc-go closed the reader.
var errReaderClosed = errors.New("read after close")

// zstdCompressor is the "zstd" gRPC compressor: klauspost/compress zstd
// streams, as configgrpc sends them. Decoders are synchronous
// (concurrency 1), low on memory and refuse windows over grpcZstdWindow
// or maxMemory; grpc-go reads at most its limit + 1 bytes from them, so a
// bomb costs one limit, not its size. Every message gets a new decoder:
// a decoder reset for the next stream kept the history of the one before
// (ingest.Decompressor has the input that shows it), which a crafted
// frame's matches could copy from. Encoders are pooled. Safe for
// concurrent use.
type zstdCompressor struct {
	// maxMemory is the decoders' WithDecoderMaxMemory, which for a stream
	// bounds the window: the largest max_request_bytes of the receivers
	// that registered the compressor.
	maxMemory atomic.Uint64
	// encoders hold *zstd.Encoder.
	encoders sync.Pool
}

// raise lifts the decoders' memory bound to at least n.
func (c *zstdCompressor) raise(n uint64) {
	for {
		cur := c.maxMemory.Load()
		if n <= cur || c.maxMemory.CompareAndSwap(cur, n) {
			return
		}
	}
}

// Name is the grpc-encoding; see grpcencoding.Compressor.
func (*zstdCompressor) Name() string { return zstdEncoding }

// Decompress returns a reader of the message in r, with a decoder of its
// own. grpc-go closes it exactly once, which closes the decoder.
func (c *zstdCompressor) Decompress(r io.Reader) (io.Reader, error) {
	limit := c.maxMemory.Load()
	// Hidden behind a plain reader, the message is decoded as a stream:
	// given something with Bytes and Len, the decoder would decode it
	// whole, up to maxMemory, before grpc-go's limited reader could stop
	// it.
	dec, err := zstd.NewReader(struct{ io.Reader }{r}, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(grpcZstdWindow), zstd.WithDecoderMaxMemory(limit))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &zstdReader{dec: dec, window: min(limit, grpcZstdWindow)}, nil
}

// zstdReader reads one message; Close closes its decoder.
type zstdReader struct {
	dec    *zstd.Decoder // nil once closed
	window uint64
}

func (r *zstdReader) Read(b []byte) (int, error) {
	if r.dec == nil {
		return 0, fmt.Errorf("zstd: %w", errReaderClosed)
	}
	n, err := r.dec.Read(b)
	switch {
	case err == nil, err == io.EOF:
		return n, err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		// For a stream, both are the frame's window over the bound.
		return n, fmt.Errorf("zstd: frame window over the %d bytes accepted: %w", r.window, err)
	}
	return n, fmt.Errorf("zstd: %w", err)
}

// Close closes the decoder, once: a second Close does nothing.
func (r *zstdReader) Close() error {
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
	return nil
}

// Compress returns a writer of one zstd frame to w, as configgrpc's
// encoder writes (512 KiB window), at the fastest level: grpc-go answers
// a call in the compression of its request, and OTLP answers are small.
func (c *zstdCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	enc, _ := c.encoders.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		if enc, err = zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(512<<10),
			zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true)); err != nil {
			return nil, fmt.Errorf("zstd encoder: %w", err)
		}
	} else {
		enc.Reset(w)
	}
	return &pooledWriter{name: "zstd", w: enc, pool: &c.encoders}, nil
}

// snappyCompressor is the "snappy" gRPC compressor: the snappy framing
// format, as github.com/golang/snappy's NewBufferedWriter and NewReader
// (configgrpc's) write and read it, read with klauspost/compress's
// snappy reader: chunks of at most 64 KiB, checksums verified, S2's
// extensions of the format read too (nothing sends them as snappy, and
// they are bounded alike). grpc-go reads at most its limit + 1 bytes from
// it. Readers and writers are
// pooled. Safe for concurrent use.
type snappyCompressor struct {
	// readers and writers hold *s2.Reader and *s2.Writer, reset.
	readers, writers sync.Pool
}

// Name is the grpc-encoding; see grpcencoding.Compressor.
func (*snappyCompressor) Name() string { return snappyEncoding }

// Decompress returns a reader of the message in r. grpc-go closes it
// exactly once, which puts it back in the pool.
func (c *snappyCompressor) Decompress(r io.Reader) (io.Reader, error) {
	sr, _ := c.readers.Get().(*s2.Reader)
	if sr == nil {
		sr = snappy.NewReader(r)
	} else {
		sr.Reset(r)
	}
	return &snappyReader{r: sr, pool: &c.readers}, nil
}

// snappyReader reads one message; Close gives its reader back.
type snappyReader struct {
	r    *s2.Reader // nil once closed
	pool *sync.Pool
}

func (r *snappyReader) Read(b []byte) (int, error) {
	if r.r == nil {
		return 0, fmt.Errorf("snappy: %w", errReaderClosed)
	}
	n, err := r.r.Read(b)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("snappy: %w", err)
	}
	return n, err
}

// Close resets the reader (Reset forgets the stream read, its error
// included) and puts it back in the pool, once.
func (r *snappyReader) Close() error {
	if r.r == nil {
		return nil
	}
	sr := r.r
	r.r = nil
	sr.Reset(nil)
	r.pool.Put(sr)
	return nil
}

// Compress returns a writer of a snappy framed stream to w, compatible
// with golang/snappy's reader; synchronous, so that a pooled writer runs
// no goroutine.
func (c *snappyCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	sw, _ := c.writers.Get().(*s2.Writer)
	if sw == nil {
		sw = s2.NewWriter(w, s2.WriterSnappyCompat(), s2.WriterConcurrency(1))
	} else {
		sw.Reset(w)
	}
	return &pooledWriter{name: "snappy", w: sw, pool: &c.writers}, nil
}

// resetWriter is a compressing writer that can be reset to write to
// another io.Writer: *zstd.Encoder, *s2.Writer.
type resetWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// pooledWriter writes one message with a pooled compressing writer; Close
// finishes the stream and gives the writer back.
type pooledWriter struct {
	name string      // of the compression, for errors
	w    resetWriter // nil once closed
	pool *sync.Pool
}

func (w *pooledWriter) Write(b []byte) (int, error) {
	if w.w == nil {
		return 0, fmt.Errorf("%s: write after close", w.name)
	}
	return w.w.Write(b)
}

// Close finishes the stream. The writer goes back to the pool, reset to
// no writer, only when the stream was written whole.
func (w *pooledWriter) Close() error {
	if w.w == nil {
		return nil
	}
	cw := w.w
	w.w = nil
	if err := cw.Close(); err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	cw.Reset(nil)
	w.pool.Put(cw)
	return nil
}
