package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tenantFixture adds a token bound to tenant team-a to the fixture.
func tenantFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	f := newFixture(t)
	secret, tok, err := NewToken("team-a collector", RoleIngest|RoleRead, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok.Tenant = "team-a"
	if err := f.st.CreateToken(t.Context(), tok, "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f, secret
}

// tenantCase is who asks, with which X-Scope-OrgID, and the tenant
// decided ("" when refused: as forbidden, or as a malformed request when
// invalid).
type tenantCase struct {
	name, authorization, orgID, want string
	invalid                          bool
}

// tenantCases are the same for HTTP and gRPC.
func tenantCases(f *fixture, teamA string) []tenantCase {
	return []tenantCase{
		{"BoundToken", "Bearer " + teamA, "", "team-a", false},
		{"BoundTokenOwnTenant", "Bearer " + teamA, "team-a", "team-a", false},
		{"BoundTokenOtherTenant", "Bearer " + teamA, "team-b", "", false},
		{"BoundTokenBadHeader", "Bearer " + teamA, "../x", "", true},
		{"FreeTokenDefault", "Bearer " + f.admin, "", "default", false},
		{"FreeTokenPicks", "Bearer " + f.admin, "team-b", "team-b", false},
		{"FreeTokenBadHeader", "Bearer " + f.admin, "a|b", "", true},
	}
}

func TestGuardHTTPTenant(t *testing.T) {
	f, teamA := tenantFixture(t)
	var got string
	srv := httptest.NewServer(f.a.Guard("api", Required).HTTP(RoleIngest, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = TenantFromContext(r.Context())
	})))
	defer srv.Close()
	for _, tt := range tenantCases(f, teamA) {
		t.Run(tt.name, func(t *testing.T) {
			got = ""
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			req.Header.Set("Authorization", tt.authorization)
			if tt.orgID != "" {
				req.Header.Set(TenantHeader, tt.orgID)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wantStatus := http.StatusOK
			switch {
			case tt.invalid:
				wantStatus = http.StatusBadRequest
			case tt.want == "":
				wantStatus = http.StatusForbidden
			}
			if resp.StatusCode != wantStatus || got != tt.want {
				t.Errorf("status %d, tenant %q; want %d, %q", resp.StatusCode, got, wantStatus, tt.want)
			}
		})
	}
	// Anonymous on loopback picks with the header too.
	lo := httptest.NewServer(f.a.Guard("api", Loopback).HTTP(RoleRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = TenantFromContext(r.Context())
	})))
	defer lo.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, lo.URL, nil)
	req.Header.Set(TenantHeader, "team-c")
	resp, err := lo.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || got != "team-c" {
		t.Errorf("anonymous on loopback with %s team-c: status %d, tenant %q", TenantHeader, resp.StatusCode, got)
	}
}

func TestGuardGRPCTenant(t *testing.T) {
	f, teamA := tenantFixture(t)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, whoHealth{})
	client := healthpb.NewHealthClient(serveGRPC(t, f.a.Guard("otlp-grpc", Required), RoleIngest, srv))
	for _, tt := range tenantCases(f, teamA) {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", tt.authorization)
			if tt.orgID != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tt.orgID)
			}
			var hdr metadata.MD
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr))
			if tt.want == "" {
				want := codes.PermissionDenied
				if tt.invalid {
					want = codes.InvalidArgument
				}
				if status.Code(err) != want {
					t.Errorf("Check = %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hdr.Get("tenant"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("tenant %q, want %q", got, tt.want)
			}
		})
	}
}
