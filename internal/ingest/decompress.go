package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/evidentsec/evident/internal/inflate"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Errors of reading a body; receivers map them to their statuses.
var (
	// ErrTooLarge: over the limit, before or after decompression (413).
	ErrTooLarge = errors.New("request too large")
	// ErrEncoding: a content encoding the receivers do not decode (415).
	ErrEncoding = errors.New("unsupported content encoding")
	// ErrCorrupt: compressed data that does not decompress (400).
	ErrCorrupt = errors.New("corrupt compressed data")
)

// Magic numbers of the compressed formats recognised by content, and
// the start of every snappy framed stream (its stream identifier chunk).
const (
	gzipMagic          = "\x1f\x8b"
	zstdMagic          = "\x28\xb5\x2f\xfd"
	snappyFramedHeader = "\xff\x06\x00\x00sNaPpY"
)

// Decompressor undoes a Content-Encoding or, when none is declared, a
// gzip or zstd stream recognised by its magic number, always within a
// limit on the decompressed size. The encodings are those the
// OpenTelemetry Collector's HTTP clients send and its receivers accept
// (confighttp): gzip, zstd, deflate and zlib (both the zlib format),
// snappy (the block format, or the framed format, which the Collector
// sent under this name before x-snappy-framed existed: told apart by the
// framed format's header), x-snappy-framed, and lz4 (the LZ4 frame
// format). Every stream is read within the limit, so a bomb is refused
// after limit+1 bytes instead of being expanded: through one limited
// reader, or, for gzip, by internal/inflate into a buffer of at most the
// limit (Decompressor.inflate); a snappy block states its length up front, and one
// longer than the limit is refused before it is decoded. Nested
// compression is refused, since nothing legitimate sends it and the
// decoders behind would undo it again with the larger limits meant for
// files. Safe for concurrent use.
type Decompressor struct {
	maxLimit  int64
	inflaters sync.Pool
}

// NewDecompressor returns a Decompressor for limits up to maxLimit.
func NewDecompressor(maxLimit int64) *Decompressor {
	return &Decompressor{maxLimit: maxLimit}
}

// zstdWindow bounds the window a zstd frame may ask for: zstd's
// reference encoder uses at most 8 MiB below level 19, and a frame
// asking more could make the decoder allocate that much up front.
const zstdWindow = 8 << 20

// Decompress returns data decoded per encoding ("" or "identity": by
// content), at most limit bytes, in dst's storage (grown when needed);
// decompressed bytes are reserved on t. Data that is not compressed is
// returned as is (it was read under the limit already).
func (d *Decompressor) Decompress(dst, data []byte, encoding string, limit int64, t *admission.Ticket) ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(encoding))
	switch enc {
	case "", "identity":
		switch {
		case bytes.HasPrefix(data, []byte(gzipMagic)):
			enc = "gzip"
		case bytes.HasPrefix(data, []byte(zstdMagic)):
			enc = "zstd"
		default:
			return data, nil
		}
	case "x-gzip":
		enc = "gzip"
	}
	var out []byte
	var err error
	switch enc {
	case "gzip":
		size := int64(-1)
		if s, ok := inflate.Size(data); ok && int64(s) <= limit {
			size = int64(s)
		}
		out, err = d.inflate(dst, data, size, limit, t, (*inflate.Decoder).Gunzip)
	case "zstd":
		out, err = d.unzstd(dst, data, limit, t)
	case "deflate", "zlib":
		// HTTP's deflate is the zlib format (RFC 9110 §8.4.1.2).
		out, err = d.inflate(dst, data, -1, limit, t, (*inflate.Decoder).Zlib)
	case "snappy":
		if bytes.HasPrefix(data, []byte(snappyFramedHeader)) {
			out, err = readAtMost(dst, snappy.NewReader(bytes.NewReader(data)), -1, limit, t)
			break
		}
		out, err = unsnappyBlock(dst, data, limit, t)
	case "x-snappy-framed":
		out, err = readAtMost(dst, snappy.NewReader(bytes.NewReader(data)), -1, limit, t)
	case "lz4":
		out, err = readAtMost(dst, lz4.NewReader(bytes.NewReader(data)), -1, limit, t)
	default:
		return nil, fmt.Errorf("%w %q, use gzip, zstd, deflate, zlib, snappy, x-snappy-framed, lz4 or none", ErrEncoding, encoding)
	}
	if err != nil {
		switch {
		case errors.Is(err, admission.ErrBudget), errors.Is(err, admission.ErrTooLarge), errors.Is(err, ErrTooLarge):
			return nil, err
		case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
			// The decoder's own memory bound, at the limit or for a
			// frame asking for a larger window.
			return nil, fmt.Errorf("%w: more than %d bytes after decompression (%s): %w", ErrTooLarge, limit, enc, err)
		case errors.Is(err, inflate.ErrLimit):
			return nil, fmt.Errorf("%w: more than %d bytes after decompression (%s)", ErrTooLarge, limit, enc)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// The decoders say no more than "unexpected EOF": of data
			// too short to be gzip at all, or of a body cut short.
			if enc == "gzip" && !bytes.HasPrefix(data, []byte(gzipMagic)) {
				return nil, fmt.Errorf("%w: gzip: invalid header: the body does not start with gzip's bytes 1f 8b", ErrCorrupt)
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, enc, telemetry.CutShort(enc, int64(len(out)), err))
		}
		if strings.HasPrefix(err.Error(), enc+": ") {
			// The decoder named its codec already ("gzip: invalid header").
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, enc, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes after decompression (%s)", ErrTooLarge, limit, enc)
	}
	if bytes.HasPrefix(out, []byte(gzipMagic)) || bytes.HasPrefix(out, []byte(zstdMagic)) {
		return nil, fmt.Errorf("%w: compressed data inside %s", ErrCorrupt, enc)
	}
	return out, nil
}

