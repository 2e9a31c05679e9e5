package inflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// texts are the contents the tests compress: a profile, prose, random
// bytes (all literals), runs (long overlapping matches) and nothing.
func texts(t testing.TB) map[string][]byte {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 70_000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	var runs []byte
	for i := range 300 {
		runs = append(runs, bytes.Repeat([]byte{byte(i)}, i)...)
		runs = append(runs, bytes.Repeat([]byte("ab"), i)...)
	}
	profile := gunzipStd(t, readFile(t, "go-cpu-busy.pb.gz"))
	return map[string][]byte{
		"profile": profile,
		"prose":   bytes.Repeat([]byte("A profile arrives whole, and its size is in the gzip trailer. "), 2000),
		"random":  random,
		"runs":    runs,
		"empty":   nil,
	}
}

// readFile reads a fixture of the telemetry package: real profiles.
func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "telemetry", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func gunzipStd(t testing.TB, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gzipped(t testing.TB, level int, hdr gzip.Header, members ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range members {
		zw, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			t.Fatal(err)
		}
		zw.Header = hdr
		writeAll(t, zw, m)
	}
	return buf.Bytes()
}

// writeAll writes text to the compressor w and closes it.
func writeAll(t testing.TB, w io.WriteCloser, text []byte) {
	t.Helper()
	if _, err := w.Write(text); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGunzipLevels inflates what compress/gzip writes at every level,
// with and without a large enough buffer.
func TestGunzipLevels(t *testing.T) {
	var d Decoder
	for name, text := range texts(t) {
		for _, level := range []int{gzip.NoCompression, gzip.BestSpeed, 5, gzip.BestCompression, gzip.HuffmanOnly} {
			data := gzipped(t, level, gzip.Header{}, text)
			for _, dst := range [][]byte{nil, make([]byte, 0, len(text)+10)} {
				got, err := d.Gunzip(dst, data, len(text))
				if err != nil {
					t.Fatalf("%s at level %d: %v", name, level, err)
				}
				if !bytes.Equal(got, text) {
					t.Fatalf("%s at level %d: %d bytes inflated, not the %d written", name, level, len(got), len(text))
				}
				if d.out != nil || d.in != nil {
					t.Fatalf("%s at level %d: the Decoder holds its input or output after Gunzip", name, level)
				}
			}
		}
	}
}

func TestGunzip(t *testing.T) {
	text := []byte("evident reads the telemetry an organization already collects, evident reads it whole")
	one := gzipped(t, gzip.BestSpeed, gzip.Header{}, text)
	named := gzipped(t, gzip.BestSpeed, gzip.Header{Name: "cpu.pb", Comment: "a comment", Extra: []byte("xx")}, text)
	withCRC := bytes.Clone(named)
	withCRC[3] |= flagHdrCRC
	i := bytes.Index(withCRC, []byte("a comment\x00")) + len("a comment\x00")
	withCRC = append(withCRC[:i:i], append(binary.LittleEndian.AppendUint16(nil, uint16(crc32.ChecksumIEEE(withCRC[:i]))), withCRC[i:]...)...)
	badCRC := bytes.Clone(withCRC)
	badCRC[i]++
	badTrailer := bytes.Clone(one)
	badTrailer[len(badTrailer)-5]++
	badSize := bytes.Clone(one)
	badSize[len(badSize)-1]++
	longName := gzipped(t, gzip.BestSpeed, gzip.Header{Name: string(bytes.Repeat([]byte("n"), maxHeaderString))}, text)
	notDeflate := bytes.Clone(one)
	notDeflate[2] = 7
	reservedFlag := bytes.Clone(one)
	reservedFlag[3] |= 1 << 5
	reserved := append(bytes.Clone(one[:10]), 0x07) // final block of type 3
	reserved = append(reserved, make([]byte, 8)...)

	tests := []struct {
		name  string
		data  []byte
		limit int
		want  []byte
		err   error
	}{
		{name: "one member", data: one, want: text},
		{name: "two members", data: append(bytes.Clone(one), one...), want: append(bytes.Clone(text), text...)},
		{name: "header fields", data: named, want: text},
		{name: "header checksum", data: withCRC, want: text},
		{name: "wrong header checksum", data: badCRC, err: ErrHeader},
		{name: "file name too long", data: longName, err: ErrHeader},
		{name: "not deflate", data: notDeflate, err: ErrHeader},
		{name: "reserved flag", data: reservedFlag, err: ErrHeader},
		{name: "wrong checksum", data: badTrailer, err: ErrChecksum},
		{name: "wrong size", data: badSize, err: ErrChecksum},
		{name: "garbage after a member", data: append(bytes.Clone(one), "0123456789"...), err: ErrHeader},
		{name: "a few bytes after a member", data: append(bytes.Clone(one), 0x1f), err: io.ErrUnexpectedEOF},
		{name: "reserved block type", data: reserved, err: new(CorruptError)},
		{name: "limit met", data: one, limit: len(text), want: text},
		{name: "limit exceeded", data: one, limit: len(text) - 1, err: ErrLimit},
		// The trailer states one member: the output outgrows the
		// buffer made for it, within a limit that leaves no room
		// above it.
		{name: "no limit", data: append(bytes.Clone(one), one...), limit: math.MaxInt, want: append(bytes.Clone(text), text...)},
	}
	var d Decoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			got, err := d.Gunzip(nil, tt.data, limit)
			if tt.err != nil {
				var corrupt *CorruptError
				if errors.As(tt.err, &corrupt) {
					if !errors.As(err, &corrupt) {
						t.Fatalf("error %v, want a CorruptError", err)
					}
					return
				}
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestGunzipLimit cuts streams of every block type and inflates the
// pieces within limits around the blocks' sizes: the output never passes
// the limit, and storage for limit+Headroom bytes is never outgrown,
// whatever the cut stream's last bytes state as its size.
func TestGunzipLimit(t *testing.T) {
	content := texts(t)["random"] // 70,000 bytes: two stored blocks at level 0
	streams := map[string][]byte{}
	for name, level := range map[string]int{"stored": gzip.NoCompression, "fixed or dynamic": gzip.BestSpeed, "huffman only": gzip.HuffmanOnly} {
		streams[name] = gzipped(t, level, gzip.Header{}, content)
	}
	streams["two members"] = gzipped(t, gzip.NoCompression, gzip.Header{}, content[:40_000], content[40_000:])
	var d Decoder
	for name, data := range streams {
		for _, limit := range []int{1000, 65_534, 65_535, 65_536, 69_999, 70_000, 1 << 20} {
			for n := 0; n <= len(data); n += 997 {
				dst := make([]byte, 0, limit+Headroom)
				got, err := d.Gunzip(dst, data[:n], limit)
				if len(got) > limit {
					t.Fatalf("%s cut at %d, limit %d: %d bytes out (%v)", name, n, limit, len(got), err)
				}
				if cap(got) > 0 && &got[:cap(got)][0] != &dst[:cap(dst)][0] {
					t.Fatalf("%s cut at %d, limit %d: the output left dst's storage (%v)", name, n, limit, err)
				}
				if !bytes.HasPrefix(content, got) {
					t.Fatalf("%s cut at %d, limit %d: output that does not start the content", name, n, limit)
				}
				if limit >= len(content) && n < len(data) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("%s cut at %d, limit %d: error %v, want io.ErrUnexpectedEOF", name, n, limit, err)
				}
			}
		}
	}
}

// TestGunzipLimitLiterals stops two streams at every output length in a
// range, so the limit falls on each of the three literals fastCodes
// writes a pass, and on matches; and at every length of their last 300
// bytes, which codes' loop inflates the end of: a profile compressed at
// BestSpeed, and streams of 'a' and 258-byte matches (fixedSeeds' kind),
// one ending in them and one in literals, which codes' loop reaches.
func TestGunzipLimitLiterals(t *testing.T) {
	// fixed returns a gzip member of 'a', twenty 258-byte matches and
	// then literals 'b', in fixed Huffman codes, and its content.
	fixed := func(literals int) (content, member []byte) {
		var w bitWriter
		w.bits(1, 1) // BFINAL
		w.bits(1, 2) // BTYPE 01: fixed Huffman codes
		w.symbol('a')
		for range 20 {
			w.symbol(284)
			w.bits(31, 5)
			w.code(0, 5)
		}
		for range literals {
			w.symbol('b')
		}
		w.symbol(256)
		content = append(bytes.Repeat([]byte("a"), 1+20*258), bytes.Repeat([]byte("b"), literals)...)
		member = append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, w.flush()...)
		member = binary.LittleEndian.AppendUint32(member, crc32.ChecksumIEEE(content))
		return content, binary.LittleEndian.AppendUint32(member, uint32(len(content)))
	}
	profile := texts(t)["profile"]
	matches, matchesData := fixed(0)
	literals, literalsData := fixed(16)
	tests := []struct {
		name          string
		content, data []byte
	}{
		{"profile", profile, gzipped(t, gzip.BestSpeed, gzip.Header{}, profile)},
		{"ending in matches", matches, matchesData},
		{"ending in literals", literals, literalsData},
	}
	var d Decoder
	for _, tt := range tests {
		if got, err := d.Gunzip(nil, tt.data, len(tt.content)); err != nil || !bytes.Equal(got, tt.content) {
			t.Fatalf("%s: %d bytes inflated (%v), want the %d of the content", tt.name, len(got), err, len(tt.content))
		}
		for _, limits := range [][2]int{{5000, 5032}, {len(tt.content) - 300, len(tt.content)}} {
			for limit := limits[0]; limit < limits[1]; limit++ {
				for _, dst := range [][]byte{nil, make([]byte, 0, limit+Headroom)} {
					got, err := d.Gunzip(dst, tt.data, limit)
					if !errors.Is(err, ErrLimit) {
						t.Fatalf("%s, limit %d: error %v, want ErrLimit", tt.name, limit, err)
					}
					if len(got) > limit || !bytes.HasPrefix(tt.content, got) {
						t.Fatalf("%s, limit %d: %d bytes inflated, not the content's start within the limit", tt.name, limit, len(got))
					}
				}
			}
		}
	}
}

// TestGunzipCutShort cuts a profile at every length: each is refused as
// cut short, having inflated no more than the content's start.
func TestGunzipCutShort(t *testing.T) {
	data := readFile(t, "go-cpu.pb.gz")
	text := gunzipStd(t, data)
	var d Decoder
	for n := range len(data) {
		got, err := d.Gunzip(nil, data[:n], 1<<20)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d of %d bytes: error %v, want io.ErrUnexpectedEOF", n, len(data), err)
		}
		if !bytes.HasPrefix(text, got) {
			t.Fatalf("cut at %d: inflated %d bytes that do not start the content", n, len(got))
		}
	}
}

