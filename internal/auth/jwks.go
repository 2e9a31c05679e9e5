package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwks is an issuer's signing keys (oidc.KeySet): fetched from its JWKS
// URL when a token is signed by none of those held, as OpenID Connect's
// key rotation wants, but at most once every jwksRefetch. The issuer and
// audience a token must carry are public, so anyone can sign one with a
// key of their own: go-oidc's RemoteKeySet fetched the keys again for
// each such token, one request to the issuer per request to evident.
type jwks struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time     // when the last fetch began; zero before the first
	done    chan struct{} // closed when the fetch under way ends; nil when none is
	err     error         // the last fetch's error
}

// jwksRefetch is the least time between two fetches of the keys: a key
// the issuer rotated in is taken at most this late, and forged tokens
// cost the issuer one request in this long at most.
const jwksRefetch = 10 * time.Second

// maxJWKS bounds the key set's document.
const maxJWKS = 1 << 20

// jwsAlgs are the signature algorithms parsed: the verifier has checked
// the token's against the configured ones before the key set sees it.
var jwsAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

func newJWKS(url string, client *http.Client) *jwks {
	return &jwks{url: url, client: client, now: time.Now}
}

// VerifySignature returns the payload of the JWS raw if one of the
// issuer's keys verifies it.
func (k *jwks) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, jwsAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("jwt has %d signatures, want 1", len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	keys, err = k.refresh(ctx)
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, errors.New("no key of the issuer verifies the jwt's signature")
}

// verifyWith verifies jws with the key named kid, or with each key when
// kid is empty.
func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh returns the keys as a fetch begun now, or under way, gives
// them; or the keys held, with the last fetch's error, when the last
// fetch began less than jwksRefetch ago.
func (k *jwks) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	done := k.done
	if done == nil {
		if !k.fetched.IsZero() && k.now().Sub(k.fetched) < jwksRefetch {
			keys, err := k.keys, k.err
			k.mu.Unlock()
			return keys, err
		}
		done = make(chan struct{})
		k.done, k.fetched = done, k.now()
		k.mu.Unlock()
		// Not the request's context: a client that goes away must not
		// fail the fetch for the others waiting on it.
		keys, err := k.fetch(context.WithoutCancel(ctx))
		k.mu.Lock()
		if err == nil {
			k.keys = keys
		}
		k.err, k.done = err, nil
		close(done)
	}
	k.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.err
}

// fetch gets the key set. Keys of a type or algorithm go-jose does not
// know are left out, as RFC 7517 (5) asks, rather than failing the set.
func (k *jwks) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch the issuer's keys: %w", err)
	}
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the issuer's keys: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("fetch the issuer's keys from %s: %w", k.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the issuer's keys from %s: %s", k.url, resp.Status)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("the issuer's keys at %s: more than %d bytes", k.url, maxJWKS)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("the issuer's keys at %s: %w", k.url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil || !key.Valid() || key.Use == "enc" {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}