// inflate decodes a gzip body (inflate.Decoder.Gunzip) or a zlib one
// (Zlib) with a pooled inflate.Decoder into one buffer, reserved on t
// before it is allocated. A body whose size is known (size, -1 when not:
// a single gzip member's trailer states it, inflate.Size) is inflated
// once, into a buffer of that size. When it is not known, or was told
// too little (several gzip members, a lie), the body is taken to inflate
// to inflateGuess times its size, and inflated again from its start into
// a buffer twice as large whenever it inflates to more, up to the limit:
// a bomb is refused (inflate.ErrLimit) after two to three times the work
// of inflating limit bytes, its buffer never larger than the limit and
// Headroom. Each buffer is reserved before it is allocated; those of the
// passes before are garbage, no longer reserved, as readAtMost's. One
// decoder reads every gzip and zlib body, so a body is accepted or
// refused for what it holds, never for what its trailer says; and a
// decoder keeps only its tables from the bodies before (FuzzDecompress).
func (d *Decompressor) inflate(dst, data []byte, size, limit int64, t *admission.Ticket, decode func(*inflate.Decoder, []byte, []byte, int) ([]byte, error)) ([]byte, error) {
	inf, _ := d.inflaters.Get().(*inflate.Decoder)
	if inf == nil {
		inf = new(inflate.Decoder)
	}
	defer d.inflaters.Put(inf)
	if size < 0 {
		size = inflateGuess * int64(len(data))
	}
	size = min(size, limit)
	var own int64 // reserved on t
	for {
		room := size + inflate.Headroom
		if room > own {
			if err := t.ReserveRead(room - own); err != nil {
				return nil, err
			}
			own = room
		}
		if int64(cap(dst)) < room {
			dst = make([]byte, 0, room)
		}
		out, err := decode(inf, dst, data, int(size))
		if !errors.Is(err, inflate.ErrLimit) || size >= limit {
			return out, err
		}
		size = min(max(2*size, inflateMinRetry), limit)
	}
}

// inflateGuess is how many times its size a body whose size is not known
// is first taken to inflate to (BenchmarkDecompress's OTLP request
// compresses 3.7 times, a real profile about twice: one pass for them),
// and inflateMinRetry the least size it is inflated into again.
const (
	inflateGuess    = 8
	inflateMinRetry = 64 << 10
)