// TestGunzipCorrupt flips each bit of a profile's DEFLATE stream: the
// decoder refuses or accepts each exactly as compress/gzip does, with the
// same content when it accepts (compare).
func TestGunzipCorrupt(t *testing.T) {
	data := readFile(t, "go-cpu.pb.gz")
	var d Decoder
	for i := 10; i < len(data)-8; i++ {
		for bit := range 8 {
			bad := bytes.Clone(data)
			bad[i] ^= 1 << bit
			compare(t, &d, bad)
		}
	}
}

// compare inflates data with d and with compress/gzip, and fails unless
// both refuse it or both give the same content, and d says "unexpected
// EOF" of a stream compress/gzip says it of. One difference is wanted: a
// member with a reserved header flag set, which compress/gzip accepts, d
// refuses with ErrHeader, as klauspost/compress does (and RFC 1952), so
// d refuses every header klauspost/compress refuses.
func compare(t testing.TB, d *Decoder, data []byte) {
	t.Helper()
	const limit = 1 << 22
	want, wantErr := gunzipReference(data, limit, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) })
	if _, kerr := gunzipReference(data, limit, func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) }); errors.Is(kerr, kgzip.ErrHeader) {
		want, wantErr = nil, ErrHeader
	}
	got, err := d.Gunzip(nil, data, limit)
	if (err == nil) != (wantErr == nil) || errors.Is(wantErr, ErrHeader) && !errors.Is(err, ErrHeader) {
		t.Fatalf("% x: error %v, want %v", data[:min(len(data), 64)], err, wantErr)
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("% x: %d bytes inflated, compress/gzip %d", data[:min(len(data), 64)], len(got), len(want))
	}
	if errors.Is(wantErr, io.ErrUnexpectedEOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !(errors.Is(err, ErrLimit) && len(want) > limit-limitSlack) {
		t.Fatalf("% x: error %v, compress/gzip's %v after %d bytes", data[:min(len(data), 64)], err, wantErr, len(want))
	}
}

