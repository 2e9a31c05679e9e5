package otlp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
)

// grpcEncodings are the grpc-encoding values a call may use: the
// compressions the OpenTelemetry Collector's otlp exporter offers
// (configgrpc: gzip, zstd, snappy), decompressed by the decompressor
// OTLP/HTTP uses. grpc-go is never told of them (serveGRPC removes the
// header), so its process-wide registry of compressors stays as it is.
const grpcEncodings = "gzip,zstd,snappy"

// grpcBody is the request body of a gRPC call as grpc-go reads it under
// ServeHTTP: it passes on the call's one length-prefixed message
// (gRPC over HTTP/2: a compressed flag byte, a 4-byte big-endian length,
// the message), reserving on the call's ticket the bytes as they arrive,
// so that a client that sends slowly, or stops, holds only what it sent
// and one read of grpc-go's (16 KiB).
//
// An uncompressed message streams through. grpc-go holds what it reads
// until the message is whole and then copies it (messageCodec); the
// handler reserves the copy (recvGRPC). A compressed message is read
// whole, reserved as it arrives, and decompressed by the receiver's
// decompressor within max_request_bytes, reserving what it inflates, as
// OTLP/HTTP does; it is then passed on uncompressed (flag 0), reserved
// once more for what grpc-go reads, and its buffers go back to the
// receiver's pool once it is passed on. After the message it reports the
// end of the body: OTLP's Export is unary, and nothing a client sends
// after its message is read.
//
// grpc-go reads a body from one goroutine, and waits for it to finish
// before ServeHTTP returns; Close, from another, closes the HTTP/2 body
// under it.
type grpcBody struct {
	r        *Receiver
	src      io.ReadCloser
	t        *admission.Ticket
	encoding string // grpc-encoding: "" or identity for none
	// buf holds a compressed message and its decompressed form, from the
	// receiver's pool, until they are passed on; nil otherwise.
	buf *body

	started bool
	head    []byte // what is left to pass on of the message's prefix
	prefix  [5]byte
	plain   []byte // what is left of a decompressed message
	rest    int64  // what is left to read of an uncompressed message
	size    int64  // of the message passed on, uncompressed

	// done is closed when the message has been passed on whole, or the
	// body failed (err).
	done     chan struct{}
	finished bool
	err      error
}

// Errors a malformed body ends with: answered INVALID_ARGUMENT or, for a
// compression grpc-go would have failed to undo, INTERNAL, as grpc-go
// answers both.
var (
	errGRPCFrame      = fmt.Errorf("%w: gRPC message", errMalformed)
	errGRPCCompressed = errors.New("compressed message with no grpc-encoding")
	errGRPCNoMessage  = fmt.Errorf("%w: the call carried no message", errMalformed)
)

// newGRPCBody returns the body of a call of r that reads src, reserving
// on t, with the call's grpc-encoding.
func newGRPCBody(r *Receiver, src io.ReadCloser, t *admission.Ticket, encoding string) *grpcBody {
	return &grpcBody{r: r, src: src, t: t, encoding: encoding, done: make(chan struct{})}
}

func (b *grpcBody) Read(p []byte) (int, error) {
	if b.finished {
		if b.err != nil {
			return 0, b.err
		}
		return 0, io.EOF
	}
	if !b.started {
		b.started = true
		if err := b.start(); err != nil {
			b.finish(err)
			return 0, err
		}
	}
	n, err := b.read(p)
	if err != nil {
		b.finish(err)
		return n, err
	}
	if len(b.head) == 0 && len(b.plain) == 0 && b.rest == 0 {
		b.putBuffers()
		b.finish(nil)
	}
	return n, nil
}

