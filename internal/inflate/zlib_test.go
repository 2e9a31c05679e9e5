package inflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"testing"
)

func zlibbed(t testing.TB, level int, text []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, zw, text)
	return buf.Bytes()
}

// TestZlib inflates what compress/zlib writes at every level, and streams
// that break RFC 1950 each in one way.
func TestZlib(t *testing.T) {
	for name, text := range texts(t) {
		for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression, zlib.BestCompression, zlib.HuffmanOnly} {
			got, err := new(Decoder).Zlib(nil, zlibbed(t, level, text), 1<<20)
			if err != nil || !bytes.Equal(got, text) {
				t.Fatalf("%s at level %d: %d bytes, %v; want %d", name, level, len(got), err, len(text))
			}
		}
	}
	text := []byte("evident reads the telemetry an organization already collects")
	good := zlibbed(t, zlib.BestSpeed, text)
	with := func(change func([]byte) []byte) []byte { return change(bytes.Clone(good)) }
	// header returns cmf and flg with FLG's check bits set, so that
	// only what the test changes is wrong.
	header := func(cmf, flg byte) []byte {
		flg &^= 0x1f
		flg += byte((31 - (uint16(cmf)<<8|uint16(flg))%31) % 31)
		return []byte{cmf, flg}
	}
	withHeader := func(cmf, flg byte) []byte { return append(header(cmf, flg), good[2:]...) }
	// withDict sets FDICT and names the dictionary whose Adler-32 is id.
	withDict := func(id uint32) []byte {
		return append(binary.BigEndian.AppendUint32(header(good[0], good[1]|0x20), id), good[2:]...)
	}
	tests := []struct {
		name  string
		data  []byte
		limit int
		want  []byte
		err   error
	}{
		{name: "one stream", data: good, want: text},
		{name: "bytes after the checksum", data: append(bytes.Clone(good), "trailing"...), want: text},
		{name: "empty dictionary", data: withDict(1), want: text},
		{name: "a dictionary", data: withDict(adler32.Checksum([]byte("dict"))), err: ErrDictionary},
		{name: "window of 32 KiB", data: withHeader(0x78, 0), want: text},
		{name: "window of 256 bytes", data: withHeader(0x08, 0), want: text},
		{name: "not deflate", data: withHeader(0x77, 0), err: ErrZlibHeader},
		{name: "window over 32 KiB", data: withHeader(0x88, 0), err: ErrZlibHeader},
		{name: "header check", data: with(func(b []byte) []byte { b[1]++; return b }), err: ErrZlibHeader},
		{name: "wrong checksum", data: with(func(b []byte) []byte { b[len(b)-1]++; return b }), err: ErrZlibChecksum},
		{name: "no checksum", data: good[:len(good)-4], err: io.ErrUnexpectedEOF},
		{name: "checksum cut short by 3", data: good[:len(good)-3], err: io.ErrUnexpectedEOF},
		{name: "checksum cut short by 1", data: good[:len(good)-1], err: io.ErrUnexpectedEOF},
		{name: "one byte", data: good[:1], err: io.ErrUnexpectedEOF},
		{name: "dictionary cut short", data: withDict(1)[:4], err: io.ErrUnexpectedEOF},
		{name: "dictionary cut short by 1", data: withDict(1)[:5], err: io.ErrUnexpectedEOF},
		{name: "limit met", data: good, limit: len(text), want: text},
		{name: "limit exceeded", data: good, limit: len(text) - 1, err: ErrLimit},
	}
	var d Decoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			got, err := d.Zlib(nil, tt.data, limit)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("%q, %v; want %q", got, err, tt.want)
			}
			if want, err := zlibReference(tt.data, limit); err != nil || !bytes.Equal(want, got) {
				t.Fatalf("compress/zlib: %q, %v", want, err)
			}
		})
	}
	// A Decoder that read gzip members before reads zlib from the start
	// of its output, and keeps none of it.
	prose := texts(t)["prose"] // its matches reach back to its start
	twoMembers := gzipped(t, gzip.BestSpeed, gzip.Header{}, text, text)
	if _, err := d.Gunzip(nil, twoMembers, 1<<20); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Zlib(nil, zlibbed(t, zlib.BestSpeed, prose), 1<<20); err != nil || !bytes.Equal(got, prose) {
		t.Fatalf("after two gzip members: %d bytes, %v", len(got), err)
	}
	if d.out != nil || d.in != nil {
		t.Error("the Decoder keeps the output or the input")
	}
}

func zlibReference(data []byte, limit int) ([]byte, error) {
	return gunzipReference(data, limit, func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) })
}

// FuzzZlib compares the decoder with compress/zlib. An input that does
// not start with a zlib header is taken as a DEFLATE stream and put in a
// zlib stream whose checksum matches what compress/flate inflates it to,
// so that the fuzzer explores the DEFLATE decoder rather than the
// checksum.
func FuzzZlib(f *testing.F) {
	for _, text := range texts(f) {
		for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.HuffmanOnly} {
			f.Add(zlibbed(f, level, text[:min(len(text), 2000)]))
		}
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || data[0]&0x0f != 8 || binary.BigEndian.Uint16(data)%31 != 0 {
			content, _ := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), 1<<22))
			data = binary.BigEndian.AppendUint32(append([]byte{0x78, 0x01}, data...), adler32.Checksum(content))
		}
		const limit = 1 << 22
		want, wantErr := zlibReference(data, limit)
		got, err := d.Zlib(nil, data, limit)
		if (err == nil) != (wantErr == nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("% x: %d bytes, %v; compress/zlib %d bytes, %v", data[:min(len(data), 64)], len(got), err, len(want), wantErr)
		}
		if errors.Is(wantErr, io.ErrUnexpectedEOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !(errors.Is(err, ErrLimit) && len(want) > limit-limitSlack) {
			t.Fatalf("% x: error %v, compress/zlib's %v after %d bytes", data[:min(len(data), 64)], err, wantErr, len(want))
		}
	})
}