// limitSlack is how far short of the limit a reference reader may stop
// on a stream cut short that d finds over the limit: d inflates up to the
// cut, the readers of the standard library hand out what they inflated a
// window at a time.
const limitSlack = 64 << 10

// gunzipReference inflates data with the reader open makes, within
// limit. On error it returns what was inflated before.
func gunzipReference(data []byte, limit int, open func(io.Reader) (io.Reader, error)) ([]byte, error) {
	zr, err := open(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if len(out) > limit {
		return out, ErrLimit
	}
	return out, err
}

// FuzzGunzip compares the decoder with compress/gzip (compare). An input that is
// not gzip is taken as a DEFLATE stream and put in a gzip member whose
// trailer matches what compress/flate inflates it to, so that the fuzzer
// explores the DEFLATE decoder rather than the checksums.
func FuzzGunzip(f *testing.F) {
	for _, text := range texts(f) {
		for _, level := range []int{gzip.NoCompression, gzip.BestSpeed, gzip.HuffmanOnly} {
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, level)
			fw.Write(text[:min(len(text), 2000)])
			fw.Close()
			f.Add(buf.Bytes())
		}
	}
	f.Add(readFile(f, "go-cpu.pb.gz"))
	for _, seed := range append(fixedSeeds(), dynamicSeeds()...) {
		f.Add(seed)
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			content, _ := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), 1<<22))
			member := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
			member = append(member, data...)
			member = binary.LittleEndian.AppendUint32(member, crc32.ChecksumIEEE(content))
			data = binary.LittleEndian.AppendUint32(member, uint32(len(content)))
		}
		compare(t, &d, data)
	})
}

