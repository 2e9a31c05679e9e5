package listener

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

// h2frame returns an HTTP/2 frame (RFC 9113 §4.1).
func h2frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := make([]byte, 9, 9+len(payload))
	b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	b[3], b[4] = typ, flags
	binary.BigEndian.PutUint32(b[5:], stream)
	return append(b, payload...)
}

var (
	ping    = h2frame(framePing, 0, 0, make([]byte, 8))
	pingAck = h2frame(framePing, flagAck, 0, make([]byte, 8))
	data    = h2frame(frameData, 0, 1, []byte("answer"))
	// settings is the client's first frame, after the preface.
	settings = h2frame(0x4, 0, 0, nil)
)

// chunkConn is a connection whose reads return what a test puts in it,
// and whose writes are taken.
type chunkConn struct {
	net.Conn // nil: only Read, Write, Close and RemoteAddr are used
	in       []byte
	closed   bool
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n, nil
}
func (c *chunkConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *chunkConn) Close() error                { c.closed = true; return nil }
func (c *chunkConn) RemoteAddr() net.Addr        { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// TestPingPolicy: a client may ping once every pingMinTime, and after
// every answer of the server; the third ping too soon in a row closes
// its connection; pings acknowledging the server's, and frames cut
// anywhere between reads, count as they are.
func TestPingPolicy(t *testing.T) {
	type step struct {
		after  time.Duration // since the step before
		client []byte        // what the client sends
		server []byte        // what the server writes
	}
	repeat := func(n int, s ...step) []step {
		var out []step
		for range n {
			out = append(out, s...)
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step
		// readSize cuts the client's bytes into reads of at most this
		// many; 0: whole.
		readSize   int
		wantClosed int // the step at which the connection closes; -1: never
	}{
		{"a ping every 10 s", repeat(5, step{after: pingMinTime, client: ping}), 0, -1},
		{"four pings a second apart", repeat(4, step{after: time.Second, client: ping}), 0, 3},
		{"four pings a second apart, a byte a read", repeat(4, step{after: time.Second, client: ping}), 1, 3},
		{"four pings in one read", []step{{client: slices.Concat(ping, ping, ping, ping)}}, 0, 0},
		{"a ping after each answer", repeat(10, step{after: 100 * time.Millisecond, server: data}, step{client: ping}), 0, -1},
		{"acknowledgements of the server's pings", repeat(10, step{after: time.Millisecond, client: pingAck}), 0, -1},
		{"an answer clears the strikes", slices.Concat(
			repeat(3, step{after: time.Second, client: ping}),
			[]step{{server: data}},
			repeat(3, step{after: time.Second, client: ping})), 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
			cc := &chunkConn{in: []byte(clientPreface + string(settings))}
			c := &pingConn{Conn: cc, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now },
				in: frameScanner{skip: len(clientPreface)}}
			buf := make([]byte, 64<<10)
			read := func() error {
				for {
					p := buf
					if tt.readSize > 0 {
						p = buf[:tt.readSize]
					}
					if _, err := c.Read(p); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
				}
			}
			if err := read(); err != nil {
				t.Fatalf("preface: %v", err)
			}
			closedAt := -1
			for i, s := range tt.steps {
				now = now.Add(s.after)
				if s.server != nil {
					c.Write(s.server)
				}
				cc.in = s.client
				if err := read(); err != nil {
					closedAt = i
					if !errors.Is(err, net.ErrClosed) || !cc.closed {
						t.Errorf("step %d: read %v, connection closed %v; want net.ErrClosed and closed", i, err, cc.closed)
					}
					break
				}
			}
			if closedAt != tt.wantClosed {
				t.Errorf("closed at step %d, want %d", closedAt, tt.wantClosed)
			}
		})
	}
}

// eofConn returns what a test puts in it in reads of at most step
// bytes, the last with io.EOF, and counts its reads.
type eofConn struct {
	chunkConn
	step  int
	reads int
}

