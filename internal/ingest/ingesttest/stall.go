package ingesttest

import (
	"context"
	"net"
	"sync"
)

// StallDialer returns a dialer (for grpc.WithContextDialer) whose
// connections send their first n bytes and then block every write until
// closed: a client that stops in the middle of its message. Close
// closes every connection it made; a gRPC client waits for its writer,
// blocked in a stalled write, before it closes its connection, so a test
// calls Close before closing its clients.
func StallDialer(n int) (dial func(ctx context.Context, addr string) (net.Conn, error), closeAll func()) {
	var mu sync.Mutex
	var conns []net.Conn
	dial = func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		sc := &stallConn{Conn: c, left: n, done: make(chan struct{})}
		mu.Lock()
		conns = append(conns, sc)
		mu.Unlock()
		return sc, nil
	}
	closeAll = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	return dial, closeAll
}

// stallConn sends its first left bytes, then blocks every write until it
// is closed.
type stallConn struct {
	net.Conn
	mu    sync.Mutex
	left  int
	done  chan struct{}
	close sync.Once
}

func (c *stallConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	n := min(c.left, len(p))
	c.left -= n
	c.mu.Unlock()
	if n > 0 {
		if w, err := c.Conn.Write(p[:n]); err != nil || n == len(p) {
			return w, err
		}
	}
	<-c.done
	return n, net.ErrClosed
}

func (c *stallConn) Close() error {
	c.close.Do(func() { close(c.done) })
	return c.Conn.Close()
}
