// Package auth authenticates the requests of evident serve's listeners
// and says what they may do (docs/security.md).
//
// Credentials are API tokens (evd_<id>_<secret>, made by `evident token
// create`, kept in the store as the SHA-256 of the secret) or, when
// configured, OIDC ID or access tokens (JWTs checked against the issuer's
// keys). A client sends either as "Authorization: Bearer <token>", or as
// the password of HTTP basic auth ("Authorization: Basic ...", the user
// name is ignored), which is what the OpenTelemetry Collector's
// bearertokenauth and basicauth extensions, Grafana Alloy and the
// Pyroscope SDKs send.
//
// An Authenticator holds the tokens in memory and re-reads them from the
// store every ReloadInterval, so that a token made or revoked by the CLI,
// beside the running server, takes effect without a restart, and so that
// a request with an unknown token costs no database read. A Guard applies
// it to one listener, as HTTP middleware or, for a gRPC server served
// through net/http, as a check its http.Handler makes (Guard.GRPC).
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/store"
)

// Errors of Authenticate and of the guards; errors.Is tells them apart.
var (
	// ErrNoCredentials is a request without an Authorization header on a
	// listener that needs one.
	ErrNoCredentials = errors.New("no credentials")
	// ErrBadCredentials is a malformed, unknown, expired or revoked
	// token, or a JWT that does not verify.
	ErrBadCredentials = errors.New("invalid credentials")
	// ErrForbidden is a principal without the role a request needs.
	ErrForbidden = errors.New("forbidden")
	// ErrBadTenant is an X-Scope-OrgID that is no tenant ID at all
	// (store.ValidateTenant): the request is malformed, whoever sent it.
	ErrBadTenant = errors.New("invalid tenant")
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("invalid auth config")
)

// Config configures an Authenticator.
type Config struct {
	// ReloadInterval is how often tokens are re-read from the store: a
	// token made or revoked with `evident token` takes effect within it.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// RequireOnLoopback asks for credentials on loopback listeners too,
	// for a host whose other users or local reverse proxy must not get
	// in unauthenticated.
	RequireOnLoopback bool `yaml:"require_on_loopback"`
	// OIDC, when its issuer is set, also admits JWTs of that issuer.
	OIDC OIDCConfig `yaml:"oidc"`
}

// DefaultConfig reloads tokens every 5 seconds, without OIDC.
func DefaultConfig() Config {
	return Config{ReloadInterval: 5 * time.Second}
}

// Validate reports the first problem of c.
func (c Config) Validate() error {
	if c.ReloadInterval <= 0 {
		return fmt.Errorf("%w: reload_interval %v, want > 0", ErrConfig, c.ReloadInterval)
	}
	return c.OIDC.Validate()
}

// Tokens is where an Authenticator reads the tokens; store.Store
// satisfies it.
type Tokens interface {
	Tokens(ctx context.Context) ([]store.Token, error)
}

// Deps are what an Authenticator works with.
type Deps struct {
	// Tokens is required.
	Tokens Tokens
	// Logger defaults to discarding; Registerer, when set, gets the
	// metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// tokenEntry is a usable token as the Authenticator keeps it.
type tokenEntry struct {
	hash    [sha256.Size]byte
	roles   Role
	name    string
	tenant  string
	expires time.Time
}

// Authenticator checks credentials. It is a pipeline.Component whose
// Start loads the tokens and starts their reloading; it is safe for
// concurrent use.
type Authenticator struct {
	cfg      Config
	deps     Deps
	oidc     *oidcVerifier
	tokens   atomic.Pointer[map[string]tokenEntry]
	requests *prometheus.CounterVec
	refusals *refusalLog

	loop pipeline.Loop
}

var _ pipeline.Component = (*Authenticator)(nil)

// New returns an Authenticator; Start loads the tokens. With OIDC
// configured, New fetches the issuer's discovery document unless the
// JWKS URL is given.
func New(ctx context.Context, cfg Config, deps Deps) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tokens == nil {
		return nil, fmt.Errorf("%w: no token source", ErrConfig)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	a := &Authenticator{cfg: cfg, deps: deps, refusals: newRefusalLog(deps.Logger, deps.Now)}
	a.tokens.Store(&map[string]tokenEntry{})
	if cfg.OIDC.Issuer != "" {
		v, err := newOIDCVerifier(ctx, cfg.OIDC, deps.Logger)
		if err != nil {
			return nil, err
		}
		a.oidc = v
	}
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_auth_requests_total",
		Help: "Requests checked by a listener's guard, by result (ok, anonymous, no_credentials, bad_credentials, forbidden, foreign_host, bad_tenant).",
	}, []string{"listener", "result"})
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(a.requests); err != nil {
			return nil, fmt.Errorf("register auth metrics: %w", err)
		}
	}
	return a, nil
}

// Start loads the tokens, failing if the store cannot be read, and
// re-reads them every ReloadInterval until Shutdown. A second Start does
// nothing.
func (a *Authenticator) Start(ctx context.Context) error {
	return a.loop.Start(ctx, func() error { return a.Reload(ctx) }, a.reloadEvery)
}

