package auth

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/evidentsec/evident/internal/listener"
)

// serveGRPC serves srv through net/http behind guard g, as the OTLP/gRPC
// receiver does: a listener with GRPC on 127.0.0.1:0 whose handler asks
// g.GRPC and answers a refusal with WriteGRPCStatus. It returns a client
// of it; all three close when the test ends.
func serveGRPC(t *testing.T, g *Guard, need Role, srv *grpc.Server) *grpc.ClientConn {
	t.Helper()
	s := listener.New(listener.Options{
		Name:     "otlp grpc",
		Endpoint: "127.0.0.1:0",
		Config:   listener.DefaultConfig(),
		GRPC:     true,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, err := g.GRPC(need, r)
			if err != nil {
				listener.WriteGRPCStatus(w, status.Convert(err))
				return
			}
			srv.ServeHTTP(w, r)
		}),
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		// t.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		srv.Stop()
	})
	return conn
}

// whoHealth answers a health check with the call's principal and tenant
// in headers, so the client sees what the guard decided and that it
// reached the service through ServeHTTP.
type whoHealth struct {
	healthpb.UnimplementedHealthServer
}

func (whoHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	p, _ := FromContext(ctx)
	grpc.SetHeader(ctx, metadata.Pairs("principal", p.Name, "tenant", TenantFromContext(ctx)))
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestGuardGRPC calls a real gRPC server behind a guard with the metadata
// the Collector's bearertokenauth and basicauth send; each call is
// counted once under its result.
func TestGuardGRPC(t *testing.T) {
	f := newFixture(t)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, whoHealth{})
	client := healthpb.NewHealthClient(serveGRPC(t, f.a.Guard("otlp-grpc", Required), RoleIngest, srv))
	adminID, _, _ := parseToken(f.admin)
	for _, tt := range []struct {
		name          string
		authorization string
		want          codes.Code
		// wantPrincipal is who the service sees, "" when refused.
		wantPrincipal string
		wantResult    string
	}{
		{"NoToken", "", codes.Unauthenticated, "", "no_credentials"},
		{"Bearer", "Bearer " + f.ingest, codes.OK, "token:" + f.ingestID + " (collector)", "ok"},
		{"Basic", basic("collector", f.ingest), codes.OK, "token:" + f.ingestID + " (collector)", "ok"},
		{"Admin", "Bearer " + f.admin, codes.OK, "token:" + adminID + " (ops)", "ok"},
		{"Reader", "Bearer " + f.reader, codes.PermissionDenied, "", "forbidden"},
		{"Garbage", "Bearer nope", codes.Unauthenticated, "", "bad_credentials"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.authorization != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.authorization)
			}
			counter := f.a.requests.WithLabelValues("otlp-grpc", tt.wantResult)
			before := testutil.ToFloat64(counter)
			var hdr metadata.MD
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr))
			if got := status.Code(err); got != tt.want {
				t.Errorf("Check = %v, want code %v", err, tt.want)
			}
			if got := hdr.Get("principal"); tt.wantPrincipal != "" && (len(got) != 1 || got[0] != tt.wantPrincipal) {
				t.Errorf("principal %q, want %q", got, tt.wantPrincipal)
			}
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("evident_auth_requests_total{result=%q} grew by %v, want 1", tt.wantResult, got)
			}
		})
	}
}
