package listener

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func testConfig() Config {
	c := DefaultConfig()
	c.MaxConnections = 4
	c.ReadHeaderTimeout = 200 * time.Millisecond
	c.ReadTimeout = 300 * time.Millisecond
	return c
}

func start(t *testing.T, c Config, h http.Handler) *Server {
	t.Helper()
	return startOptions(t, Options{Name: "test", Endpoint: "127.0.0.1:0", Config: c, Handler: h})
}

// startOptions starts a server for opts and shuts it down when the test
// ends.
func startOptions(t *testing.T, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	io.WriteString(w, "ok")
})

// get sends one request on a new connection and returns the status, or
// the error of a connection the server closed.
func get(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestConnectionCap holds the cap's connections open: one more is closed
// at once, and one gets through as soon as a held connection goes.
func TestConnectionCap(t *testing.T) {
	c := testConfig()
	c.ReadHeaderTimeout, c.ReadTimeout = time.Minute, time.Minute
	s := start(t, c, ok)
	var held []net.Conn
	for range c.MaxConnections {
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	// The accept loop takes the held connections in order; wait until it
	// has taken them all, which a request of the last one shows.
	fmt.Fprintf(held[len(held)-1], "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(held[len(held)-1]), nil); err != nil {
		t.Fatal(err)
	}
	if code, err := get(s.Addr()); err == nil {
		t.Fatalf("connection over the cap answered %d, want it closed", code)
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, err := get(s.Addr())
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after one was freed: %d %v", code, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowClients: clients that send headers or a body slowly lose their
// connection after the read timeouts, and a normal client is served
// meanwhile and after.
func TestSlowClients(t *testing.T) {
	c := testConfig()
	s := start(t, c, ok)
	slow := make([]net.Conn, c.MaxConnections-1)
	for i := range slow {
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if i%2 == 0 {
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n") // headers never end
		} else {
			fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc") // body never ends
		}
		slow[i] = conn
	}
	if code, err := get(s.Addr()); err != nil || code != http.StatusOK {
		t.Fatalf("normal client beside slow ones: %d %v, want 200", code, err)
	}
	for i, conn := range slow {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("slow client %d still connected after the read timeout", i)
		}
	}
	if code, err := get(s.Addr()); err != nil || code != http.StatusOK {
		t.Fatalf("normal client after slow ones: %d %v, want 200", code, err)
	}
}

func TestLifecycle(t *testing.T) {
	s := New(Options{Name: "test", Endpoint: "127.0.0.1:0", Config: testConfig(), Handler: ok})
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown without Start: %v", err)
	}
	for range 2 {
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if code, err := get(s.Addr()); err != nil || code != http.StatusOK {
		t.Fatalf("%d %v", code, err)
	}
	for range 2 {
		if err := s.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	if _, err := get(s.Addr()); err == nil {
		t.Error("still serving after Shutdown")
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start after Shutdown: %v", err)
	}
	if code, err := get(s.Addr()); err != nil || code != http.StatusOK {
		t.Fatalf("after restart: %d %v", code, err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{name: "default", edit: func(*Config) {}},
		{name: "no write timeout", edit: func(c *Config) { c.WriteTimeout = 0 }},
		{name: "no connections", edit: func(c *Config) { c.MaxConnections = 0 }, want: "max_connections"},
		{name: "no header timeout", edit: func(c *Config) { c.ReadHeaderTimeout = 0 }, want: "read_header_timeout"},
		{name: "no read timeout", edit: func(c *Config) { c.ReadTimeout = 0 }, want: "read_timeout"},
		{name: "header timeout over read timeout", edit: func(c *Config) { c.ReadHeaderTimeout = time.Hour }, want: "longer than read_timeout"},
		{name: "negative write timeout", edit: func(c *Config) { c.WriteTimeout = -1 }, want: "write_timeout"},
		{name: "no idle timeout", edit: func(c *Config) { c.IdleTimeout = 0 }, want: "idle_timeout"},
		{name: "tiny headers", edit: func(c *Config) { c.MaxHeaderBytes = 100 }, want: "max_header_bytes"},
		{name: "tls cert without key", edit: func(c *Config) { c.TLS.CertFile = "c.pem" }, want: "tls cert_file and key_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want ErrConfig naming %q", err, tt.want)
			}
		})
	}
}

// TestValidateEndpoint: what ValidateEndpoint refuses, Listen would
// refuse too, and a check of the configuration says so before anything
// listens.
func TestValidateEndpoint(t *testing.T) {
	tests := []struct {
		endpoint, wantErr string
	}{
		{"127.0.0.1:8080", ""},
		{"127.0.0.1:0", ""},
		{"[::1]:65535", ""},
		{":4318", ""},
		{"localhost:http", ""},
		{"127.0.0.1:", ""}, // Listen takes it as port 0
		{"127.0.0.1:99999", "port 99999 out of range (0 to 65535)"},
		{"127.0.0.1:-1", "port -1 out of range (0 to 65535)"},
		{"127.0.0.1:notaport", `port "notaport" is neither a number nor a known service name`},
		{"8080", "address 8080: missing port in address"},
		{"", "missing port in address"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			err := ValidateEndpoint(tt.endpoint)
			if got := fmt.Sprint(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && got != tt.wantErr) {
				t.Errorf("ValidateEndpoint(%q) = %v, want %q", tt.endpoint, err, tt.wantErr)
			}
			if tt.wantErr == "" {
				return
			}
			if ln, err := Listen(context.Background(), tt.endpoint, 1); err == nil {
				ln.Close()
				t.Errorf("Listen(%q) succeeded", tt.endpoint)
			}
		})
	}
}
