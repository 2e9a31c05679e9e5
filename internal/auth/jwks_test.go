package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/evidentsec/evident/internal/store/sqlite"
)

// TestOIDCForgedTokens: tokens with the issuer's iss and aud (both
// public) signed by a key of the sender's own, naming one of the
// issuer's key IDs or another, are refused without fetching the issuer's
// keys for each: go-oidc's RemoteKeySet fetched them once a request.
func TestOIDCForgedTokens(t *testing.T) {
	is := newIssuer(t, nil)
	var fetches atomic.Int64
	counted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		resp, err := http.Get(is.srv.URL + "/keys")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		var set json.RawMessage
		json.NewDecoder(resp.Body).Decode(&set)
		w.Write(set)
	}))
	defer counted.Close()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := DefaultConfig()
	cfg.OIDC = OIDCConfig{Issuer: is.srv.URL, Audience: "evident", RolesClaim: "groups", JWKSURL: counted.URL}
	a, err := New(t.Context(), cfg, Deps{Tokens: st})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": is.srv.URL, "aud": "evident", "sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()}
	if _, err := a.Authenticate(t.Context(), "Bearer "+sign(t, is.key, claims)); err != nil {
		t.Fatalf("a token of the issuer: %v", err)
	}
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := []string{sign(t, attacker, claims), signKID(t, attacker, "k9", claims)}
	for i := range 50 {
		if _, err := a.Authenticate(t.Context(), "Bearer "+forged[i%2]); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("forged token %d: %v, want ErrBadCredentials", i, err)
		}
	}
	// The first token fetched the keys; the forged ones, within
	// jwksRefetch of it, fetch nothing.
	if n := fetches.Load(); n != 1 {
		t.Errorf("the issuer's keys were fetched %d times for 1 token and 50 forged ones, want once", n)
	}
}

// signKID is sign with key ID kid.
func signKID(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.Sign(mustJSON(t, claims))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJWKSRotation: a key the issuer rotates in is taken once the keys
// are fetched again, which happens for a token no held key verifies, at
// most once every jwksRefetch; concurrent tokens share one fetch.
func TestJWKSRotation(t *testing.T) {
	oldKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	served := []jose.JSONWebKey{{Key: &oldKey.PublicKey, KeyID: "old", Algorithm: "RS256", Use: "sig"}}
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: served})
	}))
	defer srv.Close()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	k := newJWKS(srv.URL, srv.Client())
	k.now = func() time.Time { return now }
	claims := map[string]any{"sub": "alice"}
	verify := func(key *rsa.PrivateKey, kid string) error {
		_, err := k.VerifySignature(t.Context(), signKID(t, key, kid, claims))
		return err
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := verify(oldKey, "old"); err != nil {
				t.Errorf("a token of the key served: %v", err)
			}
		})
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("8 tokens at once fetched the keys %d times, want once", n)
	}
	mu.Lock()
	served = append(served, jose.JSONWebKey{Key: &newKey.PublicKey, KeyID: "new", Algorithm: "RS256", Use: "sig"})
	mu.Unlock()
	if err := verify(newKey, "new"); err == nil {
		t.Error("a token of the new key verified within jwksRefetch of the last fetch, which did not hold it")
	}
	now = now.Add(jwksRefetch)
	if err := verify(newKey, "new"); err != nil {
		t.Errorf("a token of the new key, jwksRefetch later: %v", err)
	}
	if err := verify(oldKey, "old"); err != nil {
		t.Errorf("a token of the old key, still served: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("the keys were fetched %d times, want twice", n)
	}
}
