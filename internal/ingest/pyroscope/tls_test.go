package pyroscope

import (
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestTLS pushes over gRPC (HTTP/2 chosen by ALPN) and Connect
// (HTTP/1.1) to a receiver serving mTLS.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := tlstest.NewCA(t, "server ca"), tlstest.NewCA(t, "client ca")
	cfg := testConfig()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = serverCA.Issue(t, "127.0.0.1").Write(t, dir, "server")
	cfg.TLS.ClientCAFile = filepath.Join(dir, "client-ca.pem")
	tlstest.WriteFile(t, cfg.TLS.ClientCAFile, clientCA.PEM)
	rec := &recorder{}
	r, _ := startReceiver(t, cfg, rec)

	caFile := filepath.Join(dir, "server-ca.pem")
	tlstest.WriteFile(t, caFile, serverCA.PEM)
	certFile, keyFile := clientCA.Issue(t, "agent").Write(t, dir, "agent")
	tc, err := tlsconfig.NewClient(tlsconfig.ClientConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, "agent", nil)
	if err != nil {
		t.Fatal(err)
	}
	prof := cpuProfile(t)
	for _, tt := range []struct {
		name string
		h2   bool
		opts []connect.ClientOption
	}{{"grpc", true, []connect.ClientOption{connect.WithGRPC()}}, {"connect", false, nil}} {
		t.Run(tt.name, func(t *testing.T) {
			// A Transport adds h2 to the NextProtos of its config: one each.
			tr := &http.Transport{TLSClientConfig: tc.Clone(), ForceAttemptHTTP2: tt.h2}
			defer tr.CloseIdleConnections()
			client := pushv1connect.NewPusherServiceClient(&http.Client{Transport: tr}, "https://"+r.Addr(), tt.opts...)
			if _, err := client.Push(t.Context(), connect.NewRequest(pushRequest(t, prof))); err != nil {
				t.Fatal(err)
			}
		})
	}
	if got := len(rec.all()); got != 2 {
		t.Errorf("%d batches received, want 2", got)
	}
	anon := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.Pool()}}
	defer anon.CloseIdleConnections()
	client := pushv1connect.NewPusherServiceClient(&http.Client{Transport: anon}, "https://"+r.Addr())
	if _, err := client.Push(t.Context(), connect.NewRequest(pushRequest(t, prof))); err == nil {
		t.Error("a client without a certificate was served")
	}
}
