package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/evidentsec/evident/internal/inflate"
	"github.com/evidentsec/evident/internal/ingest/admission"
)

func compress(t testing.TB, codec string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch codec {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	case "snappy":
		// The block format, as the Collector's confighttp sends it.
		return snappy.Encode(nil, data)
	case "x-snappy-framed":
		w = snappy.NewBufferedWriter(&buf)
	case "lz4":
		w = lz4.NewWriter(&buf)
	default:
		t.Fatalf("no codec %q", codec)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompress(t *testing.T) {
	const limit = 64 << 10
	plain := []byte(strings.Repeat("span ", 1000))
	big := make([]byte, 10*limit)
	// Bodies whose gzip trailer does not state their size: two members
	// (the trailer is the second's), and a member whose stated size is
	// too small or over the limit. They are inflated again, into a larger
	// buffer, with the answer their content gives.
	gzipped := compress(t, "gzip", plain)
	twoMembers := append(compress(t, "gzip", plain[:100]), gzipped...)
	trailer := func(size uint32) []byte {
		return binary.LittleEndian.AppendUint32(bytes.Clone(gzipped[:len(gzipped)-4]), size)
	}
	// A body that compresses less than 64 times, as telemetry does: its
	// trailer is believed, and it is inflated whole (inflate.Size).
	var lines []byte
	for i := range 1000 {
		lines = fmt.Appendf(lines, "span %d of trace %x\n", i, i*7919)
	}
	whole := compress(t, "gzip", lines)
	if size, ok := inflate.Size(whole); !ok || size != len(lines) {
		t.Fatalf("inflate.Size of %d bytes gzipped to %d: %d, %v; the rows below would not inflate it whole", len(lines), len(whole), size, ok)
	}
	flipped := bytes.Clone(whole)
	flipped[len(flipped)/2] ^= 0x40
	tests := []struct {
		name, encoding string
		data           []byte
		want           []byte
		wantErr        error
		// wantMsg, when set, is the error's whole text: each codec
		// named once.
		wantMsg string
	}{
		{name: "plain", data: plain, want: plain},
		{name: "identity", encoding: "identity", data: plain, want: plain},
		{name: "gzip", encoding: "gzip", data: compress(t, "gzip", plain), want: plain},
		{name: "x-gzip", encoding: "X-Gzip", data: compress(t, "gzip", plain), want: plain},
		{name: "gzip sniffed", data: compress(t, "gzip", plain), want: plain},
		{name: "zstd", encoding: "zstd", data: compress(t, "zstd", plain), want: plain},
		{name: "zstd sniffed", data: compress(t, "zstd", plain), want: plain},
		{name: "deflate", encoding: "deflate", data: compress(t, "deflate", plain), want: plain},
		{name: "zlib", encoding: "zlib", data: compress(t, "deflate", plain), want: plain},
		{name: "snappy", encoding: "snappy", data: compress(t, "snappy", plain), want: plain},
		// What the Collector sent as snappy before x-snappy-framed.
		{name: "snappy, framed", encoding: "snappy", data: compress(t, "x-snappy-framed", plain), want: plain},
		{name: "x-snappy-framed", encoding: "x-snappy-framed", data: compress(t, "x-snappy-framed", plain), want: plain},
		{name: "lz4", encoding: "lz4", data: compress(t, "lz4", plain), want: plain},
		{name: "gzip, inflated whole", encoding: "gzip", data: whole, want: lines},
		{name: "gzip, inflated whole, cut short", encoding: "gzip", data: whole[:len(whole)/2], wantErr: ErrCorrupt},
		{name: "gzip, inflated whole, corrupt", encoding: "gzip", data: flipped, wantErr: ErrCorrupt},
		{name: "gzip, two members", encoding: "gzip", data: twoMembers, want: append(bytes.Clone(plain[:100]), plain...)},
		{name: "gzip, size understated", encoding: "gzip", data: trailer(100), wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: gzip: invalid checksum"},
		{name: "gzip, size over the limit", encoding: "gzip", data: trailer(limit + 1), wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: gzip: invalid checksum"},
		{name: "gzip, size of a bomb", encoding: "gzip", data: trailer(1 << 31), wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: gzip: invalid checksum"},
		{name: "gzip bomb", encoding: "gzip", data: compress(t, "gzip", big), wantErr: ErrTooLarge},
		{name: "sniffed gzip bomb", data: compress(t, "gzip", big), wantErr: ErrTooLarge},
		{name: "zstd bomb", encoding: "zstd", data: compress(t, "zstd", big), wantErr: ErrTooLarge},
		{name: "sniffed zstd bomb", data: compress(t, "zstd", big), wantErr: ErrTooLarge},
		{name: "deflate bomb", encoding: "deflate", data: compress(t, "deflate", big), wantErr: ErrTooLarge},
		{name: "snappy bomb", encoding: "snappy", data: compress(t, "snappy", big), wantErr: ErrTooLarge},
		{name: "snappy block stating a length over the limit", encoding: "snappy", data: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, wantErr: ErrTooLarge},
		{name: "framed snappy bomb", encoding: "x-snappy-framed", data: compress(t, "x-snappy-framed", big), wantErr: ErrTooLarge},
		{name: "lz4 bomb", encoding: "lz4", data: compress(t, "lz4", big), wantErr: ErrTooLarge},
		{name: "corrupt snappy", encoding: "snappy", data: []byte("\x10not snappy"), wantErr: ErrCorrupt},
		{name: "corrupt lz4", encoding: "lz4", data: []byte("not lz4"), wantErr: ErrCorrupt},
		{name: "nested in snappy", encoding: "snappy", data: compress(t, "snappy", compress(t, "gzip", plain)), wantErr: ErrCorrupt},
		{name: "nested", encoding: "gzip", data: compress(t, "gzip", compress(t, "zstd", plain)), wantErr: ErrCorrupt},
		{name: "corrupt", encoding: "gzip", data: []byte("not gzip, not at all"), wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: gzip: invalid header"},
		{name: "short", encoding: "gzip", data: []byte("not gzip"), wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: gzip: invalid header: the body does not start with gzip's bytes 1f 8b"},
		{name: "corrupt zlib", encoding: "zlib", data: []byte("not zlib"), wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: zlib: invalid header"},
		{name: "corrupt deflate", encoding: "deflate", data: []byte("not zlib"), wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: deflate: zlib: invalid header"},
		{name: "truncated gzip", encoding: "gzip", data: compress(t, "gzip", plain)[:20], wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: gzip: the input ends inside its gzip stream, after 0 bytes decompressed: it is cut short"},
		{name: "truncated gzip header", encoding: "gzip", data: compress(t, "gzip", plain)[:5], wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: gzip: the input ends inside its gzip stream, after 0 bytes decompressed: it is cut short"},
		{name: "truncated zstd", encoding: "zstd", data: compress(t, "zstd", plain)[:20], wantErr: ErrCorrupt, wantMsg: "corrupt compressed data: zstd: the input ends inside its zstd stream, after 0 bytes decompressed: it is cut short"},
		{name: "unknown", encoding: "br", data: plain, wantErr: ErrEncoding},
	}
	d := NewDecompressor(limit)
	c := admission.Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := c.Ticket()
			defer tk.Release()
			got, err := d.Decompress(nil, tt.data, tt.encoding, limit, tk)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decompress: %v, want %v", err, tt.wantErr)
				}
				if tt.wantMsg != "" && err.Error() != tt.wantMsg {
					t.Errorf("Decompress: %q, want %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("Decompress: %d bytes, %v; want %d bytes", len(got), err, len(tt.want))
			}
		})
	}
	if got := c.Buffered(); got != 0 {
		t.Errorf("%d bytes reserved after every ticket was released", got)
	}
}

// TestDecompressAfterAnotherBody: what a body is refused for does not
// depend on the body before. A gzip stream whose dynamic block leaves its
// code-length code empty, found by FuzzDecodePprof, is refused as a new
// reader refuses it after the pooled reader has read another body (whose
// Huffman tables it keeps); a zstd frame found by FuzzDecompress, whose
// first match reaches back past its own output, was read into the
// history of the body before by a decoder reset for it.
func TestDecompressAfterAnotherBody(t *testing.T) {
	const limit = 64 << 10
	// The zstd body before: 202 random letters of four, with which a
	// decoder reset for the next stream kept its history, which the frame
	// found by FuzzDecompress reached back into.
	r := rand.New(rand.NewPCG(1, 2))
	letters := make([]byte, 202)
	for i := range letters {
		letters[i] = byte('a' + r.IntN(4))
	}
	tests := []struct {
		codec     string
		good, bad []byte
	}{
		{"gzip", compress(t, "gzip", []byte(strings.Repeat("GET /api/orders 200 ", 500))), []byte("\x1f\x8b\b\x00\x9f\xf7\x00\x00\x00\x00d\x00\x00\x00")},
		{"zstd", compress(t, "zstd", letters), []byte("(\xb5/\xfd\x00\x00d\x00\x00\x01\xe4\x02\x80\x00\xff\xca\x14\x02\xeb\x1fz")},
	}
	c := admission.Default()
	for _, tt := range tests {
		t.Run(tt.codec, func(t *testing.T) {
			decode := func(d *Decompressor, data []byte) error {
				tk := c.Ticket()
				defer tk.Release()
				_, err := d.Decompress(nil, data, tt.codec, limit, tk)
				return err
			}
			want := decode(NewDecompressor(limit), tt.bad)
			if !errors.Is(want, ErrCorrupt) {
				t.Fatalf("a new reader: %v, want ErrCorrupt", want)
			}
			d := NewDecompressor(limit)
			for range 10 {
				if err := decode(d, tt.good); err != nil {
					t.Fatal(err)
				}
				if err := decode(d, tt.bad); fmt.Sprint(err) != fmt.Sprint(want) {
					t.Fatalf("after another body: %v, want %v", err, want)
				}
			}
		})
	}
	if got := c.Buffered(); got != 0 {
		t.Errorf("%d bytes reserved after every ticket was released", got)
	}
}

func TestReadBody(t *testing.T) {
	c := admission.Default()
	tk := c.Ticket()
	defer tk.Release()
	if _, err := ReadBody(nil, strings.NewReader("x"), 100, 10, tk); !errors.Is(err, ErrTooLarge) {
		t.Errorf("announced over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := ReadBody(nil, bytes.NewReader(make([]byte, 11)), -1, 10, tk); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
	got, err := ReadBody(make([]byte, 3), strings.NewReader("0123456789"), -1, 10, tk)
	if err != nil || string(got) != "0123456789" || cap(got) > 11 {
		t.Errorf("at the limit: %q (capacity %d), %v; want it whole in at most 11 bytes", got, cap(got), err)
	}
	big, err := ReadBody(nil, bytes.NewReader(make([]byte, 1<<20)), -1, 1<<20, tk)
	if err != nil || len(big) != 1<<20 || cap(big) > 1<<20+1<<10 {
		t.Errorf("1 MiB at a 1 MiB limit: %d bytes in a buffer of %d, %v; want the buffer about the limit", len(big), cap(big), err)
	}
}

// TestReadBodyReserves: a body reserves the buffers it is read into, not
// only the bytes that arrived: the buffer it grew into whole, and of a
// buffer it was given the room it read into; a known length bounds the
// buffer.
func TestReadBodyReserves(t *testing.T) {
	tests := []struct {
		name     string
		dst      []byte
		body     int // bytes sent
		size     int64
		wantCap  int // the buffer's capacity at most
		reserved func(out []byte) int64
	}{
		// 100 KiB in a buffer grown to 128 KiB: reserved whole.
		{"grown, length unknown", nil, 100 << 10, -1, 128 << 10, func(out []byte) int64 { return int64(cap(out)) }},
		// Grown no larger than the length announced, and the byte that
		// finds the end.
		{"grown, length known", nil, 100 << 10, 100 << 10, 100<<10 + 1, func(out []byte) int64 { return int64(cap(out)) }},
		// A given buffer of 1 MiB: what arrived and the room of one read
		// past it.
		{"given", make([]byte, 1<<20), 100 << 10, -1, 1 << 20, func(out []byte) int64 { return int64(len(out)) + admission.ReadStep }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := admission.Default()
			tk := c.Ticket()
			defer tk.Release()
			out, err := ReadBody(tt.dst, iotest.HalfReader(bytes.NewReader(make([]byte, tt.body))), tt.size, 1<<20, tk)
			if err != nil || len(out) != tt.body {
				t.Fatalf("read %d bytes, %v; want %d", len(out), err, tt.body)
			}
			if cap(out) > tt.wantCap {
				t.Errorf("buffer of %d bytes, want at most %d", cap(out), tt.wantCap)
			}
			if got, want := c.Buffered(), tt.reserved(out); got != want {
				t.Errorf("%d bytes reserved for %d read into a buffer of %d, want %d", got, len(out), cap(out), want)
			}
		})
	}
}

// FuzzDecompress: whatever the input and encoding, the output stays
// within the limit and errors match a sentinel; the Decompressor, whose
// pooled readers read the inputs before, answers as a new one does.
func FuzzDecompress(f *testing.F) {
	f.Add([]byte("plain"), "")
	f.Add(compress(f, "gzip", make([]byte, 5000)), "gzip")
	// A dynamic block with an empty code-length code, read after a body.
	f.Add([]byte("\x1f\x8b\b\x00\x9f\xf7\x00\x00\x00\x00d\x00\x00\x00"), "gzip")
	f.Add(compress(f, "zstd", make([]byte, 5000)), "")
	f.Add(compress(f, "deflate", make([]byte, 5000)), "deflate")
	for _, codec := range []string{"snappy", "x-snappy-framed", "lz4"} {
		f.Add(compress(f, codec, make([]byte, 5000)), codec)
	}
	// Two limits: one under inflateMinRetry, and one over it, under
	// which a body of unknown size is inflated again more than once.
	limits := []int64{4096, 1 << 17}
	d := NewDecompressor(limits[1])
	c := admission.Default()
	// A pooled buffer: what the bodies before left in it.
	pooled := make([]byte, 0, limits[1]+inflate.Headroom)
	f.Fuzz(func(t *testing.T, data []byte, encoding string) {
		for _, limit := range limits {
			tk := c.Ticket()
			got, err := d.Decompress(pooled, data, encoding, limit, tk)
			fresh, freshErr := NewDecompressor(limits[1]).Decompress(nil, data, encoding, limit, tk)
			tk.Release()
			if fmt.Sprint(err) != fmt.Sprint(freshErr) || !bytes.Equal(got, fresh) {
				t.Fatalf("limit %d, after other inputs: %d bytes, %v; a new Decompressor: %d bytes, %v", limit, len(got), err, len(fresh), freshErr)
			}
			if err != nil {
				if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrEncoding) {
					t.Fatalf("error %v matches no sentinel", err)
				}
				continue
			}
			if int64(len(got)) > limit && !bytes.Equal(got, data) {
				t.Fatalf("%d bytes decompressed over the limit %d", len(got), limit)
			}
		}
	})
}

// BenchmarkDecompress inflates a gzipped OTLP request of 1000 spans (what
// a Collector's otlp exporter sends, gzip being its default): one member,
// inflated once into a buffer of the size its trailer states; the same in
// two members, whose trailer states the second's size only, so that the
// body is inflated again into a larger buffer; zlib, whose size is not
// stated; and, for comparison, with klauspost/compress's streaming gzip
// reader, which Decompress used before.
func BenchmarkDecompress(b *testing.B) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("GET /api/items/%d", i%20))
		var id [8]byte
		binary.LittleEndian.PutUint64(id[:], r.Uint64())
		sp.SetSpanID(id)
		var tid [16]byte
		binary.LittleEndian.PutUint64(tid[:], r.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], r.Uint64())
		sp.SetTraceID(tid)
		sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1_000_000))
		sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1_000_000 + r.Int64N(5_000_000)))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("url.path", fmt.Sprintf("/api/items/%d", r.IntN(10_000)))
		sp.Attributes().PutInt("http.response.status_code", 200)
	}
	raw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	data := compress(b, "gzip", raw)
	twoMembers := append(compress(b, "gzip", raw[:len(raw)/2]), compress(b, "gzip", raw[len(raw)/2:])...)
	zlibbed := compress(b, "deflate", raw)
	d := NewDecompressor(64 << 20)
	c := admission.Default()
	for _, path := range []struct {
		name string
		read func(dst []byte, tk *admission.Ticket) ([]byte, error)
	}{
		{"one-member", func(dst []byte, tk *admission.Ticket) ([]byte, error) {
			return d.Decompress(dst, data, "gzip", 64<<20, tk)
		}},
		{"two-members", func(dst []byte, tk *admission.Ticket) ([]byte, error) {
			return d.Decompress(dst, twoMembers, "gzip", 64<<20, tk)
		}},
		{"zlib", func(dst []byte, tk *admission.Ticket) ([]byte, error) {
			return d.Decompress(dst, zlibbed, "deflate", 64<<20, tk)
		}},
		{"klauspost-stream", func(dst []byte, tk *admission.Ticket) ([]byte, error) {
			g, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, err
			}
			return readAtMost(dst, g, -1, 64<<20, tk)
		}},
	} {
		b.Run(path.name, func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				tk := c.Ticket()
				out, err := path.read(dst, tk)
				tk.Release()
				if err != nil || len(out) != len(raw) {
					b.Fatalf("%d bytes, %v", len(out), err)
				}
				dst = out
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/span")
		})
	}
}

