// Package listener opens evident's network listeners with the limits
// every one of them needs against slow or abusive clients, and serves
// HTTP handlers on them with one Start/Shutdown.
//
// Every listener caps the connections it holds open: one over the cap is
// accepted and closed at once, so that a flood of connections on one
// listener costs that listener only, never the file descriptors of the
// others (issue: 21,000 slow uploads exhausted them and took every
// listener down). Every HTTP server has read-header, read, write and
// idle timeouts and a header size limit, so a client that sends slowly
// or not at all loses its connection after a bounded time. gRPC servers
// use Listen for the cap and their own keepalive and stream limits.
//
// A listener with a tls block serves TLS (and mTLS with a client CA),
// with certificates re-read from their files without a restart
// (internal/tlsconfig).
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/tlsconfig"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("invalid listener config")

// Config bounds what the clients of one listener can hold.
type Config struct {
	// MaxConnections bounds the connections open at once; one more is
	// closed as soon as it is accepted.
	MaxConnections int `yaml:"max_connections"`
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, headers and body, so a
	// client that sends its body slowly loses the connection.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response, so a client that does not
	// read cannot hold the connection; 0 means none, for listeners that
	// stream (the handler then sets its own deadlines).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection without requests.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// TLS turns TLS on when it names a certificate, and mTLS with a
	// client CA.
	TLS tlsconfig.ServerConfig `yaml:"tls"`
}

// DefaultConfig returns limits for a service on a private network: 1024
// connections per listener (a process usually may open 1024 to 1M files;
// Go raises the soft limit to the hard one), 10 s for headers, 30 s for a
// request or a response, 2 minutes idle, 64 KiB of headers.
func DefaultConfig() Config {
	return Config{
		MaxConnections:    1024,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLS:               tlsconfig.DefaultServerConfig(),
	}
}

// Validate reports the first problem of c.
func (c Config) Validate() error {
	switch {
	case c.MaxConnections <= 0:
		return fmt.Errorf("%w: max_connections %d, want > 0", ErrConfig, c.MaxConnections)
	case c.ReadHeaderTimeout <= 0:
		return fmt.Errorf("%w: read_header_timeout %s, want > 0", ErrConfig, c.ReadHeaderTimeout)
	case c.ReadTimeout <= 0:
		return fmt.Errorf("%w: read_timeout %s, want > 0", ErrConfig, c.ReadTimeout)
	case c.ReadHeaderTimeout > c.ReadTimeout:
		return fmt.Errorf("%w: read_header_timeout %s is longer than read_timeout %s", ErrConfig, c.ReadHeaderTimeout, c.ReadTimeout)
	case c.WriteTimeout < 0:
		return fmt.Errorf("%w: write_timeout %s, want >= 0 (0: none)", ErrConfig, c.WriteTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("%w: idle_timeout %s, want > 0", ErrConfig, c.IdleTimeout)
	case c.MaxHeaderBytes < 4<<10:
		return fmt.Errorf("%w: max_header_bytes %d, want at least 4096", ErrConfig, c.MaxHeaderBytes)
	}
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// ValidateEndpoint reports whether Listen could bind endpoint as far as
// its form goes: host:port, with a port of 0 to 65535 (0 asks the system
// for a free one) or a service name. Whether the address is this
// machine's and the port free is known only when Listen binds it. The
// configurations' Validate call it, so that a check of the configuration
// refuses what Listen would.
func ValidateEndpoint(endpoint string) error {
	_, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return err
	}
	if port == "" {
		return nil // as 0
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("port %d out of range (0 to 65535)", n)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q is neither a number nor a known service name", port)
	}
	return nil
}

// Listen listens on the TCP endpoint and holds at most maxConns
// connections open at once.
func Listen(ctx context.Context, endpoint string, maxConns int) (net.Listener, error) {
	if maxConns <= 0 {
		return nil, fmt.Errorf("%w: max_connections %d, want > 0", ErrConfig, maxConns)
	}
	if err := ValidateEndpoint(endpoint); err != nil {
		return nil, fmt.Errorf("%w: endpoint %q: %w", ErrConfig, endpoint, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", endpoint)
	if err != nil {
		return nil, err
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, maxConns)}, nil
}

// limitListener closes connections beyond its slots as soon as they are
// accepted. Closing rather than leaving them in the kernel's backlog (as
// netutil.LimitListener does) tells the client at once, and keeps the
// backlog free for the connections that come after the flood.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
		default:
			c.Close()
		}
	}
}

