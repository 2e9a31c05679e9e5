package tlsconfig

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

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
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.cfg, "webhook", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