// fixedSeeds are fixed-Huffman DEFLATE streams (RFC 1951 3.2.6) of k
// literals 'a' and then a code each exit of the decoder's loops takes: an
// invalid literal/length code, an invalid distance code, a distance
// before the start, a 258-byte match. Each is followed by 0 to 12 zero
// bytes (end-of-block codes after a match), so that the code lands in
// fastCodes, with eight bytes of input left, and in codes' loop, with
// fewer. Runs of matches in a gzip member whose trailer states no
// content take the output past the storage the trailer's size sized.
func fixedSeeds() [][]byte {
	ends := map[string]func(w *bitWriter, k int){
		"literal/length 286": func(w *bitWriter, k int) { w.symbol(286) },
		"distance code 30":   func(w *bitWriter, k int) { w.symbol(257); w.code(30, 5) },
		"before the start":   func(w *bitWriter, k int) { w.symbol(257); w.code(uint32(k), 5) }, // distance k+1, k < 4
		"258 at distance 1":  func(w *bitWriter, k int) { w.symbol(284); w.bits(31, 5); w.code(0, 5) },
	}
	var seeds [][]byte
	for _, end := range ends {
		for k := range 4 {
			for pad := range 13 {
				var w bitWriter
				w.bits(1, 1) // BFINAL
				w.bits(1, 2) // BTYPE 01: fixed Huffman codes
				for range k {
					w.symbol('a')
				}
				end(&w, k)
				seeds = append(seeds, append(w.flush(), make([]byte, pad)...))
			}
		}
	}
	for matches := 14; matches <= 17; matches++ {
		var w bitWriter
		w.bits(1, 1)
		w.bits(1, 2)
		w.symbol('a')
		for range matches {
			w.symbol(284)
			w.bits(31, 5)
			w.code(0, 5)
		}
		w.symbol(256)
		member := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
		seeds = append(seeds, append(append(member, w.flush()...), make([]byte, 8)...))
	}
	return seeds
}

