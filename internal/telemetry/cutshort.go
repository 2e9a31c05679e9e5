package telemetry

import (
	"errors"
	"fmt"
	"io"
)

// cutShortError is a compressed input that ends inside its stream, which
// decompressors report as io.ErrUnexpectedEOF alone: that names neither
// the codec nor the file's fault.
type cutShortError struct {
	codec string
	// decompressed is how many bytes the stream gave before it ended.
	decompressed int64
}

func (e *cutShortError) Error() string {
	return fmt.Sprintf("the input ends inside its %s stream, after %d bytes decompressed: it is cut short", e.codec, e.decompressed)
}

func (e *cutShortError) Unwrap() error { return io.ErrUnexpectedEOF }

// CutShort returns err, or an error that says the input is cut short when
// err is a decompressor's (codec's: "gzip", "zstd") io.ErrUnexpectedEOF
// after decompressed bytes; that error still matches io.ErrUnexpectedEOF.
func CutShort(codec string, decompressed int64, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &cutShortError{codec: codec, decompressed: decompressed}
	}
	return err
}

// CutShortReader returns a reader of r, a decompressor of codec ("gzip",
// "zstd"), whose error says, when its input ends inside the compressed
// stream, that the input is cut short.
func CutShortReader(r io.Reader, codec string) io.Reader {
	return &cutShortReader{r: r, codec: codec}
}

type cutShortReader struct {
	r     io.Reader
	codec string
	n     int64
}

func (c *cutShortReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		err = CutShort(c.codec, c.n, err)
	}
	return n, err
}
