package tlsconfig

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

func TestClient(t *testing.T) {
	f := newFixture(t)
	f.withClientCA(t)
	s, err := NewServer(f.cfg, ServerOptions{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.TLSConfig())
	caFile := filepath.Join(f.dir, "server-ca.pem")
	tlstest.WriteFile(t, caFile, f.serverCA.PEM)
	certFile, keyFile := f.clientCA.Issue(t, "agent").Write(t, f.dir, "agent")

	c, err := NewClient(ClientConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, "webhook", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, c); err != nil {
		t.Errorf("client with the CA and a client certificate: %v", err)
	}
	c, err = NewClient(ClientConfig{CAFile: caFile}, "webhook", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, c); err == nil {
		t.Error("client without a certificate got through mTLS")
	}

	var logs bytes.Buffer
	c, err = NewClient(ClientConfig{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}, "webhook", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, c); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
	if !strings.Contains(logs.String(), "insecure_skip_verify") {
		t.Errorf("insecure_skip_verify not logged:\n%s", &logs)
	}

	if c, err := NewClient(ClientConfig{}, "webhook", nil); c != nil || err != nil {
		t.Errorf("zero config: %v %v, want nil, nil (Go's defaults)", c, err)
	}
	for _, tt := range []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"cert without key", ClientConfig{CertFile: certFile}, "go together"},
		{"missing ca", ClientConfig{CAFile: filepath.Join(f.dir, "none.pem")}, "none.pem"},
		{"ca without pem", ClientConfig{CAFile: keyFile}, "no PEM certificate"},
		{"key of another cert", ClientConfig{CertFile: certFile, KeyFile: f.cfg.KeyFile}, "private key does not match"},
		// Go verifies nothing with insecure_skip_verify, so the CA was
		// read and never used, while whoever set it believed the server
		// authenticated by it.
		{"ca with insecure_skip_verify", ClientConfig{CAFile: caFile, InsecureSkipVerify: true}, "ca_file with insecure_skip_verify"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.cfg, "webhook", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestClientCertReload: a client certificate rewritten is used from the
// first handshake after the reload interval; one rewritten with a
// certificate that has expired, or that does not load, is kept out, the
// one in use kept, as a server's is (TestExpiryWithoutHandshake).
func TestClientCertReload(t *testing.T) {
	first := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	second := first.Add(60 * 24 * time.Hour)
	for _, tt := range []struct {
		name     string
		notAfter time.Time
		broken   bool
		want     time.Time
	}{
		{"reloaded", second, false, second},
		{"expired rewrite", time.Now().Add(-time.Hour).Truncate(time.Second), false, first},
		{"broken rewrite", second, true, first},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := ClientConfig{CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key")}
			cert, key := selfSigned(t, first)
			tlstest.WriteFile(t, c.CertFile, cert)
			tlstest.WriteFile(t, c.KeyFile, key)
			r, err := clientCert(c, "webhook", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			clk := &clock{t: time.Now()}
			r.now = clk.now
			cert, key = selfSigned(t, tt.notAfter)
			if tt.broken {
				cert = []byte("not a certificate")
			}
			tlstest.WriteFile(t, c.CertFile, cert)
			tlstest.WriteFile(t, c.KeyFile, key)
			clk.t = clk.t.Add(clientReloadInterval)
			if got := r.get().Leaf.NotAfter; !got.Equal(tt.want) {
				t.Errorf("certificate in use expires at %v, want %v", got, tt.want)
			}
		})
	}
}
