package telemetry

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestCutShort reads compressed inputs cut before their stream ends, as a
// partial copy or download leaves them: each error says so and how much
// was decompressed, still matches io.ErrUnexpectedEOF, and whole inputs
// read to io.EOF.
func TestCutShort(t *testing.T) {
	raw := gunzip(t, readFixture(t, "go-cpu.pb.gz"))
	gz, zst := gzipBytes(t, raw), zstdBytes(t, raw)
	for _, tt := range []struct {
		name, codec string
		data        []byte
		open        func(io.Reader) (io.Reader, error)
		want        string // "" reads to the end
	}{
		{name: "gzip whole", codec: "gzip", data: gz},
		{name: "gzip cut", codec: "gzip", data: gz[:len(gz)/2], want: "the input ends inside its gzip stream, after "},
		{name: "gzip cut after its header", codec: "gzip", data: gz[:12], want: "the input ends inside its gzip stream, after 0 bytes decompressed: it is cut short"},
		{name: "zstd whole", codec: "zstd", data: zst},
		{name: "zstd cut", codec: "zstd", data: zst[:len(zst)/2], want: "the input ends inside its zstd stream, after "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var zr io.Reader
			var err error
			switch tt.codec {
			case "gzip":
				zr, err = gzip.NewReader(bytes.NewReader(tt.data))
			case "zstd":
				var d *zstd.Decoder
				d, err = zstd.NewReader(bytes.NewReader(tt.data))
				if err == nil {
					defer d.Close()
					zr = d
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(CutShortReader(zr, tt.codec))
			if tt.want == "" {
				if err != nil || !bytes.Equal(got, raw) {
					t.Errorf("read %d bytes, %v; want the %d bytes and no error", len(got), err, len(raw))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v, want one containing %q that is io.ErrUnexpectedEOF", err, tt.want)
			}
			if !strings.HasSuffix(err.Error(), ": it is cut short") {
				t.Errorf("error %q does not say that the input is cut short", err)
			}
		})
	}
}

// TestDiscoverCutShort: a gzipped file cut so short that what it holds
// tells no format is reported as cut short, not as a format unknown.
func TestDiscoverCutShort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pb.gz")
	if err := os.WriteFile(path, readFixture(t, "go-cpu.pb.gz")[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Discover([]Input{{Service: "web", Path: path}})
	want := path + ": malformed telemetry: the input ends inside its gzip stream, after "
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Discover = %v, want a malformed file cut short (%q)", err, want)
	}
}
