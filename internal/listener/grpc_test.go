package listener

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// call makes one unary call (a health check) with a real gRPC client
// and returns its status.
func call(t *testing.T, addr string, creds credentials.TransportCredentials, md ...string) *status.Status {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), md...)
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return status.Convert(err)
}

// TestWriteGRPCStatus answers the calls of a real gRPC client with
// WriteGRPCStatus alone, and the client reads the status as written: the
// code, the message byte for byte (grpc-message is percent-encoded), and
// the details (grpc-status-details-bin).
func TestWriteGRPCStatus(t *testing.T) {
	retry, err := status.New(codes.ResourceExhausted, "queue full, retry later").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]*status.Status{
		"RetryInfo": retry,
		"NoDetails": status.New(codes.Unauthenticated, "invalid credentials: invalid or expired token"),
		// '%' is the escape of grpc-message, "%25" and "%zz" look like
		// escapes, a newline and UTF-8 are outside what a header may
		// carry as is.
		"Escaped": status.New(codes.InvalidArgument, "100% full, not %25 nor %zz\nTenant „équipe-ß“ 租户 ✓"),
	}
	s := startOptions(t, Options{Name: "test", Endpoint: "127.0.0.1:0", Config: DefaultConfig(), GRPC: true,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteGRPCStatus(w, cases[r.Header.Get("Case")])
		})})
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			got := call(t, s.Addr(), insecure.NewCredentials(), "case", name)
			if got.Code() != want.Code() || got.Message() != want.Message() {
				t.Errorf("status %v %q, want %v %q", got.Code(), got.Message(), want.Code(), want.Message())
			}
			if diff := cmp.Diff(want.Details(), got.Details(), protocmp.Transform()); diff != "" {
				t.Errorf("details (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGRPCOption: a listener with GRPC serves HTTP/2 alone, h2c without
// TLS and h2 chosen by ALPN with TLS (grpc-go's client refuses a TLS
// connection without it), so a gRPC client reaches its handler and an
// HTTP/1.1 client does not. The listener does the TLS itself (for its
// keepalive policy), so the requests carry no TLS state.
func TestGRPCOption(t *testing.T) {
	ca := tlstest.NewCA(t, "server ca")
	withTLS := DefaultConfig()
	withTLS.TLS.CertFile, withTLS.TLS.KeyFile = ca.Issue(t, "127.0.0.1").Write(t, t.TempDir(), "server")
	clientTLS := &tls.Config{RootCAs: ca.Pool()}
	for _, tt := range []struct {
		name   string
		config Config
		creds  credentials.TransportCredentials
		// scheme and tlsConfig make the HTTP/1.1 client.
		scheme    string
		tlsConfig *tls.Config
		want      string
	}{
		{"h2c", DefaultConfig(), insecure.NewCredentials(), "http", nil, "HTTP/2.0"},
		{"h2", withTLS, credentials.NewTLS(clientTLS), "https", clientTLS, "HTTP/2.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startOptions(t, Options{Name: "test", Endpoint: "127.0.0.1:0", Config: tt.config, GRPC: true,
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// The handler says how the request came, in a status
					// the gRPC client reads.
					WriteGRPCStatus(w, status.New(codes.Unimplemented, r.Proto))
				})})

			if got := call(t, s.Addr(), tt.creds); got.Code() != codes.Unimplemented || got.Message() != tt.want {
				t.Errorf("gRPC call: %v %q, want %v %q", got.Code(), got.Message(), codes.Unimplemented, tt.want)
			}

			protocols := new(http.Protocols)
			protocols.SetHTTP1(true)
			tr := &http.Transport{Protocols: protocols, TLSClientConfig: tt.tlsConfig}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			resp, err := client.Get(tt.scheme + "://" + s.Addr() + "/")
			if err == nil {
				resp.Body.Close()
				t.Errorf("HTTP/1.1 request answered %s, want the connection refused", resp.Status)
			}
			t.Logf("HTTP/1.1 request: %v", err)
		})
	}
}
