package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fixture is an Authenticator over a real store holding three tokens: an
// admin, a reader, and an ingest token that expires at t0+1h.
type fixture struct {
	st                    *sqlite.Store
	a                     *Authenticator
	now                   time.Time
	admin, reader, ingest string
	ingestID              string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, now: t0}
	mk := func(name string, roles Role, ttl time.Duration) (string, string) {
		secret, tok, err := NewToken(name, roles, t0, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateToken(t.Context(), tok, "test"); err != nil {
			t.Fatal(err)
		}
		return secret, tok.ID
	}
	f.admin, _ = mk("ops", RoleAdmin, 0)
	f.reader, _ = mk("dashboard", RoleRead, 0)
	f.ingest, f.ingestID = mk("collector", RoleIngest, time.Hour)
	f.a, err = New(t.Context(), DefaultConfig(), Deps{Tokens: st, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestNewToken(t *testing.T) {
	secret, tok, err := NewToken("ci", RoleAdmin|RoleRead, t0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^evd_[0-9a-f]{16}_[a-z2-7]{52}$`).MatchString(secret) {
		t.Errorf("token %q does not have the form evd_<16 hex>_<52 base32>", secret)
	}
	id, _, ok := parseToken(secret)
	if !ok || id != tok.ID {
		t.Errorf("parseToken(%q) = %q, %v; want %q", secret, id, ok, tok.ID)
	}
	if strings.Contains(string(tok.SecretHash), secret[len(secret)-52:]) || len(tok.SecretHash) != 32 {
		t.Errorf("stored hash %x is not a SHA-256", tok.SecretHash)
	}
	if got := strings.Join(tok.Roles, ","); got != "read,admin" || !tok.Expires.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("token roles %q expires %v, want read,admin and %v", got, tok.Expires, t0.Add(24*time.Hour))
	}
	if _, _, err := NewToken("none", 0, t0, 0); err == nil {
		t.Error("NewToken without a role succeeded")
	}
	other, _, _ := NewToken("ci", RoleAdmin, t0, 0)
	if other == secret {
		t.Error("two tokens are equal")
	}
}

func TestTokenOf(t *testing.T) {
	token, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	// A provisioned token, once stored, authenticates like a made one.
	f := newFixture(t)
	tok, err := TokenOf(token, "provisioned", RoleIngest, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateToken(t.Context(), tok, "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := f.a.Authenticate(t.Context(), "Bearer "+token)
	if err != nil || p.Roles != RoleIngest {
		t.Errorf("Authenticate(provisioned token) = %+v, %v; want the ingest role", p, err)
	}

	secret := token[len("evd_")+17:]
	for _, tc := range []struct{ name, token string }{
		{"empty", ""},
		{"no prefix", strings.TrimPrefix(token, "evd_")},
		{"short id", "evd_0123_" + secret},
		{"id not hex", "evd_0123456789abcdeg_" + secret},
		{"chosen secret", "evd_0123456789abcdef_hunter2"},
		{"secret one character short", token[:len(token)-1]},
		{"secret in uppercase", "evd_0123456789abcdef_" + strings.ToUpper(secret)},
		{"secret not base32", "evd_0123456789abcdef_" + secret[:51] + "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TokenOf(tc.token, "bad", RoleRead, t0, 0)
			if err == nil {
				t.Fatalf("TokenOf(%q) succeeded", tc.token)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error %q shows the token", err)
			}
		})
	}
	if _, err := TokenOf(token, "none", 0, t0, 0); err == nil {
		t.Error("TokenOf without a role succeeded")
	}
}

// otherLast changes the last character of a token's secret.
func otherLast(token string) string {
	last := "a"
	if strings.HasSuffix(token, last) {
		last = "b"
	}
	return token[:len(token)-1] + last
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name          string
		authorization string
		after         time.Duration // clock moved forward
		wantName      string
		wantRoles     Role
		wantErr       error
	}{
		{"Bearer", "Bearer " + f.admin, 0, "token:", RoleAdmin, nil},
		{"BearerLowercase", "bearer " + f.reader, 0, "token:", RoleRead, nil},
		{"BasicPassword", basic("otel", f.ingest), 0, "token:", RoleIngest, nil},
		{"BasicUserOnly", basic(f.reader, ""), 0, "token:", RoleRead, nil},
		{"Expired", "Bearer " + f.ingest, time.Hour, "", 0, ErrBadCredentials},
		{"WrongSecret", "Bearer " + otherLast(f.admin), 0, "", 0, ErrBadCredentials},
		{"UnknownID", "Bearer evd_0123456789abcdef_" + strings.Repeat("a", 52), 0, "", 0, ErrBadCredentials},
		{"NotAToken", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", 0, "", 0, ErrBadCredentials},
		{"BadBase64", "Basic !!!", 0, "", 0, ErrBadCredentials},
		{"OtherScheme", "Digest " + f.admin, 0, "", 0, ErrBadCredentials},
		{"Empty", "", 0, "", 0, ErrNoCredentials},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.now = t0.Add(tt.after)
			p, err := f.a.Authenticate(t.Context(), tt.authorization)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate(%q) = %v, want %v", tt.authorization, err, tt.wantErr)
			}
			if !strings.HasPrefix(p.Name, tt.wantName) || p.Roles != tt.wantRoles {
				t.Errorf("principal = %+v, want name %q... roles %v", p, tt.wantName, tt.wantRoles)
			}
		})
	}
}

func TestRevokeTakesEffectOnReload(t *testing.T) {
	f := newFixture(t)
	if _, err := f.a.Authenticate(t.Context(), "Bearer "+f.ingest); err != nil {
		t.Fatal(err)
	}
	if err := f.st.RevokeToken(t.Context(), f.ingestID, t0, "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.Authenticate(t.Context(), "Bearer "+f.ingest); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("revoked token after reload: %v, want ErrBadCredentials", err)
	}
}

func TestHasCredentials(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := t0
	a, err := New(t.Context(), DefaultConfig(), Deps{Tokens: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil || a.HasCredentials() {
		t.Errorf("empty store: HasCredentials = %v (%v), want false", a.HasCredentials(), err)
	}
	_, tok, _ := NewToken("short", RoleRead, t0, time.Minute)
	if err := st.CreateToken(t.Context(), tok, "test"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil || !a.HasCredentials() {
		t.Errorf("one live token: HasCredentials = %v (%v), want true", a.HasCredentials(), err)
	}
	now = t0.Add(time.Hour)
	if a.HasCredentials() {
		t.Error("only an expired token: HasCredentials = true, want false")
	}
}

func TestStartShutdown(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if err := f.a.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown without Start: %v", err)
	}
	for range 2 {
		if err := f.a.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	for range 2 {
		if err := f.a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	// A store that cannot be read fails Start.
	f.st.Close()
	a, err := New(ctx, DefaultConfig(), Deps{Tokens: f.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err == nil {
		t.Error("Start over a closed store succeeded")
	}
}

func TestIsLoopback(t *testing.T) {
	for ep, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:80": true, "localhost:4317": true, "LOCALHOST:1": true,
		"[::1]:4318": true, "0.0.0.0:8080": false, "[::]:8080": false, ":8080": false,
		"10.0.0.1:8080": false, "evident.internal:8080": false, "[::ffff:127.0.0.1]:1": true,
	} {
		if got := IsLoopback(ep); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", ep, got, want)
		}
	}
}

// TestGuardHTTP serves a guarded handler on a real listener.
func TestGuardHTTP(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name          string
		mode          Mode
		need          Role
		authorization string
		host          string
		wantStatus    int
		wantPrincipal string
	}{
		{"RequiredNoToken", Required, RoleRead, "", "", http.StatusUnauthorized, ""},
		{"RequiredReader", Required, RoleRead, "Bearer " + f.reader, "", http.StatusOK, "token:"},
		{"RequiredReaderOnAdmin", Required, RoleAdmin, "Bearer " + f.reader, "", http.StatusForbidden, ""},
		{"RequiredAdminReads", Required, RoleRead, "Bearer " + f.admin, "", http.StatusOK, "token:"},
		{"RequiredIngestReads", Required, RoleRead, basic("x", f.ingest), "", http.StatusForbidden, ""},
		{"RequiredBadToken", Required, RoleRead, "Bearer evd_nope", "", http.StatusUnauthorized, ""},
		{"LoopbackAnonymous", Loopback, RoleAdmin, "", "", http.StatusOK, Anonymous},
		{"LoopbackLocalhostName", Loopback, RoleAdmin, "", "localhost:8080", http.StatusOK, Anonymous},
		{"LoopbackRebound", Loopback, RoleAdmin, "", "evil.example:8080", http.StatusForbidden, ""},
		{"LoopbackTokenChecked", Loopback, RoleAdmin, "Bearer " + f.reader, "", http.StatusForbidden, ""},
		{"LoopbackBadToken", Loopback, RoleRead, "Bearer evd_nope", "", http.StatusUnauthorized, ""},
		{"InsecureAnyHost", Insecure, RoleAdmin, "", "evident.example:8080", http.StatusOK, Anonymous},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := f.a.Guard("api", tt.mode).HTTP(tt.need, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, _ := FromContext(r.Context())
				got = p.Name
			}))
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if !strings.HasPrefix(got, tt.wantPrincipal) || (tt.wantPrincipal == "") != (got == "") {
				t.Errorf("handler saw principal %q, want %q...", got, tt.wantPrincipal)
			}
			if ch := resp.Header.Values("WWW-Authenticate"); (resp.StatusCode == http.StatusUnauthorized) != (len(ch) == 2) {
				t.Errorf("WWW-Authenticate %q with status %d", ch, resp.StatusCode)
			}
		})
	}
}

func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f)
	for _, s := range []string{"", "Bearer " + fx.admin, basic("u", fx.reader), "Basic", "Bearer evd__", "Bearer evd_0123456789abcdef_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authorization string) {
		p, err := fx.a.Authenticate(context.Background(), authorization)
		if err == nil && p.Roles == 0 {
			t.Errorf("Authenticate(%q) admitted %+v without roles", authorization, p)
		}
	})
}