// limitConn gives its slot back when closed, once.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// Options describe one HTTP server.
type Options struct {
	// Name names the server in logs and errors ("api", "otlp http").
	Name string
	// Endpoint is the host:port to listen on; port 0 picks a free one.
	Endpoint string
	Config   Config
	Handler  http.Handler
	Logger   *slog.Logger
	// UnencryptedHTTP2 serves HTTP/2 without TLS (h2c) beside HTTP/1.1,
	// for gRPC clients of a Connect handler. With TLS, every server
	// serves HTTP/2 as well as HTTP/1.1, chosen by ALPN.
	UnencryptedHTTP2 bool
	// GRPC serves HTTP/2 alone, as gRPC needs (h2c without TLS, h2 by
	// ALPN with TLS), for a handler of gRPC calls: a connection that
	// starts with HTTP/1.1 is closed, and one whose client pings more
	// often than gRPC's keepalive policy allows (pingMinTime) too.
	GRPC bool
	// HTTP2 sets the HTTP/2 limits of the server (MaxConcurrentStreams,
	// receive windows, pings); nil: at most 100 streams per connection
	// and net/http's defaults for the rest.
	HTTP2 *http.HTTP2Config
	// Registerer registers the TLS metrics; nil: none.
	Registerer prometheus.Registerer
}

// Server serves one HTTP handler on one capped listener. Start and
// Shutdown are safe to call twice, Shutdown without Start does nothing,
// and Start after Shutdown listens again.
type Server struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	started bool
	srv     *http.Server
	addr    string
	wg      sync.WaitGroup
	// tls serves the certificates, from the first Start on; nil without
	// TLS.
	tls *tlsconfig.Server
}

// New returns a server for opts; Start listens. It does not validate
// opts.Config: the owner of the config does, in its own Validate.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log}
}

// Start listens and serves in a goroutine that Shutdown waits for. A
// second Start does nothing.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	c := s.opts.Config
	if c.TLS.Enabled() && s.tls == nil {
		// Kept across a restart: its metrics are registered once.
		var err error
		protos := []string{"h2", "http/1.1"}
		if s.opts.GRPC {
			protos = protos[:1]
		}
		s.tls, err = tlsconfig.NewServer(c.TLS, tlsconfig.ServerOptions{Name: s.opts.Name,
			NextProtos: protos, Logger: s.log, Registerer: s.opts.Registerer})
		if err != nil {
			return err // it names the listener
		}
	}
	ln, err := Listen(ctx, s.opts.Endpoint, c.MaxConnections)
	if err != nil {
		return fmt.Errorf("start %s on %s: %w", s.opts.Name, s.opts.Endpoint, err)
	}
	s.started = true
	s.addr = ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.opts.Handler,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.tls != nil || s.opts.UnencryptedHTTP2 || s.opts.GRPC {
		s.srv.Protocols = new(http.Protocols)
		s.srv.Protocols.SetHTTP1(!s.opts.GRPC)
		// A GRPC listener does its own TLS (below): the server sees
		// HTTP/2 as if unencrypted.
		s.srv.Protocols.SetHTTP2(s.tls != nil && !s.opts.GRPC)
		s.srv.Protocols.SetUnencryptedHTTP2(s.tls == nil || s.opts.GRPC)
		// A cap on the streams of one connection bounds what one
		// connection can make the server hold.
		s.srv.HTTP2 = s.opts.HTTP2
		if s.srv.HTTP2 == nil {
			s.srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 100}
		}
	}
	srv, addr := s.srv, s.addr
	serve := srv.Serve
	switch {
	case s.opts.GRPC:
		// The keepalive policy reads the HTTP/2 frames of each connection
		// (pingConn), so it needs them decrypted: TLS is the listener's,
		// and the connection it hands the server hides its *tls.Conn (the
		// server would serve it by ALPN without the policy), which leaves
		// requests without their TLS state; nothing evident serves over
		// gRPC reads it.
		if s.tls != nil {
			ln = tls.NewListener(ln, s.tls.TLSConfig())
		}
		ln = pingListener{Listener: ln, log: s.log, now: time.Now}
	case s.tls != nil:
		srv.TLSConfig = s.tls.TLSConfig()
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	}
	s.wg.Go(func() {
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(s.opts.Name+" server stopped", "endpoint", addr, "err", err)
		}
	})
	return nil
}

// Addr returns the address the server listens on ("" before Start); with
// port 0 in the endpoint it tells the real port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections and waits for the requests in
// flight; when ctx ends first, it closes the remaining connections and
// returns ctx's error. Long-lived streams (Server-Sent Events) must end
// on their request's context, which Shutdown does not cancel: they are
// closed when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	var err error
	if serr := s.srv.Shutdown(ctx); serr != nil {
		s.srv.Close()
		err = fmt.Errorf("shut down %s: %w", s.opts.Name, serr)
	}
	s.wg.Wait()
	return err
}
