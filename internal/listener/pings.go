package listener

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// The keepalive policy of a GRPC listener, grpc-go's own server's
// (keepalive.EnforcementPolicy, which evident set so before OTLP/gRPC
// moved to net/http, whose HTTP/2 server answers every ping): a client
// may ping once every pingMinTime, with or without calls in flight; a
// ping closer to the one before is a strike, and a connection with more
// than maxPingStrikes is closed. An answer the server sends (a HEADERS
// or DATA frame) clears the strikes, as grpc-go's does: gRPC clients
// measure the connection's bandwidth with a ping when data arrives.
const (
	pingMinTime    = 10 * time.Second
	maxPingStrikes = 2
)

// HTTP/2 frame types and flags (RFC 9113 §6) the policy looks at.
const (
	frameData    = 0x0
	frameHeaders = 0x1
	framePing    = 0x6
	flagAck      = 0x1
)

// clientPreface starts every HTTP/2 connection, before the client's
// first frame (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// frameScanner follows the frames of one direction of an HTTP/2
// connection through the bytes as they pass, in pieces of any size: it
// reads each frame's 9-byte header (RFC 9113 §4.1) and skips its
// payload, telling the type and flags of each frame. It parses nothing
// else and checks nothing: net/http's HTTP/2 server reads the same
// bytes and refuses what is malformed.
type frameScanner struct {
	skip int     // bytes to pass before the next frame header (the preface, a payload)
	hdr  [9]byte // the frame header being read
	n    int     // bytes of it read
}

// scan passes p, calling frame for the header of every frame it
// completes.
func (s *frameScanner) scan(p []byte, frame func(typ, flags byte)) {
	for len(p) > 0 {
		if s.skip > 0 {
			k := min(s.skip, len(p))
			s.skip -= k
			p = p[k:]
			continue
		}
		k := copy(s.hdr[s.n:], p)
		s.n += k
		p = p[k:]
		if s.n < len(s.hdr) {
			return
		}
		s.n = 0
		s.skip = int(s.hdr[0])<<16 | int(s.hdr[1])<<8 | int(s.hdr[2])
		frame(s.hdr[3], s.hdr[4])
	}
}

// pingListener accepts connections that enforce the keepalive policy.
type pingListener struct {
	net.Listener
	log *slog.Logger
	now func() time.Time
}

func (l pingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &pingConn{Conn: c, log: l.log, now: l.now, in: frameScanner{skip: len(clientPreface)}}, nil
}

// pingConn is a connection of a GRPC listener: it closes itself when the
// client pings more often than the policy allows. Read and Write may run
// at once (net/http's reader and writer); each direction is scanned by
// one of them.
type pingConn struct {
	net.Conn
	log *slog.Logger
	now func() time.Time

	in, out frameScanner // the client's frames (Read), the server's (Write)

	// answered: the server sent HEADERS or DATA since the client's last
	// ping (Write sets it, the reader clears it).
	answered atomic.Bool
	// The reader's alone: the client's last ping, the strikes since an
	// answer, and whether they closed the connection.
	last    time.Time
	strikes int
	closed  bool

	// The reader's too: buf[r:w] was read from the connection and not yet
	// passed on, and rerr is the error that read ended with, passed on
	// after them. net/http's HTTP/2 server reads each frame's 9-byte
	// header and its payload apart, two reads of the socket a frame
	// without a buffer, where one read of the buffer takes in a few
	// frames of a message.
	buf  []byte
	r, w int
	rerr error
}

// readBufferSize is the read buffer of a connection (grpc-go's
// transport reads through one as large), allocated at its first read:
// max_connections bounds them (32 MiB at the default 1024).
const readBufferSize = 32 << 10

func (c *pingConn) Read(p []byte) (int, error) {
	var n int
	var err error
	switch {
	case len(p) == 0:
		return 0, nil
	case c.r < c.w:
		n = copy(p, c.buf[c.r:c.w])
		c.r += n
	case c.rerr != nil:
		err, c.rerr = c.rerr, nil
	case len(p) >= readBufferSize:
		n, err = c.Conn.Read(p)
	default:
		if c.buf == nil {
			c.buf = make([]byte, readBufferSize)
		}
		c.w, c.rerr = c.Conn.Read(c.buf)
		n = copy(p, c.buf[:c.w])
		c.r = n
		if c.r == c.w {
			err, c.rerr = c.rerr, nil
		}
	}
	c.in.scan(p[:n], func(typ, flags byte) {
		if typ == framePing && flags&flagAck == 0 {
			c.ping()
		}
	})
	if c.closed {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *pingConn) Write(p []byte) (int, error) {
	c.out.scan(p, func(typ, _ byte) {
		if typ == frameHeaders || typ == frameData {
			c.answered.Store(true)
		}
	})
	return c.Conn.Write(p)
}

// ping counts a ping of the client against the policy; the reader calls
// it.
func (c *pingConn) ping() {
	now := c.now()
	switch {
	case c.answered.Swap(false):
		c.strikes = 0
	case !c.last.IsZero() && now.Sub(c.last) < pingMinTime:
		c.strikes++
	}
	c.last = now
	if c.strikes > maxPingStrikes && !c.closed {
		c.closed = true
		c.log.Warn("closed a connection whose client pings too often", "client", c.RemoteAddr().String(),
			"allowed", "one ping every "+pingMinTime.String()+" without answers between")
	}
}
