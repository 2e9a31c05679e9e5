package auth

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestGuardGRPC calls a real gRPC server whose tap handle is a guard, with
// the metadata the Collector's bearertokenauth and basicauth send.
func TestGuardGRPC(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.InTapHandle(f.a.Guard("otlp-grpc", Required).Tap(RoleIngest)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for _, tt := range []struct {
		name          string
		authorization string
		want          codes.Code
	}{
		{"NoToken", "", codes.Unauthenticated},
		{"Bearer", "Bearer " + f.ingest, codes.OK},
		{"Basic", basic("collector", f.ingest), codes.OK},
		{"Admin", "Bearer " + f.admin, codes.OK},
		{"Reader", "Bearer " + f.reader, codes.PermissionDenied},
		{"Garbage", "Bearer nope", codes.Unauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.authorization != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.authorization)
			}
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			if got := status.Code(err); got != tt.want {
				t.Errorf("Check = %v, want code %v", err, tt.want)
			}
		})
	}
}
