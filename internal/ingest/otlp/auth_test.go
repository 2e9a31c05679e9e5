package otlp

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
)

// guarded starts a receiver whose listeners need credentials, and returns
// an ingest token and a read token of the store behind them.
func guarded(t *testing.T, traces *recorder[[]telemetry.Span]) (r *Receiver, ingest, read string) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk := func(role auth.Role) string {
		secret, tok, err := auth.NewToken(role.String(), role, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateToken(t.Context(), tok, "test"); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	ingest, read = mk(auth.RoleIngest), mk(auth.RoleRead)
	a, err := auth.New(t.Context(), auth.DefaultConfig(), auth.Deps{Tokens: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err = New(testConfig(), traces, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Guard(a.Guard("otlp-grpc", auth.Required), a.Guard("otlp-http", auth.Required))
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return r, ingest, read
}

// TestGuardedSDKExporters sends spans with the headers the OTel SDK's
// exporters (and the Collector's bearertokenauth and basicauth
// extensions) send.
func TestGuardedSDKExporters(t *testing.T) {
	traces := &recorder[[]telemetry.Span]{}
	r, ingest, _ := guarded(t, traces)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("collector:"+ingest))
	grpcExp, err := otlptracegrpc.New(t.Context(), otlptracegrpc.WithEndpoint(r.GRPCAddr()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + ingest}))
	if err != nil {
		t.Fatal(err)
	}
	sendSDKSpan(t, grpcExp)
	httpExp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(r.HTTPAddr()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": basic}))
	if err != nil {
		t.Fatal(err)
	}
	sendSDKSpan(t, httpExp)
	if got := countSpans(traces.all()); got != 2 {
		t.Errorf("consumer got %d spans, want 2 (one per exporter)", got)
	}
}

// TestGuardedRefusals sends without credentials and with a token that
// lacks the ingest role: nothing reaches the consumer.
func TestGuardedRefusals(t *testing.T) {
	traces := &recorder[[]telemetry.Span]{}
	r, _, read := guarded(t, traces)
	body := mustProto(t, tracesRequest(1, false))
	for _, tt := range []struct {
		name          string
		authorization string
		wantStatus    int
		wantCode      codes.Code
	}{
		{"NoCredentials", "", http.StatusUnauthorized, codes.Unauthenticated},
		{"ReadToken", "Bearer " + read, http.StatusForbidden, codes.PermissionDenied},
		{"Garbage", "Bearer evd_garbage", http.StatusUnauthorized, codes.Unauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+r.HTTPAddr()+TracesPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-protobuf")
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("HTTP status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx := t.Context()
			if tt.authorization != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.authorization)
			}
			_, err = ptraceotlp.NewGRPCClient(cc).Export(ctx, tracesRequest(1, false))
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("gRPC code %v (%v), want %v", got, err, tt.wantCode)
			}
		})
	}
	if got := countSpans(traces.all()); got != 0 {
		t.Errorf("consumer got %d spans, want none", got)
	}
}