// dynamicSeeds are DEFLATE streams of one dynamic-Huffman block (RFC 1951
// 3.2.7) whose distance code for distance 1 is 9 bits long, longer than
// the decoder's first-level table: 'a', a match of 3 at distance 1 and
// the end of the block, followed by 0 to 12 zero bytes, so that the code
// lands in fastCodes and in codes' loop.
func dynamicSeeds() [][]byte {
	// Literal/length code lengths: 'a' 1, end of block 2, length 3 (257) 2.
	// Distance code lengths, codes 0 to 9: a complete code with two of
	// 9 bits.
	dist := []uint{9, 9, 1, 2, 3, 4, 5, 6, 7, 8}
	// Code length code lengths, of the symbols used: 18 is a run of 11
	// to 138 zeros.
	var clen [19]uint
	for _, sym := range []int{1, 2, 9, 18, 3, 4} {
		clen[sym] = 3
	}
	for _, sym := range []int{5, 6, 7, 8} {
		clen[sym] = 4
	}
	order := []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	clenCodes := canonical(clen[:])
	litlen := make([]uint, 258)
	litlen['a'], litlen[256], litlen[257] = 1, 2, 2
	litlenCodes, distCodes := canonical(litlen), canonical(dist)

	var seeds [][]byte
	for pad := range 13 {
		var w bitWriter
		w.bits(1, 1)       // BFINAL
		w.bits(2, 2)       // BTYPE 10: dynamic Huffman codes
		w.bits(258-257, 5) // HLIT
		w.bits(10-1, 5)    // HDIST
		w.bits(18-4, 4)    // HCLEN: up to symbol 1, the 18th in order
		for _, sym := range order[:18] {
			w.bits(uint64(clen[sym]), 3)
		}
		length := func(l uint) { w.code(clenCodes[l], clen[l]) }
		zeros := func(n int) { length(18); w.bits(uint64(n-11), 7) }
		zeros('a')
		length(1)
		zeros(138)
		zeros(255 - 'a' - 138)
		length(2)
		length(2)
		for _, l := range dist {
			length(l)
		}
		w.code(litlenCodes['a'], 1)
		w.code(litlenCodes[257], 2)
		w.code(distCodes[0], 9)
		w.code(litlenCodes[256], 2)
		seeds = append(seeds, append(w.flush(), make([]byte, pad)...))
	}
	return seeds
}

// canonical returns the Huffman codes of code lengths (RFC 1951 3.2.2).
func canonical(lengths []uint) []uint32 {
	var count [16]uint32
	for _, l := range lengths {
		count[l]++
	}
	count[0] = 0
	var next [16]uint32
	code := uint32(0)
	for bits := 1; bits < 16; bits++ {
		code = (code + count[bits-1]) << 1
		next[bits] = code
	}
	codes := make([]uint32, len(lengths))
	for i, l := range lengths {
		if l != 0 {
			codes[i] = next[l]
			next[l]++
		}
	}
	return codes
}

// bitWriter writes DEFLATE's bits, least significant first.
type bitWriter struct {
	out []byte
	b   uint64
	n   uint
}

// bits writes the n low bits of v, least significant first, as extra
// bits and header fields are.
func (w *bitWriter) bits(v uint64, n uint) {
	w.b |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.out = append(w.out, byte(w.b))
		w.b >>= 8
		w.n -= 8
	}
}

