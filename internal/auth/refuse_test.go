package auth

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/evidentsec/evident/internal/logtest"
)

// TestBadTokensLookAlike: a client whose API token is refused, over HTTP
// and gRPC, gets the same answer whether the ID is unknown, the secret
// wrong, or the token expired or revoked, so that it cannot probe which
// IDs exist; the server's log names the token's ID and the reason, never
// the secret.
func TestBadTokensLookAlike(t *testing.T) {
	f := newFixture(t)
	revoked, tok, err := NewToken("retired", RoleRead, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateToken(t.Context(), tok, "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.RevokeToken(t.Context(), tok.ID, t0, "test"); err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	a, err := New(t.Context(), DefaultConfig(), Deps{
		Tokens: f.st,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Now:    func() time.Time { return t0.Add(2 * time.Hour) }, // past the ingest token's expiry
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}

	api := httptest.NewServer(a.Guard("api", Required).HTTP(RoleRead, http.NotFoundHandler()))
	defer api.Close()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	conn := serveGRPC(t, a.Guard("otlp-grpc", Required), RoleRead, srv)

	const want = "invalid credentials: invalid or expired token"
	unknown := "evd_0123456789abcdef_" + strings.Repeat("a", 52)
	for _, tt := range []struct {
		name, token string
		// wantReason is the reason the server logs.
		wantReason string
	}{
		{"UnknownID", unknown, "unknown or revoked"},
		{"WrongSecret", otherLast(f.admin), "wrong secret"},
		{"Expired", f.ingest, "expired at 2026-12-01T13:00:00Z"},
		{"Revoked", revoked, "unknown or revoked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, secret, _ := parseToken(tt.token)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, api.URL, nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := api.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got struct{ Error string }
			if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusUnauthorized || got.Error != want {
				t.Errorf("HTTP: %d %s, want 401 {\"error\": %q}", resp.StatusCode, body, want)
			}

			ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tt.token)
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if got := status.Convert(err).Message(); got != want {
				t.Errorf("gRPC: %v, want message %q", err, want)
			}

			log := logs.Take()
			for _, listener := range []string{"api", "otlp-grpc"} {
				line := `"msg":"token refused","listener":"` + listener + `","token":"` + id + `","reason":"` + tt.wantReason + `"`
				if !strings.Contains(log, line) {
					t.Errorf("log %s\nwant a line with %s", log, line)
				}
			}
			if strings.Contains(log, secret) {
				t.Errorf("log %s has the secret", log)
			}
		})
	}
}
