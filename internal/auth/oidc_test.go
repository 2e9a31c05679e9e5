package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// issuer is an OpenID Connect issuer on a local listener: a discovery
// document and a JWKS with an RSA key (k1) and an Ed25519 key (k2) made
// by the test.
type issuer struct {
	srv   *httptest.Server
	key   *rsa.PrivateKey
	edKey ed25519.PrivateKey
}

// newIssuer starts the issuer over HTTP, or HTTPS with serverTLS.
func newIssuer(t testing.TB, serverTLS *tls.Config) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, edKey: edKey}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys",
			"authorization_endpoint": is.srv.URL + "/auth", "token_endpoint": is.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"},
			{Key: edPub, KeyID: "k2", Algorithm: "EdDSA", Use: "sig"},
		}})
	})
	is.srv = httptest.NewUnstartedServer(mux)
	if serverTLS != nil {
		is.srv.TLS = serverTLS
		is.srv.StartTLS()
	} else {
		is.srv.Start()
	}
	t.Cleanup(is.srv.Close)
	return is
}

// sign makes a JWT with claims, signed by key under key ID k1.
func sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOIDC(t *testing.T) {
	is := newIssuer(t, nil)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	claims := func(mod func(c map[string]any)) map[string]any {
		c := map[string]any{
			"iss": is.srv.URL, "aud": "evident", "sub": "alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"groups": []string{"sec-admins", "everyone"},
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	for _, discovery := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.OIDC = OIDCConfig{Issuer: is.srv.URL, Audience: "evident", RolesClaim: "groups",
			Roles: map[string][]string{"sec-admins": {"admin"}, "sre": {"read", "ingest"}}}
		if !discovery {
			cfg.OIDC.JWKSURL = is.srv.URL + "/keys"
		}
		a, err := New(t.Context(), cfg, Deps{Tokens: st})
		if err != nil {
			t.Fatal(err)
		}
		if !a.HasCredentials() {
			t.Error("HasCredentials with OIDC = false")
		}
		for _, tt := range []struct {
			name      string
			jwt       string
			wantRoles Role
			wantErr   error
		}{
			{"Admin", sign(t, is.key, claims(nil)), RoleAdmin, nil},
			{"MappedRoles", sign(t, is.key, claims(func(c map[string]any) { c["groups"] = "sre" })), RoleRead | RoleIngest, nil},
			{"UnmappedGroup", sign(t, is.key, claims(func(c map[string]any) { c["groups"] = []string{"admin"} })), 0, nil},
			{"NoGroups", sign(t, is.key, claims(func(c map[string]any) { delete(c, "groups") })), 0, nil},
			{"WrongAudience", sign(t, is.key, claims(func(c map[string]any) { c["aud"] = "grafana" })), 0, ErrBadCredentials},
			{"WrongIssuer", sign(t, is.key, claims(func(c map[string]any) { c["iss"] = "https://other.example" })), 0, ErrBadCredentials},
			{"Expired", sign(t, is.key, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), 0, ErrBadCredentials},
			{"OtherKey", sign(t, other, claims(nil)), 0, ErrBadCredentials},
			{"GroupsNumber", sign(t, is.key, claims(func(c map[string]any) { c["groups"] = 7 })), 0, ErrBadCredentials},
		} {
			t.Run(tt.name, func(t *testing.T) {
				p, err := a.Authenticate(t.Context(), "Bearer "+tt.jwt)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Authenticate = %v, want %v", err, tt.wantErr)
				}
				if err == nil && (p.Name != "oidc:alice" || p.Roles != tt.wantRoles) {
					t.Errorf("principal = %+v, want oidc:alice with roles %v", p, tt.wantRoles)
				}
			})
		}
		// A JWT sent as basic auth is not accepted: OIDC is Bearer only.
		if _, err := a.Authenticate(t.Context(), basic("alice", sign(t, is.key, claims(nil)))); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("JWT as basic auth = %v, want ErrBadCredentials", err)
		}
	}
}

func TestOIDCConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  OIDCConfig
		ok   bool
	}{
		{"Off", OIDCConfig{}, true},
		{"Good", OIDCConfig{Issuer: "https://id.example", Audience: "evident", RolesClaim: "groups"}, true},
		{"NoAudience", OIDCConfig{Issuer: "https://id.example", RolesClaim: "groups"}, false},
		{"NoRolesClaim", OIDCConfig{Issuer: "https://id.example", Audience: "evident"}, false},
		{"BadIssuer", OIDCConfig{Issuer: "id.example", Audience: "evident", RolesClaim: "groups"}, false},
		{"BadRole", OIDCConfig{Issuer: "https://id.example", Audience: "evident", RolesClaim: "groups", Roles: map[string][]string{"x": {"root"}}}, false},
		{"Tenants", OIDCConfig{Issuer: "https://id.example", Audience: "evident", RolesClaim: "groups", TenantClaim: "org", Tenants: []string{"a", "b"}, DefaultTenant: "a"}, true},
		{"BadTenant", OIDCConfig{Issuer: "https://id.example", Audience: "evident", RolesClaim: "groups", TenantClaim: "org", Tenants: []string{"a/b"}}, false},
		{"BadDefaultTenant", OIDCConfig{Issuer: "https://id.example", Audience: "evident", RolesClaim: "groups", DefaultTenant: ".."}, false},
		{"DefaultTenantNotListed", OIDCConfig{Issuer: "https://id.example", Audience: "evident", RolesClaim: "groups", TenantClaim: "org", Tenants: []string{"a"}, DefaultTenant: "b"}, false},
		{"TenantsWithoutClaim", OIDCConfig{Issuer: "https://id.example", Audience: "evident", RolesClaim: "groups", Tenants: []string{"a"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestOIDCPrivateCA discovers an issuer whose certificate a private CA
// signs: refused with the system's roots, trusted with the CA's file.
func TestOIDCPrivateCA(t *testing.T) {
	ca := tlstest.NewCA(t, "private ca")
	is := newIssuer(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "127.0.0.1").TLS(t)}})
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := DefaultConfig()
	cfg.OIDC = OIDCConfig{Issuer: is.srv.URL, Audience: "evident", RolesClaim: "groups"}
	if _, err := New(t.Context(), cfg, Deps{Tokens: st}); err == nil {
		t.Fatal("discovery trusted a private CA's issuer without its file")
	}
	cfg.OIDC.TLS.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	tlstest.WriteFile(t, cfg.OIDC.TLS.CAFile, ca.PEM)
	a, err := New(t.Context(), cfg, Deps{Tokens: st})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	jwt := sign(t, is.key, map[string]any{"iss": is.srv.URL, "aud": "evident", "sub": "alice",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "groups": "read"})
	// The keys are fetched now, over the same TLS.
	if p, err := a.Authenticate(t.Context(), "Bearer "+jwt); err != nil || p.Roles != RoleRead {
		t.Errorf("Authenticate = %+v, %v; want oidc:alice with read", p, err)
	}
}

// TestOIDCTenant binds OIDC principals to the tenant their JWT names,
// through the guard of a real listener: the claim's tenant is the
// request's, X-Scope-OrgID cannot take the principal elsewhere, and a
// JWT without the claim, naming a tenant not configured or an invalid
// one is refused; operators pick their tenant as an unbound token does.
func TestOIDCTenant(t *testing.T) {
	is := newIssuer(t, nil)
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	jwtWith := func(claims map[string]any) string {
		c := map[string]any{"iss": is.srv.URL, "aud": "evident", "sub": "alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "groups": "read"}
		maps.Copy(c, claims)
		return sign(t, is.key, c)
	}
	base := OIDCConfig{Issuer: is.srv.URL, Audience: "evident", RolesClaim: "groups", JWKSURL: is.srv.URL + "/keys"}
	withClaim := base
	withClaim.TenantClaim, withClaim.Tenants = "org", []string{"team-a", "team-b"}
	withDefault := withClaim
	withDefault.DefaultTenant = "team-b"
	anyTenant := base
	anyTenant.TenantClaim = "org"
	noClaim := base
	noClaim.DefaultTenant = "team-c"
	operators := withClaim
	operators.Operators = []string{"sec-ops"}

	for _, tt := range []struct {
		name   string
		cfg    OIDCConfig
		claims map[string]any
		orgID  string
		// want is the request's tenant; wantStatus the answer.
		want       string
		wantStatus int
	}{
		{"ClaimNamesTenant", withClaim, map[string]any{"org": "team-a"}, "", "team-a", http.StatusOK},
		{"HeaderOwnTenant", withClaim, map[string]any{"org": "team-a"}, "team-a", "team-a", http.StatusOK},
		{"HeaderOtherTenant", withClaim, map[string]any{"org": "team-a"}, "team-b", "", http.StatusForbidden},
		{"ClaimMissing", withClaim, nil, "", "", http.StatusForbidden},
		{"ClaimMissingPicksNothing", withClaim, nil, "team-a", "", http.StatusForbidden},
		{"ClaimMissingDefault", withDefault, nil, "", "team-b", http.StatusOK},
		{"ClaimMissingDefaultHeader", withDefault, nil, "team-a", "", http.StatusForbidden},
		{"TenantNotConfigured", withClaim, map[string]any{"org": "team-z"}, "", "", http.StatusForbidden},
		{"InvalidTenant", anyTenant, map[string]any{"org": "../team-a"}, "", "", http.StatusForbidden},
		{"ClaimNotString", withClaim, map[string]any{"org": []string{"team-a"}}, "", "", http.StatusUnauthorized},
		{"AnyValidTenant", anyTenant, map[string]any{"org": "team-z"}, "", "team-z", http.StatusOK},
		{"NoClaimConfigured", noClaim, map[string]any{"org": "team-a"}, "", "team-c", http.StatusOK},
		{"NoClaimConfiguredHeader", noClaim, nil, "team-a", "", http.StatusForbidden},
		{"NothingConfiguredIsDefault", base, nil, "", "default", http.StatusOK},
		{"NothingConfiguredHeader", base, nil, "team-a", "", http.StatusForbidden},
		{"OperatorPicks", operators, map[string]any{"groups": []string{"read", "sec-ops"}}, "team-z", "team-z", http.StatusOK},
		{"OperatorDefault", operators, map[string]any{"groups": []string{"read", "sec-ops"}}, "", "default", http.StatusOK},
		{"NotOperator", operators, map[string]any{"org": "team-a"}, "team-z", "", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.OIDC = tt.cfg
			a, err := New(t.Context(), cfg, Deps{Tokens: st})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			srv := httptest.NewServer(a.Guard("api", Required).HTTP(RoleRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = TenantFromContext(r.Context())
			})))
			defer srv.Close()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			req.Header.Set("Authorization", "Bearer "+jwtWith(tt.claims))
			if tt.orgID != "" {
				req.Header.Set(TenantHeader, tt.orgID)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || got != tt.want {
				t.Errorf("status %d (%s), tenant %q; want %d, %q", resp.StatusCode, body, got, tt.wantStatus, tt.want)
			}
		})
	}
}