// unsnappyBlock decodes a snappy block, whose length is known before it
// is decoded: one longer than limit is refused unread, the others are
// reserved on t whole.
func unsnappyBlock(dst, data []byte, limit int64, t *admission.Ticket) ([]byte, error) {
	n, err := snappy.DecodedLen(data)
	if err != nil {
		return nil, err
	}
	if int64(n) > limit {
		return nil, fmt.Errorf("%w: a snappy block of %d bytes, limit %d", ErrTooLarge, n, limit)
	}
	if err := t.Reserve(int64(n)); err != nil {
		return nil, err
	}
	return snappy.Decode(dst[:0], data)
}

// unzstd decodes data with a zstd decoder of its own. A decoder reset
// for the next stream kept the history of the stream before: a frame
// whose first match reached back past its own output read it
// (testdata/fuzz/FuzzDecompress/2b28ddce61ae15c5 fails otherwise than in
// a new decoder after a stream of 220 bytes), so a crafted request could
// have copied another request's body into its own. Decoders are not
// reused.
func (d *Decompressor) unzstd(dst, data []byte, limit int64, t *admission.Ticket) ([]byte, error) {
	// Hidden behind a plain reader, the data is decoded as a stream:
	// given a bytes.Reader, the decoder would decode small inputs whole,
	// up to its memory limit, before the limited reader could stop it.
	z, err := zstd.NewReader(struct{ io.Reader }{bytes.NewReader(data)}, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(uint64(d.maxLimit)), zstd.WithDecoderMaxWindow(zstdWindow))
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
	}
	defer z.Close()
	return readAtMost(dst, z, -1, limit, t)
}

// ReadBody reads a request body of at most limit bytes into dst's
// storage (grown when needed), reserving on t the memory it takes
// (readAtMost). contentLength (-1: unknown) over the limit is refused
// before anything is read. It does not size the buffer by it: a client
// may announce the limit and send nothing, and memory is taken as bytes
// arrive; the buffer grows no larger than it announced, though.
func ReadBody(dst []byte, body io.Reader, contentLength, limit int64, t *admission.Ticket) ([]byte, error) {
	if contentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, contentLength, limit)
	}
	out, err := readAtMost(dst, body, contentLength, limit, t)
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return out, nil
}

// readAtMost reads r to its end into dst's storage, stopping after
// limit+1 bytes, and reserves on t the memory the reading takes: each
// buffer it grows into, whole, before it is allocated, and of the
// storage it was given (a pool's, memory taken already) the room it
// reads into, up to admission.ReadStep past what arrived. Reserving what arrived
// alone let a request's buffer hold up to twice its reservation, and the
// budget twice as much memory as it states (200 gRPC calls of 15 MiB
// took 518 MB). The buffer doubles as it fills but never beyond limit+1,
// nor beyond size+1 when size, what r will give, is known (-1: not), so
// a body at the limit takes about the limit, not twice it (as
// bytes.Buffer's growth would). What the buffers it grew out of held is
// garbage once it returns, reserved no more.
func readAtMost(dst []byte, r io.Reader, size, limit int64, t *admission.Ticket) ([]byte, error) {
	most := limit + 1
	if size >= 0 {
		most = min(most, size+1)
	}
	var own int64 // reserved on t
	reserve := func(upTo int64) error {
		if upTo <= own {
			return nil
		}
		if err := t.ReserveRead(upTo - own); err != nil {
			return err
		}
		own = upTo
		return nil
	}
	dst = dst[:0]
	for {
		if len(dst) == cap(dst) {
			if int64(len(dst)) >= most {
				return dst, nil
			}
			// Not slices.Grow: append's growth would overshoot most.
			grownCap := min(max(2*int64(cap(dst)), 16<<10), most)
			if err := reserve(grownCap); err != nil {
				return dst, err
			}
			grown := make([]byte, len(dst), grownCap)
			copy(grown, dst)
			dst = grown
		}
		end := min(int64(cap(dst)), most, int64(len(dst))+admission.ReadStep)
		if err := reserve(end); err != nil {
			return dst, err
		}
		n, err := r.Read(dst[len(dst):end])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		if int64(len(dst)) >= most {
			return dst, nil
		}
	}
}
