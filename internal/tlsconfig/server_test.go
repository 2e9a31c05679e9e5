package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// serve accepts TLS connections on 127.0.0.1:0 with c, answers "ok" on
// each once its handshake succeeds, and returns the address.
func serve(t *testing.T, c *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if conn.(*tls.Conn).Handshake() == nil {
					io.WriteString(conn, "ok")
				}
			})
		}
	})
	return ln.Addr().String()
}

// dial makes one connection with c and returns the serial of the
// server's certificate, or the error of a refused handshake (which TLS
// 1.3 tells the client on its first read).
func dial(addr string, c *tls.Config) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	if string(b) != "ok" {
		return "", errors.New("connection closed without ok")
	}
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

type fixture struct {
	dir                string
	serverCA, clientCA *tlstest.CA
	cfg                ServerConfig
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir(), serverCA: tlstest.NewCA(t, "server ca"), clientCA: tlstest.NewCA(t, "client ca")}
	f.cfg = DefaultServerConfig()
	f.cfg.CertFile, f.cfg.KeyFile = f.serverCA.Issue(t, "127.0.0.1").Write(t, f.dir, "server")
	return f
}

func (f *fixture) withClientCA(t *testing.T) {
	f.cfg.ClientCAFile = filepath.Join(f.dir, "client-ca.pem")
	tlstest.WriteFile(t, f.cfg.ClientCAFile, f.clientCA.PEM)
}

// client returns a client configuration that trusts the server's CA and
// sends the first of certs, if any, whichever CAs the server names (Go
// would send none that the server's CAs did not sign).
func (f *fixture) client(certs ...tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: f.serverCA.Pool(), ServerName: "127.0.0.1"}
	if len(certs) > 0 {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return c
}

