package alert

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestWebhookTLS delivers to a webhook behind a private CA that asks for
// a client certificate, with the client a sink's tls block gives.
func TestWebhookTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := tlstest.NewCA(t, "private ca"), tlstest.NewCA(t, "client ca")
	got := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCA.Issue(t, "127.0.0.1").TLS(t)},
		ClientCAs: clientCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()

	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, serverCA.PEM)
	certFile, keyFile := clientCA.Issue(t, "evident").Write(t, dir, "evident")
	for _, tt := range []struct {
		name string
		tls  tlsconfig.ClientConfig
		ok   bool
	}{
		{"system roots", tlsconfig.ClientConfig{}, false},
		{"private ca, no client certificate", tlsconfig.ClientConfig{CAFile: caFile}, false},
		{"private ca and client certificate", tlsconfig.ClientConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := tlsconfig.NewTransport(tt.tls, "hook", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			w, err := NewWebhook("hook", srv.URL, "k", &http.Client{Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			err = w.Send(t.Context(), Alert{Alert: firstExec()})
			if (err == nil) != tt.ok {
				t.Fatalf("Send: %v, want success %v", err, tt.ok)
			}
			if tt.ok {
				if cn := <-got; cn != "evident" {
					t.Errorf("server saw client %q, want evident", cn)
				}
			}
		})
	}
}
