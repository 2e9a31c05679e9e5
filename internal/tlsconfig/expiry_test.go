package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/logtest"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// selfSigned returns a self-signed certificate for 127.0.0.1 that
// expires at notAfter, and its key, PEM-encoded.
func selfSigned(t *testing.T, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(notAfter.Unix()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// expiryOf scrapes the expiry metric of reg.
func expiryOf(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "evident_tls_certificate_expiry_timestamp_seconds" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no evident_tls_certificate_expiry_timestamp_seconds series")
	return 0
}

// TestExpiryWithoutHandshake: the expiry metric is the certificate's
// NotAfter once it is loaded, and the new one's once the files change and
// a reload interval is over, though nobody connects to the listener.
func TestExpiryWithoutHandshake(t *testing.T) {
	first := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	second := first.Add(60 * 24 * time.Hour)
	tests := []struct {
		name    string
		rewrite bool // the files get a certificate that expires at second
		broken  bool // the rewritten certificate file does not load
		expired bool // the rewritten certificate expired an hour ago
		wait    bool // a reload interval passes after the rewrite
		want    time.Time
	}{
		{"loaded", false, false, false, true, first},
		{"reloaded", true, false, false, true, second},
		{"rewritten within the interval", true, false, false, false, first},
		{"broken rewrite", true, true, false, true, first},
		{"expired rewrite", true, false, true, true, first},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := DefaultServerConfig()
			cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			cert, key := selfSigned(t, first)
			tlstest.WriteFile(t, cfg.CertFile, cert)
			tlstest.WriteFile(t, cfg.KeyFile, key)
			reg := prometheus.NewRegistry()
			s, err := NewServer(cfg, ServerOptions{Name: "otlp_http", Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			clk := &clock{t: time.Now()}
			s.r.now = clk.now
			if got := expiryOf(t, reg); got != float64(first.Unix()) {
				t.Fatalf("expiry after the load = %v, want %v", got, first.Unix())
			}
			if tt.rewrite {
				notAfter := second
				if tt.expired {
					notAfter = time.Now().Add(-time.Hour).Truncate(time.Second)
				}
				cert, key := selfSigned(t, notAfter)
				if tt.broken {
					cert = []byte("not a certificate")
				}
				tlstest.WriteFile(t, cfg.CertFile, cert)
				tlstest.WriteFile(t, cfg.KeyFile, key)
			}
			if tt.wait {
				clk.t = clk.t.Add(cfg.ReloadInterval)
			}
			if got := expiryOf(t, reg); got != float64(tt.want.Unix()) {
				t.Errorf("expiry = %v, want %v", got, tt.want.Unix())
			}
		})
	}
}

// TestExpiredAtStart: a listener's or a client's certificate that has
// already expired when evident starts is used, as there is none to keep,
// and a warning says that every peer that verifies it refuses it; one
// that has not expired is used without a word.
func TestExpiredAtStart(t *testing.T) {
	tests := []struct {
		name     string
		client   bool
		notAfter time.Time
		want     string // in the log; "" for nothing at warn
	}{
		{"listener, expired", false, time.Now().Add(-time.Hour), `level=WARN msg="tls certificate has expired: every client that verifies it refuses the handshake" listener=api`},
		{"listener, valid", false, time.Now().Add(time.Hour), ""},
		{"client, expired", true, time.Now().Add(-time.Hour), `level=WARN msg="tls client certificate has expired: every server that verifies it refuses the handshake" client=webhook`},
		{"client, valid", true, time.Now().Add(time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			cert, key := selfSigned(t, tt.notAfter.Truncate(time.Second))
			tlstest.WriteFile(t, certFile, cert)
			tlstest.WriteFile(t, keyFile, key)
			var log logtest.Buffer
			logger := slog.New(slog.NewTextHandler(&log, nil))
			var err error
			if tt.client {
				_, err = NewClient(ClientConfig{CertFile: certFile, KeyFile: keyFile}, "webhook", logger)
			} else {
				cfg := DefaultServerConfig()
				cfg.CertFile, cfg.KeyFile = certFile, keyFile
				_, err = NewServer(cfg, ServerOptions{Name: "api", Logger: logger})
			}
			if err != nil {
				t.Fatal(err)
			}
			got := log.String()
			if tt.want == "" && strings.Contains(got, "level=WARN") || !strings.Contains(got, tt.want) {
				t.Errorf("log:\n%s\nwant %q", got, tt.want)
			}
		})
	}
}