// read passes on what is left of the message: its prefix, then the
// message decompressed, or the rest of it as it arrives. It fills p as
// far as the message goes, waiting for the client's bytes: grpc-go keeps
// the buffer of each read, whole, until the message is read, so reads of
// what each small DATA frame brings would make a client's tiny frames
// hold a 16 KiB buffer apiece. What it reads is reserved before it is
// read (grpc-go's buffer is there already).
func (b *grpcBody) read(p []byte) (int, error) {
	n := copy(p, b.head)
	b.head = b.head[n:]
	if len(b.head) > 0 {
		return n, nil
	}
	k := copy(p[n:], b.plain)
	b.plain = b.plain[k:]
	n += k
	want := min(int64(len(p)-n), b.rest)
	if want == 0 {
		return n, nil
	}
	if err := b.t.ReserveRead(want); err != nil {
		return n, err
	}
	k, err := io.ReadFull(b.src, p[n:n+int(want)])
	b.rest -= int64(k)
	n += k
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("%w cut short: the body ended %d bytes before the length its prefix states", errGRPCFrame, b.rest)
	}
	return n, err
}

// start reads the message's prefix, and a compressed message whole, and
// sets what Read passes on.
func (b *grpcBody) start() error {
	if _, err := io.ReadFull(b.src, b.prefix[:]); err != nil {
		switch err {
		case io.EOF:
			return errGRPCNoMessage
		case io.ErrUnexpectedEOF:
			return fmt.Errorf("%w prefix cut short", errGRPCFrame)
		}
		return err
	}
	flag, n := b.prefix[0], int64(binary.BigEndian.Uint32(b.prefix[1:]))
	switch {
	case flag > 1:
		return fmt.Errorf("%w flag %d, want 0 or 1 (compressed)", errGRPCFrame, flag)
	case n > b.r.cfg.MaxRequestBytes:
		return fmt.Errorf("%w: a message of %d bytes, max_request_bytes %d", ingest.ErrTooLarge, n, b.r.cfg.MaxRequestBytes)
	case flag == 0:
		b.head, b.rest, b.size = b.prefix[:], n, n
		return nil
	case b.encoding == "" || b.encoding == "identity":
		return errGRPCCompressed
	}
	limit := b.r.cfg.MaxRequestBytes
	b.buf = b.r.getBody()
	raw, err := ingest.ReadBody(b.buf.raw, io.LimitReader(b.src, n), n, limit, b.t)
	if err != nil {
		return err
	}
	b.buf.raw = raw
	if int64(len(raw)) < n {
		return fmt.Errorf("%w cut short: the body ended %d bytes before the length its prefix states", errGRPCFrame, n-int64(len(raw)))
	}
	plain, err := b.r.dec.Decompress(b.buf.plain, raw, b.encoding, limit, b.t)
	if err != nil {
		return err
	}
	if cap(plain) > 0 && (cap(raw) == 0 || &plain[:1][0] != &raw[:1][0]) {
		b.buf.plain = plain // keep its storage for the next call
	}
	// grpc-go's copy. The codec's copy replaces it once the message is
	// whole, when these buffers are back in the pool: what they reserved
	// covers it.
	if err := b.t.ReserveRead(int64(len(plain))); err != nil {
		return err
	}
	b.prefix[0] = 0
	binary.BigEndian.PutUint32(b.prefix[1:], uint32(len(plain)))
	b.head, b.plain, b.size = b.prefix[:], plain, int64(len(plain))
	if len(plain) == 0 {
		b.putBuffers()
	}
	return nil
}

// putBuffers gives the buffers of a compressed message back to the
// receiver's pool, once nothing reads them; the handler calls it too, for
// a body that failed before its message was passed on.
func (b *grpcBody) putBuffers() {
	if b.buf != nil {
		b.r.putBody(b.buf)
		b.buf = nil
	}
}

// finish ends the body, with err unless it is nil, and wakes wait.
// Only grpc-go's reading goroutine calls it.
func (b *grpcBody) finish(err error) {
	if b.finished {
		return
	}
	b.finished, b.err = true, err
	close(b.done)
}

// wait waits until the message has been passed on whole, and returns
// nil, or until the body failed, and returns why: a refusal of the
// budget, a message too large, a malformed one, or the HTTP/2 stream's
// error (its read_timeout, the client gone); or until ctx ends.
func (b *grpcBody) wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err // written before done was closed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the HTTP/2 body.
func (b *grpcBody) Close() error { return b.src.Close() }