func (c *eofConn) Read(p []byte) (int, error) {
	c.reads++
	n := copy(p[:min(len(p), c.step)], c.in)
	c.in = c.in[n:]
	if len(c.in) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// TestPingConnReads: frames read as net/http's HTTP/2 server reads them
// (each frame's header, then its payload) come out whole and in order
// through a connection's read buffer, with the error of the read that
// brought the last of them after them, and a read of the socket takes in
// what its buffer holds, not a frame's header alone.
func TestPingConnReads(t *testing.T) {
	var in []byte
	for i := range 40 {
		in = append(in, h2frame(frameData, 0, 1, make([]byte, 1000+i))...)
	}
	cc := &eofConn{chunkConn: chunkConn{in: slices.Clone(in)}, step: 64 << 10}
	c := &pingConn{Conn: cc, log: slog.New(slog.DiscardHandler), now: time.Now}
	var got []byte
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			if err != io.EOF {
				t.Fatalf("after %d bytes: %v, want io.EOF", len(got), err)
			}
			break
		}
		payload := make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
		if _, err := io.ReadFull(c, payload); err != nil {
			t.Fatalf("payload after %d bytes: %v", len(got), err)
		}
		got = slices.Concat(got, hdr[:], payload)
	}
	if !slices.Equal(got, in) {
		t.Fatalf("read %d bytes, not the %d sent", len(got), len(in))
	}
	// 40 frames of about 1 KiB: two reads of a 32 KiB buffer, the second
	// with the error.
	if want := (len(in) + readBufferSize - 1) / readBufferSize; cc.reads != want {
		t.Errorf("%d reads of the connection for %d frames (%d bytes), want %d", cc.reads, 40, len(in), want)
	}
}

// TestPingFlood: a client that pings without pause on a GRPC listener has
// its connection closed by the server.
func TestPingFlood(t *testing.T) {
	s := startOptions(t, Options{Name: "test", Endpoint: "127.0.0.1:0", Config: DefaultConfig(), GRPC: true, Handler: http.NotFoundHandler()})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(slices.Concat([]byte(clientPreface), settings)); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		for range 100 {
			if _, err := c.Write(ping); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// The server's frames (its settings, ping acknowledgements), then the
	// end of the connection.
	n, err := io.Copy(io.Discard, c)
	if err != nil && !isReset(err) {
		t.Fatalf("after %d bytes from the server: %v, want the connection closed", n, err)
	}
}

// isReset reports whether err is the connection reset by the server,
// which is how a close with unread data arrives.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// FuzzFrameScanner: the frames a frameScanner tells of arbitrary bytes
// are the same however the bytes are cut into pieces.
func FuzzFrameScanner(f *testing.F) {
	f.Add([]byte(clientPreface+string(settings)+string(ping)+string(data)), uint8(1))
	f.Add(slices.Concat(ping, pingAck, data), uint8(7))
	f.Add([]byte{0, 0, 0xff, 6, 0}, uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		type frame struct{ typ, flags byte }
		scan := func(step int) []frame {
			var got []frame
			s := frameScanner{skip: min(len(clientPreface), len(b)/2)}
			for p := b; len(p) > 0; {
				k := min(step, len(p))
				s.scan(p[:k], func(typ, flags byte) { got = append(got, frame{typ, flags}) })
				p = p[k:]
			}
			return got
		}
		whole, cutUp := scan(len(b)), scan(int(cut)%16+1)
		if !slices.Equal(whole, cutUp) {
			t.Fatalf("frames %v read whole, %v read in pieces of %d", whole, cutUp, int(cut)%16+1)
		}
		if len(whole) > len(b)/9 {
			t.Fatalf("%d frames in %d bytes", len(whole), len(b))
		}
	})
}

// FuzzPingConn: what a pingConn passes on of arbitrary bytes is the
// bytes, in order, then the connection's end, however the socket cuts
// them (in) and whatever the reader asks for (out: small reads, and
// reads past the read buffer, which go to the socket directly).
func FuzzPingConn(f *testing.F) {
	f.Add(slices.Concat(data, data, pingAck), uint16(5), uint16(9))
	f.Add(make([]byte, 3*readBufferSize), uint16(40000), uint16(9))
	f.Add(make([]byte, 100), uint16(100), uint16(40000))
	f.Fuzz(func(t *testing.T, b []byte, in, out uint16) {
		cc := &eofConn{chunkConn: chunkConn{in: slices.Clone(b)}, step: int(in)%(2*readBufferSize) + 1}
		c := &pingConn{Conn: cc, log: slog.New(slog.DiscardHandler), now: time.Now, in: frameScanner{skip: len(b)}}
		bufs := [2][]byte{make([]byte, 9), make([]byte, int(out)%(2*readBufferSize)+1)}
		var got []byte
		for i := 0; ; i++ {
			p := bufs[i%2]
			n, err := c.Read(p)
			got = append(got, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil || (n == 0 && len(got) == len(b)) || i > 4*len(b)+4 {
				t.Fatalf("after %d of %d bytes: %d read, %v", len(got), len(b), n, err)
			}
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("passed on %d bytes, not the %d read", len(got), len(b))
		}
	})
}