// code writes an n-bit Huffman code, most significant bit first.
func (w *bitWriter) code(c uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(uint64(c>>i&1), 1)
	}
}

// symbol writes a literal/length symbol in the fixed Huffman code,
// including the two invalid ones, 286 and 287.
func (w *bitWriter) symbol(v uint32) {
	switch {
	case v < 144:
		w.code(0x30+v, 8)
	case v < 256:
		w.code(0x190+v-144, 9)
	case v < 280:
		w.code(v-256, 7)
	default:
		w.code(0xc0+v-280, 8)
	}
}

// flush returns the bytes written, the last one padded with zero bits.
func (w *bitWriter) flush() []byte {
	if w.n > 0 {
		w.out = append(w.out, byte(w.b))
	}
	return w.out
}

// BenchmarkGunzip inflates the telemetry package's real profiles and a
// synthetic profile's worth of random bytes with this package, with
// compress/gzip (which profile.Parse uses) and with klauspost/compress
// (which evident used before), each reusing its reader and buffer.
func BenchmarkGunzip(b *testing.B) {
	inputs := map[string]func(testing.TB) []byte{
		"go-cpu":      func(tb testing.TB) []byte { return readFile(tb, "go-cpu.pb.gz") },
		"go-cpu-busy": func(tb testing.TB) []byte { return readFile(tb, "go-cpu-busy.pb.gz") },
		"random-300k": func(tb testing.TB) []byte {
			r := rand.New(rand.NewPCG(5, 6))
			text := make([]byte, 300<<10)
			for i := range text {
				text[i] = byte(r.Uint32() % 64)
			}
			return gzipped(tb, gzip.BestSpeed, gzip.Header{}, text)
		},
	}
	for _, name := range []string{"go-cpu", "go-cpu-busy", "random-300k"} {
		data := inputs[name](b)
		b.Run(name+"/inflate", func(b *testing.B) {
			var d Decoder
			var out []byte
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = d.Gunzip(out, data, 1<<24); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/compress-gzip", func(b *testing.B) {
			benchReader(b, data, func(r io.Reader) (io.Reader, func(io.Reader) error, error) {
				zr, err := gzip.NewReader(r)
				return zr, zr.Reset, err
			})
		})
		b.Run(name+"/klauspost", func(b *testing.B) {
			benchReader(b, data, func(r io.Reader) (io.Reader, func(io.Reader) error, error) {
				zr, err := kgzip.NewReader(r)
				return zr, zr.Reset, err
			})
		})
	}
}

// benchReader inflates data with a streaming reader that is reset for each
// round, into a buffer kept across rounds.
func benchReader(b *testing.B, data []byte, open func(io.Reader) (io.Reader, func(io.Reader) error, error)) {
	var br bytes.Reader
	br.Reset(data)
	zr, reset, err := open(&br)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		br.Reset(data)
		if err := reset(&br); err != nil {
			b.Fatal(err)
		}
		out.Reset()
		if _, err := out.ReadFrom(zr); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSize(t *testing.T) {
	text := bytes.Repeat([]byte("span "), 100)
	one := gzipped(t, gzip.BestSpeed, gzip.Header{}, text)
	withSize := func(size uint32) []byte {
		return binary.LittleEndian.AppendUint32(bytes.Clone(one[:len(one)-4]), size)
	}
	tests := []struct {
		name string
		data []byte
		size int
		ok   bool
	}{
		{name: "one member", data: one, size: len(text), ok: true},
		{name: "too short for a member", data: one[:17]},
		{name: "more than 64 times the input", data: withSize(uint32(64*len(one) + 1))},
		{name: "64 times the input", data: withSize(uint32(64 * len(one))), size: 64 * len(one), ok: true},
	}
	for _, tt := range tests {
		if size, ok := Size(tt.data); size != tt.size || ok != tt.ok {
			t.Errorf("%s: Size %d, %v; want %d, %v", tt.name, size, ok, tt.size, tt.ok)
		}
	}
}
