package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/evidentsec/evident/internal/store"
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
	// Operators are values of RolesClaim whose holders are not bound to
	// a tenant: they pick one per request with X-Scope-OrgID, as a token
	// made without --tenant does, and may read what spans every tenant
	// (the audit log, the metrics). Everyone else acts in one tenant.
	Operators []string `yaml:"operators"`
	// TenantClaim is the claim that names the tenant a principal acts
	// in, a string. Empty: every principal acts in DefaultTenant.
	TenantClaim string `yaml:"tenant_claim"`
	// Tenants are the values of TenantClaim that are admitted; a JWT
	// naming another tenant is refused. Empty: any valid tenant ID.
	Tenants []string `yaml:"tenants"`
	// DefaultTenant is the tenant of a principal whose JWT lacks
	// TenantClaim; empty refuses such a JWT. Without a TenantClaim every
	// principal acts in it, or in the "default" tenant when it is empty.
	DefaultTenant string `yaml:"default_tenant"`
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
	for _, t := range c.Tenants {
		if err := store.ValidateTenant(t); err != nil {
			return fmt.Errorf("%w: oidc tenants: %w", ErrConfig, err)
		}
	}
	if c.DefaultTenant != "" {
		if err := store.ValidateTenant(c.DefaultTenant); err != nil {
			return fmt.Errorf("%w: oidc default_tenant: %w", ErrConfig, err)
		}
		if len(c.Tenants) > 0 && !slices.Contains(c.Tenants, c.DefaultTenant) {
			return fmt.Errorf("%w: oidc default_tenant %q is not one of tenants %q", ErrConfig, c.DefaultTenant, c.Tenants)
		}
	}
	if c.TenantClaim == "" && len(c.Tenants) > 0 {
		return fmt.Errorf("%w: oidc tenants without a tenant_claim: say which claim names the tenant", ErrConfig)
	}
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("%w: oidc: %w", ErrConfig, err)
	}
	return nil
}

// oidcVerifier checks JWTs against the issuer's keys (jwks), held and
// fetched again when a token names a key not among them, at most once
// every jwksRefetch.
type oidcVerifier struct {
	cfg OIDCConfig
	v   *oidc.IDTokenVerifier
}

func newOIDCVerifier(ctx context.Context, cfg OIDCConfig, log *slog.Logger) (*oidcVerifier, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	if cfg.TLS != (tlsconfig.ClientConfig{}) {
		t, err := tlsconfig.NewTransport(cfg.TLS, "oidc issuer", log)
		if err != nil {
			return nil, err
		}
		client.Transport = t
	}
	vc := &oidc.Config{ClientID: cfg.Audience, SupportedSigningAlgs: cfg.SigningAlgs}
	url := cfg.JWKSURL
	if url == "" {
		// go-oidc makes the discovery request with the client of this
		// context.
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
		if err != nil {
			return nil, fmt.Errorf("oidc discovery of %s: %w", cfg.Issuer, err)
		}
		var d struct {
			JWKSURL string   `json:"jwks_uri"`
			Algs    []string `json:"id_token_signing_alg_values_supported"`
		}
		if err := p.Claims(&d); err != nil {
			return nil, fmt.Errorf("oidc discovery of %s: %w", cfg.Issuer, err)
		}
		if d.JWKSURL == "" {
			return nil, fmt.Errorf("oidc discovery of %s: no jwks_uri", cfg.Issuer)
		}
		url = d.JWKSURL
		if len(vc.SupportedSigningAlgs) == 0 {
			// The algorithms the issuer signs with that go-oidc checks;
			// none: its default, RS256.
			for _, a := range d.Algs {
				if slices.Contains(jwsAlgs, jose.SignatureAlgorithm(a)) {
					vc.SupportedSigningAlgs = append(vc.SupportedSigningAlgs, a)
				}
			}
		}
	}
	return &oidcVerifier{cfg: cfg, v: oidc.NewVerifier(cfg.Issuer, newJWKS(url, client), vc)}, nil
}

// verify checks a JWT, maps its roles claim to evident roles and binds
// it to its tenant (tenant).
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
	p := Principal{Name: "oidc:" + tok.Subject}
	operator := false
	for _, v := range values {
		operator = operator || slices.Contains(o.cfg.Operators, v)
		names := []string{v}
		if len(o.cfg.Roles) > 0 {
			names = o.cfg.Roles[v]
		}
		for _, n := range names {
			if r, err := ParseRoles([]string{n}); err == nil {
				p.Roles |= r
			}
		}
	}
	if operator {
		return p, nil
	}
	if p.Tenant, err = o.tenant(p.Name, claims); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// tenant decides the one tenant of a principal who is not an operator,
// from the JWT's claims: TenantClaim's value, which must be a tenant ID
// and one of Tenants when they are listed; DefaultTenant without the
// claim, refused (ErrForbidden) when none is set; DefaultTenant, or the
// default tenant, when no TenantClaim is configured.
func (o *oidcVerifier) tenant(name string, claims map[string]json.RawMessage) (string, error) {
	if o.cfg.TenantClaim == "" {
		return cmp.Or(o.cfg.DefaultTenant, store.DefaultTenant), nil
	}
	c, ok := claims[o.cfg.TenantClaim]
	if !ok {
		if o.cfg.DefaultTenant == "" {
			return "", fmt.Errorf("%w: %s has no claim %q naming its tenant, and no oidc default_tenant is set", ErrForbidden, name, o.cfg.TenantClaim)
		}
		return o.cfg.DefaultTenant, nil
	}
	var t string
	if err := json.Unmarshal(c, &t); err != nil {
		return "", fmt.Errorf("%w: oidc claim %q of %s is not a string", ErrBadCredentials, o.cfg.TenantClaim, name)
	}
	if err := store.ValidateTenant(t); err != nil {
		return "", fmt.Errorf("%w: oidc claim %q of %s: %w", ErrForbidden, o.cfg.TenantClaim, name, err)
	}
	if len(o.cfg.Tenants) > 0 && !slices.Contains(o.cfg.Tenants, t) {
		return "", fmt.Errorf("%w: oidc claim %q of %s names tenant %q, which is not one of the configured tenants", ErrForbidden, o.cfg.TenantClaim, name, t)
	}
	return t, nil
}
