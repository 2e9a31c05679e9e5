package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// tokenPrefix starts every API token, so that secret scanners and people
// can tell one apart: evd_<id>_<secret>.
const tokenPrefix = "evd_"

// Sizes of the random parts of a token: the ID is public (it names the
// token in lists and in the audit log), the secret is 256 bits.
const (
	idBytes     = 8
	secretBytes = 32
)

// secretEncoding writes secrets in lowercase base32 without padding: no
// '_', so a token splits unambiguously, and nothing a shell or a URL
// would mangle.
var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken makes a token with the given name, roles and lifetime (0:
// never expires). It returns the token to hand to its user, shown once,
// and what the store keeps: only the SHA-256 of the secret. Tokens are
// 256-bit random values, so a plain SHA-256 is enough against guessing:
// a slow password hash protects low-entropy secrets, which these are not.
func NewToken(name string, roles Role, now time.Time, ttl time.Duration) (string, store.Token, error) {
	token, err := GenerateToken()
	if err != nil {
		return "", store.Token{}, fmt.Errorf("token %q: %w", name, err)
	}
	t, err := TokenOf(token, name, roles, now, ttl)
	return token, t, err
}

// GenerateToken returns a new random API token, evd_<id>_<secret>, that
// nothing stores yet: TokenOf makes what the store keeps of it. It is
// for tokens provisioned before evident runs (a Kubernetes Secret).
func GenerateToken() (string, error) {
	buf := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return tokenPrefix + hex.EncodeToString(buf[:idBytes]) + "_" + strings.ToLower(secretEncoding.EncodeToString(buf[idBytes:])), nil
}

// TokenOf returns what the store keeps of token, made by GenerateToken
// (here or by another evident), with the given name, roles and lifetime
// (0: never expires). A token of another shape than GenerateToken's is
// refused, so that a secret a person chose never becomes a credential;
// the error never contains the token.
func TokenOf(token, name string, roles Role, now time.Time, ttl time.Duration) (store.Token, error) {
	if roles == 0 {
		return store.Token{}, fmt.Errorf("token %q: no role", name)
	}
	if ttl < 0 {
		return store.Token{}, fmt.Errorf("token %q: negative lifetime %v", name, ttl)
	}
	id, secret, ok := parseToken(token)
	if _, err := hex.DecodeString(id); !ok || err != nil {
		return store.Token{}, fmt.Errorf("token %q: not an evident token (evd_, 16 hex digits, _, the secret)", name)
	}
	if raw, err := secretEncoding.DecodeString(strings.ToUpper(secret)); err != nil || len(raw) != secretBytes || secret != strings.ToLower(secret) {
		return store.Token{}, fmt.Errorf("token %q: the secret is not %d random bytes in lowercase base32 (evident token generate makes one)", name, secretBytes)
	}
	h := sha256.Sum256([]byte(secret))
	t := store.Token{ID: id, Name: name, Roles: roles.Strings(), SecretHash: h[:], Created: now.UTC()}
	if ttl > 0 {
		t.Expires = t.Created.Add(ttl)
	}
	return t, nil
}

// parseToken splits an API token into its ID and secret; ok is false for
// anything else (an OIDC JWT, garbage).
func parseToken(s string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 2*idBytes || secret == "" {
		return "", "", false
	}
	return id, secret, true
}
