package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/evidentsec/evident/internal/tlsconfig"
)

// OIDCConfig admits JWTs of an OpenID Connect issuer, for people and
// services that already have an identity there.
type OIDCConfig struct {
	// Issuer is the issuer URL; the JWT's iss must equal it. Empty turns
	// OIDC off.
	Issuer string `yaml:"issuer"`
	// Audience must be in the JWT's aud (the client ID evident is
	// registered with).
	Audience string `yaml:"audience"`
	// JWKSURL is where the issuer's signing keys are; empty discovers it
	// from the issuer's /.well-known/openid-configuration at start.
	JWKSURL string `yaml:"jwks_url"`
	// RolesClaim is the claim that holds the principal's groups or roles,
	// a string or a list of strings.
	RolesClaim string `yaml:"roles_claim"`
	// Roles maps values of RolesClaim to evident roles; values without an
	// entry grant nothing. Empty: the values are evident role names.
	Roles map[string][]string `yaml:"roles"`
	// SigningAlgs are the accepted signature algorithms; empty: those the
	// discovery document lists, or RS256 with JWKSURL.
	SigningAlgs []string `yaml:"signing_algs"`
	// TLS verifies the issuer and its JWKS URL (a private CA, a client
	// certificate); zero: the system's roots.
	TLS tlsconfig.ClientConfig `yaml:"tls"`
}

// Validate reports the first problem of c; an empty issuer is valid (off).
func (c OIDCConfig) Validate() error {
	if c.Issuer == "" {
		return nil
	}
	for name, u := range map[string]string{"issuer": c.Issuer, "jwks_url": c.JWKSURL} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return fmt.Errorf("%w: oidc %s %q: want an http(s) URL", ErrConfig, name, u)
		}
	}
	if c.Audience == "" {
		return fmt.Errorf("%w: oidc audience is empty: without it a token issued to any client of %s would do", ErrConfig, c.Issuer)
	}
	if c.RolesClaim == "" {
		return fmt.Errorf("%w: oidc roles_claim is empty: say which claim holds the roles", ErrConfig)
	}
	for value, roles := range c.Roles {
		if _, err := ParseRoles(roles); err != nil {
			return fmt.Errorf("%w: oidc roles %q: %w", ErrConfig, value, err)
		}
	}
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("%w: oidc: %w", ErrConfig, err)
	}
	return nil
}

// oidcVerifier checks JWTs against the issuer's keys, which go-oidc
// caches and re-fetches when a token names a key it has not seen.
type oidcVerifier struct {
	cfg OIDCConfig
	v   *oidc.IDTokenVerifier
}

func newOIDCVerifier(ctx context.Context, cfg OIDCConfig, log *slog.Logger) (*oidcVerifier, error) {
	if cfg.TLS != (tlsconfig.ClientConfig{}) {
		t, err := tlsconfig.NewTransport(cfg.TLS, "oidc issuer", log)
		if err != nil {
			return nil, err
		}
		// go-oidc makes its requests, discovery and key fetches, with the
		// client of this context.
		ctx = oidc.ClientContext(ctx, &http.Client{Transport: t})
	}
	vc := &oidc.Config{ClientID: cfg.Audience, SupportedSigningAlgs: cfg.SigningAlgs}
	if cfg.JWKSURL != "" {
		return &oidcVerifier{cfg: cfg, v: oidc.NewVerifier(cfg.Issuer, oidc.NewRemoteKeySet(ctx, cfg.JWKSURL), vc)}, nil
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery of %s: %w", cfg.Issuer, err)
	}
	return &oidcVerifier{cfg: cfg, v: p.VerifierContext(context.WithoutCancel(ctx), vc)}, nil
}

// verify checks a JWT and maps its roles claim to evident roles.
func (o *oidcVerifier) verify(ctx context.Context, raw string) (Principal, error) {
	tok, err := o.v.Verify(ctx, raw)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: oidc: %w", ErrBadCredentials, err)
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: oidc claims: %w", ErrBadCredentials, err)
	}
	var values []string
	if c, ok := claims[o.cfg.RolesClaim]; ok {
		var one string
		if json.Unmarshal(c, &one) == nil {
			values = []string{one}
		} else if err := json.Unmarshal(c, &values); err != nil {
			return Principal{}, fmt.Errorf("%w: oidc claim %q is neither a string nor a list of strings", ErrBadCredentials, o.cfg.RolesClaim)
		}
	}
	var roles Role
	for _, v := range values {
		names := []string{v}
		if len(o.cfg.Roles) > 0 {
			names = o.cfg.Roles[v]
		}
		for _, n := range names {
			if r, err := ParseRoles([]string{n}); err == nil {
				roles |= r
			}
		}
	}
	return Principal{Name: "oidc:" + tok.Subject, Roles: roles}, nil
}