// TestDecompressRetries: a gzip or zlib body whose size is not known, or
// is told too little or more than the limit, is inflated again into a
// buffer twice as large until it fits or the limit is reached; each
// buffer is reserved before it is allocated, none is over the limit, and
// what is reserved in the end is the last buffer.
func TestDecompressRetries(t *testing.T) {
	const limit = 1 << 20
	r := rand.New(rand.NewPCG(5, 6))
	plain := make([]byte, 300_000)
	for i := range plain {
		plain[i] = byte(r.IntN(16)) // compresses about twice
	}
	gz := compress(t, "gzip", plain)
	stating := func(size uint32) []byte {
		return binary.LittleEndian.AppendUint32(bytes.Clone(gz[:len(gz)-4]), size)
	}
	// A trailer inflate.Size believes (at most 64 times the body) and
	// over the limit.
	part := compress(t, "gzip", plain[:40_000])
	overLimit := binary.LittleEndian.AppendUint32(bytes.Clone(part[:len(part)-4]), limit+1)
	zl := compress(t, "deflate", plain)
	bomb := compress(t, "gzip", make([]byte, 10*limit))
	tests := []struct {
		name     string
		encoding string
		data     []byte
		want     []byte
		err      error
		// last is the size of the last buffer inflated into, without
		// inflate.Headroom.
		last int64
	}{
		{name: "trailer stating the size", encoding: "gzip", data: gz, want: plain, last: 300_000},
		// 50,000 stated, then 100,000, 200,000 and 400,000.
		{name: "two members", encoding: "gzip", data: append(compress(t, "gzip", plain[:250_000]), compress(t, "gzip", plain[250_000:])...), want: plain, last: 400_000},
		// 0 stated, then inflateMinRetry and its doubles.
		{name: "trailer stating nothing", encoding: "gzip", data: stating(0), err: ErrCorrupt, last: 512 << 10},
		{name: "trailer stating more than the limit", encoding: "gzip", data: overLimit, err: ErrCorrupt, last: inflateGuess * int64(len(overLimit))},
		{name: "zlib", encoding: "deflate", data: zl, want: plain, last: limit},
		{name: "bomb", encoding: "gzip", data: bomb, err: ErrTooLarge, last: limit},
	}
	if size, ok := inflate.Size(overLimit); !ok || size <= limit || inflateGuess*len(overLimit) >= limit {
		t.Fatalf("inflate.Size of the body stating more than the limit: %d, %v; its guess %d", size, ok, inflateGuess*len(overLimit))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := admission.Default()
			tk := c.Ticket()
			defer tk.Release()
			got, err := NewDecompressor(limit).Decompress(nil, tt.data, tt.encoding, limit, tk)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
			} else if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("%d bytes, %v; want %d", len(got), err, len(tt.want))
			}
			if reserved, want := c.Buffered(), tt.last+inflate.Headroom; reserved != want {
				t.Errorf("%d bytes reserved, want %d", reserved, want)
			}
		})
	}
}

// TestDecompressGzipReserves: a gzip body inflated whole reserves the
// buffer it is inflated into before inflating, the size its trailer
// states and inflate.Headroom, and nothing once its ticket is released.
// (A body compressed more than 64 times, as repeated text is, is first
// taken to be inflateGuess times its size: inflate.Size.)
func TestDecompressGzipReserves(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	plain := make([]byte, 100_000)
	for i := range plain {
		plain[i] = byte(r.IntN(16))
	}
	data := compress(t, "gzip", plain)
	c := admission.Default()
	tk := c.Ticket()
	out, err := NewDecompressor(1<<20).Decompress(nil, data, "gzip", 1<<20, tk)
	if err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("Decompress: %d bytes, %v; want %d", len(out), err, len(plain))
	}
	if got, want := c.Buffered(), int64(len(plain)+inflate.Headroom); got != want {
		t.Errorf("%d bytes reserved for %d inflated, want %d", got, len(plain), want)
	}
	tk.Release()
	if got := c.Buffered(); got != 0 {
		t.Errorf("%d bytes reserved after the ticket was released", got)
	}
}