// FuzzOIDCClaims sends JWTs, signed by the issuer, whose roles claim
// ("groups") and tenant claim ("org") are any JSON, through the
// authenticator: a principal is admitted in one of the configured
// tenants (the claim's, or the default for a JWT without it), or is an
// operator bound to none, and every refusal is ErrBadCredentials or
// ErrForbidden. Ed25519 keeps signing cheap enough to fuzz.
func FuzzOIDCClaims(f *testing.F) {
	is := newIssuer(f, nil)
	st, err := sqlite.Open(f.Context(), f.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.OIDC = OIDCConfig{Issuer: is.srv.URL, Audience: "evident", RolesClaim: "groups", JWKSURL: is.srv.URL + "/keys",
		SigningAlgs: []string{"EdDSA"}, Operators: []string{"sec-ops"},
		TenantClaim: "org", Tenants: []string{"team-a", "team-b"}, DefaultTenant: "team-b"}
	a, err := New(f.Context(), cfg, Deps{Tokens: st})
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: is.edKey}, (&jose.SignerOptions{}).WithHeader("kid", "k2").WithType("JWT"))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][2]string{
		{`"read"`, `"team-a"`}, {`["read","sec-ops"]`, `"team-z"`}, {`["admin"]`, ``}, {`7`, `"team-a"`},
		{`"read"`, `["team-a"]`}, {`"read"`, `null`}, {`"read"`, `"../team-a"`}, {``, `"team-b"`},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, groups, org []byte) {
		if (len(groups) > 0 && !json.Valid(groups)) || (len(org) > 0 && !json.Valid(org)) {
			return
		}
		var payload bytes.Buffer
		fmt.Fprintf(&payload, `{"iss":%q,"aud":"evident","sub":"alice","exp":%d,"iat":%d`, is.srv.URL, now.Add(time.Hour).Unix(), now.Unix())
		for name, raw := range map[string][]byte{"groups": groups, "org": org} {
			if len(raw) > 0 {
				fmt.Fprintf(&payload, ",%q:%s", name, raw)
			}
		}
		payload.WriteString("}")
		jws, err := signer.Sign(payload.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		p, err := a.Authenticate(t.Context(), "Bearer "+raw)
		if err != nil {
			if !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrForbidden) {
				t.Fatalf("Authenticate(groups %s, org %s) = %v, want ErrBadCredentials or ErrForbidden", groups, org, err)
			}
			return
		}
		var values []string
		if json.Unmarshal(groups, &values) != nil {
			var one string
			json.Unmarshal(groups, &one)
			values = []string{one}
		}
		operator := slices.Contains(values, "sec-ops")
		want := "team-b"
		if len(org) > 0 {
			json.Unmarshal(org, &want)
		}
		if operator {
			want = ""
		}
		if p.Tenant != want || (p.Tenant != "" && !slices.Contains(cfg.OIDC.Tenants, p.Tenant)) {
			t.Errorf("Authenticate(groups %s, org %s) admitted %+v in tenant %q, want %q", groups, org, p, p.Tenant, want)
		}
	})
}