func TestServerTLS(t *testing.T) {
	f := newFixture(t)
	s, err := NewServer(f.cfg, ServerOptions{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.TLSConfig())
	got, err := dial(addr, f.client())
	if err != nil {
		t.Fatal(err)
	}
	if want := s.Leaf().SerialNumber.String(); got != want {
		t.Errorf("serial %s, want %s", got, want)
	}
	if _, err := dial(addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Error("a client that does not trust the server's CA completed the handshake")
	}
	if _, err := dial(addr, &tls.Config{RootCAs: f.serverCA.Pool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 client completed the handshake")
	}
}

func TestMTLS(t *testing.T) {
	f := newFixture(t)
	f.withClientCA(t)
	good := f.clientCA.Issue(t, "agent").TLS(t)
	stranger := tlstest.NewCA(t, "other ca").Issue(t, "agent").TLS(t)
	for _, tt := range []struct {
		auth              string
		none, bad, signed bool // whether each client gets in
	}{
		{auth: "", signed: true},
		{auth: ClientAuthRequireAndVerify, signed: true},
		{auth: ClientAuthRequest, none: true, signed: true},
	} {
		t.Run("client_auth="+tt.auth, func(t *testing.T) {
			cfg := f.cfg
			cfg.ClientAuth = tt.auth
			s, err := NewServer(cfg, ServerOptions{Name: "test"})
			if err != nil {
				t.Fatal(err)
			}
			addr := serve(t, s.TLSConfig())
			for _, c := range []struct {
				name  string
				certs []tls.Certificate
				want  bool
			}{{"no certificate", nil, tt.none}, {"certificate of another CA", []tls.Certificate{stranger}, tt.bad}, {"certificate of the client CA", []tls.Certificate{good}, tt.signed}} {
				_, err := dial(addr, f.client(c.certs...))
				if got := err == nil; got != c.want {
					t.Errorf("%s: admitted %v (%v), want %v", c.name, got, err, c.want)
				}
			}
		})
	}
}

// clock is a test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestReload(t *testing.T) {
	f := newFixture(t)
	f.withClientCA(t)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	s, err := NewServer(f.cfg, ServerOptions{Name: "api", Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Both results are series at 0 before the first reload.
	if n, err := testutil.GatherAndCount(reg, "evident_tls_reloads_total"); err != nil || n != 2 {
		t.Errorf("reload metric before any reload: %d series, %v; want ok and error at 0", n, err)
	}
	clk := &clock{t: time.Now()}
	s.r.now = clk.now
	addr := serve(t, s.TLSConfig())
	agent := f.clientCA.Issue(t, "agent").TLS(t)
	first := s.Leaf().SerialNumber.String()
	later := func() { clk.t = clk.t.Add(f.cfg.ReloadInterval) }
	expect := func(step, want string, certs ...tls.Certificate) {
		t.Helper()
		got, err := dial(addr, f.client(certs...))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got != want {
			t.Fatalf("%s: serial %s, want %s", step, got, want)
		}
	}
	expect("start", first, agent)

	next := f.serverCA.Issue(t, "127.0.0.1")
	next.Write(t, f.dir, "server")
	expect("before the interval is over", first, agent)
	later()
	expect("after the interval", next.Cert.SerialNumber.String(), agent)

	// A broken rewrite keeps the certificate served, and is reported once.
	tlstest.WriteFile(t, f.cfg.CertFile, []byte("not a certificate"))
	later()
	expect("broken rewrite", next.Cert.SerialNumber.String(), agent)
	later()
	expect("broken rewrite, again", next.Cert.SerialNumber.String(), agent)
	if got := testutil.ToFloat64(s.reload.WithLabelValues("error")); got != 1 {
		t.Errorf("reload errors %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "tls certificate not reloaded") {
		t.Errorf("no error logged for the broken rewrite:\n%s", &logs)
	}
	// A key from another certificate than the one in cert_file is refused
	// too (a manager that has written one file of the two).
	tlstest.WriteFile(t, f.cfg.CertFile, f.serverCA.Issue(t, "127.0.0.1").CertPEM)
	later()
	expect("mismatched key", next.Cert.SerialNumber.String(), agent)

	// The client CA reloads too: a new CA's clients get in, the old one's
	// no longer.
	third := f.serverCA.Issue(t, "127.0.0.1")
	third.Write(t, f.dir, "server")
	newCA := tlstest.NewCA(t, "new client ca")
	tlstest.WriteFile(t, f.cfg.ClientCAFile, newCA.PEM)
	later()
	expect("new client CA", third.Cert.SerialNumber.String(), newCA.Issue(t, "agent").TLS(t))
	if _, err := dial(addr, f.client(agent)); err == nil {
		t.Error("a client of the replaced client CA still gets in")
	}
	if got := testutil.ToFloat64(s.reload.WithLabelValues("ok")); got != 2 {
		t.Errorf("reloads %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "evident_tls_certificate_expiry_timestamp_seconds"); err != nil || n != 1 {
		t.Errorf("expiry metric: %d series, %v", n, err)
	}
}

func TestNewServerErrors(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name string
		edit func(*ServerConfig)
		want string
	}{
		{name: "missing cert", edit: func(c *ServerConfig) { c.CertFile = filepath.Join(f.dir, "none.crt") }, want: "none.crt"},
		{name: "key of another cert", edit: func(c *ServerConfig) {
			c.KeyFile = filepath.Join(f.dir, "other.key")
			tlstest.WriteFile(t, c.KeyFile, f.serverCA.Issue(t, "x").KeyPEM)
		}, want: "private key does not match"},
		{name: "empty client ca", edit: func(c *ServerConfig) {
			c.ClientCAFile = filepath.Join(f.dir, "empty.pem")
			tlstest.WriteFile(t, c.ClientCAFile, nil)
		}, want: "no PEM certificate"},
		{name: "off", edit: func(c *ServerConfig) { *c = DefaultServerConfig() }, want: "is off"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.cfg
			tt.edit(&cfg)
			_, err := NewServer(cfg, ServerOptions{Name: "test"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestServerConfigValidate(t *testing.T) {
	on := DefaultServerConfig()
	on.CertFile, on.KeyFile = "c", "k"
	for _, tt := range []struct {
		name string
		edit func(*ServerConfig)
		want string // "" for valid
	}{
		{name: "default, off", edit: func(c *ServerConfig) { *c = DefaultServerConfig() }},
		{name: "on", edit: func(*ServerConfig) {}},
		{name: "mtls", edit: func(c *ServerConfig) { c.ClientCAFile = "ca" }},
		{name: "request", edit: func(c *ServerConfig) { c.ClientCAFile, c.ClientAuth = "ca", "request" }},
		{name: "tls 1.3", edit: func(c *ServerConfig) { c.MinVersion = "1.3" }},
		{name: "tls 1.2, suites", edit: func(c *ServerConfig) {
			c.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
		}},
		{name: "tls 1.3, suites", edit: func(c *ServerConfig) {
			c.MinVersion, c.CipherSuites = "1.3", []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
		}, want: `cipher_suites with min_version "1.3" restricts nothing`},
		{name: "cert without key", edit: func(c *ServerConfig) { c.KeyFile = "" }, want: "go together"},
		{name: "client ca without cert", edit: func(c *ServerConfig) { *c = DefaultServerConfig(); c.ClientCAFile = "ca" }, want: "client_ca_file without cert_file"},
		{name: "client auth without cert", edit: func(c *ServerConfig) { *c = DefaultServerConfig(); c.ClientAuth = "require_and_verify" }, want: "client_auth without cert_file"},
		{name: "suites without cert", edit: func(c *ServerConfig) {
			*c = DefaultServerConfig()
			c.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
		}, want: "cipher_suites without cert_file"},
		{name: "tls 1.3 without cert", edit: func(c *ServerConfig) { *c = DefaultServerConfig(); c.MinVersion = "1.3" }, want: `min_version "1.3" without cert_file`},
		{name: "zero, off", edit: func(c *ServerConfig) { *c = ServerConfig{} }},
		{name: "require without ca", edit: func(c *ServerConfig) { c.ClientAuth = "require_and_verify" }, want: "needs client_ca_file"},
		{name: "none with ca", edit: func(c *ServerConfig) { c.ClientAuth, c.ClientCAFile = "none", "ca" }, want: "client_auth none with a client_ca_file"},
		{name: "unknown client auth", edit: func(c *ServerConfig) { c.ClientAuth = "optional" }, want: `client_auth "optional"`},
		{name: "tls 1.1", edit: func(c *ServerConfig) { c.MinVersion = "1.1" }, want: `min_version "1.1"`},
		{name: "insecure suite", edit: func(c *ServerConfig) { c.CipherSuites = []string{"TLS_RSA_WITH_RC4_128_SHA"} }, want: `cipher_suites "TLS_RSA_WITH_RC4_128_SHA"`},
		{name: "tls 1.3 suite", edit: func(c *ServerConfig) {
			c.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"}
		}, want: `cipher_suites "TLS_AES_128_GCM_SHA256" is a TLS 1.3 suite`},
		{name: "no reload interval", edit: func(c *ServerConfig) { c.ReloadInterval = 0 }, want: "reload_interval"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := on
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrConfig with %q", err, tt.want)
			}
		})
	}
}