// reloadEvery re-reads the tokens every ReloadInterval until ctx ends.
func (a *Authenticator) reloadEvery(ctx context.Context) {
	t := time.NewTicker(a.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Reload(ctx); err != nil && ctx.Err() == nil {
				a.deps.Logger.Error("reload tokens; the previous ones stay in use", "err", err)
			}
		}
	}
}

// Shutdown stops the reloading; safe twice and without Start.
func (a *Authenticator) Shutdown(ctx context.Context) error { return a.loop.Stop(ctx) }

// Reload re-reads the tokens from the store; revoked ones and those with
// a role evident does not know are left out.
func (a *Authenticator) Reload(ctx context.Context) error {
	ts, err := a.deps.Tokens.Tokens(ctx)
	if err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	m := make(map[string]tokenEntry, len(ts))
	for _, t := range ts {
		if !t.Revoked.IsZero() || len(t.SecretHash) != sha256.Size {
			continue
		}
		roles, err := ParseRoles(t.Roles)
		if err != nil {
			a.deps.Logger.Warn("token skipped", "id", t.ID, "err", err)
			continue
		}
		e := tokenEntry{roles: roles, name: t.Name, tenant: t.Tenant, expires: t.Expires}
		copy(e.hash[:], t.SecretHash)
		m[t.ID] = e
	}
	a.tokens.Store(&m)
	return nil
}

// HasCredentials reports whether any request could authenticate: a
// token that is neither revoked nor expired, or OIDC.
func (a *Authenticator) HasCredentials() bool {
	if a.oidc != nil {
		return true
	}
	now := a.deps.Now()
	for _, e := range *a.tokens.Load() {
		if e.expires.IsZero() || now.Before(e.expires) {
			return true
		}
	}
	return false
}

// Authenticate checks the value of an Authorization header: "Bearer
// <token>" or "Basic <base64 of user:token>".
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	if authorization == "" {
		return Principal{}, ErrNoCredentials
	}
	scheme, cred, _ := strings.Cut(authorization, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: basic credentials are not base64", ErrBadCredentials)
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		// The token is the password; a client that has only one field
		// may put it in the user name.
		if cred = pass; cred == "" {
			cred = user
		}
	default:
		return Principal{}, fmt.Errorf("%w: %s, want Bearer or Basic", ErrBadCredentials, describeScheme(scheme))
	}
	if id, secret, ok := parseToken(cred); ok {
		return a.checkToken(id, secret)
	}
	if a.oidc != nil && strings.EqualFold(scheme, "Bearer") {
		return a.oidc.verify(ctx, cred)
	}
	return Principal{}, fmt.Errorf("%w: not an evident token (evd_...)", ErrBadCredentials)
}

// describeScheme names an authorization scheme evident does not take
// for an error, which the client gets and often logs: only a word with
// the shape of a scheme (Token, Digest, AWS4-HMAC-SHA256) is quoted. A
// header that is the credential alone, an API token or a JWT sent
// without "Bearer ", would otherwise come back whole in the error.
func describeScheme(scheme string) string {
	word := len(scheme) > 0 && len(scheme) <= 20
	for i := 0; word && i < len(scheme); i++ {
		c := scheme[i]
		word = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
	}
	if word {
		return fmt.Sprintf("authorization scheme %q", scheme)
	}
	return "the Authorization header does not start with a scheme (is it the credential alone?)"
}

// checkToken checks an API token against the loaded ones. Every refusal
// is the same tokenError to the client, so that it cannot tell an ID that
// exists from one that does not; the reason is for the server's log.
func (a *Authenticator) checkToken(id, secret string) (Principal, error) {
	e, known := (*a.tokens.Load())[id]
	// An unknown ID's secret is hashed and compared too (with the zero
	// hash of e), so that its refusal takes as long as a wrong secret's.
	h := sha256.Sum256([]byte(secret))
	match := subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1
	switch {
	case !known:
		return Principal{}, &tokenError{id: id, reason: "unknown or revoked"}
	case !match:
		return Principal{}, &tokenError{id: id, reason: "wrong secret"}
	}
	if !e.expires.IsZero() && !a.deps.Now().Before(e.expires) {
		return Principal{}, &tokenError{id: id, reason: "expired at " + e.expires.Format(time.RFC3339)}
	}
	return Principal{Name: fmt.Sprintf("token:%s (%s)", id, e.name), Roles: e.roles, Tenant: e.tenant}, nil
}

// tokenError refuses an API token of the right shape. Its message, which
// the client gets, is the same whatever the reason, as GitHub's and
// Grafana's are: "wrong secret" would confirm that the ID exists, and
// "expired" that it did. The guard logs the ID and the reason, never the
// secret.
type tokenError struct {
	id, reason string
}

func (e *tokenError) Error() string { return ErrBadCredentials.Error() + ": invalid or expired token" }

// Unwrap makes a tokenError an ErrBadCredentials for errors.Is.
func (e *tokenError) Unwrap() error { return ErrBadCredentials }
