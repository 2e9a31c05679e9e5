package otlp

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestTLS sends spans with the OTel SDK's exporters over mTLS to both
// listeners, and a gRPC client without a certificate is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := tlstest.NewCA(t, "server ca"), tlstest.NewCA(t, "client ca")
	cfg := testConfig()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = serverCA.Issue(t, "127.0.0.1").Write(t, dir, "server")
	cfg.TLS.ClientCAFile = filepath.Join(dir, "client-ca.pem")
	tlstest.WriteFile(t, cfg.TLS.ClientCAFile, clientCA.PEM)
	traces := &recorder[[]telemetry.Span]{}
	r, _ := startReceiver(t, cfg, traces, nil)

	caFile := filepath.Join(dir, "server-ca.pem")
	tlstest.WriteFile(t, caFile, serverCA.PEM)
	certFile, keyFile := clientCA.Issue(t, "agent").Write(t, dir, "agent")
	client, err := tlsconfig.NewClient(tlsconfig.ClientConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, "exporter", nil)
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(r.GRPCAddr()), otlptracegrpc.WithTLSCredentials(credentials.NewTLS(client)))
	if err != nil {
		t.Fatal(err)
	}
	sendSDKSpan(t, grpcExp)
	checkSDKSpan(t, traces.all())
	httpExp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(r.HTTPAddr()), otlptracehttp.WithTLSClientConfig(client))
	if err != nil {
		t.Fatal(err)
	}
	sendSDKSpan(t, httpExp)
	if got := countSpans(traces.all()); got != 2 {
		t.Fatalf("%d spans received, want 2", got)
	}

	conn, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: serverCA.Pool()})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(t.Context(), tracesRequest(1, false)); err == nil {
		t.Error("a gRPC client without a certificate was served")
	}
}
