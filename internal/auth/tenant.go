package auth

import (
	"context"
	"fmt"

	"github.com/evidentsec/evident/internal/store"
)

// TenantHeader is the header that picks the tenant of a request, as
// Grafana Tempo, Loki, Mimir and Pyroscope name it; gRPC clients send it
// as the metadata key x-scope-orgid.
const TenantHeader = "X-Scope-OrgID"

// TenantParam is the query parameter that stands for TenantHeader in a
// link to the API or the UI, which a browser follows without headers:
// the API and the UI take it as the header, under the same rules.
const TenantParam = "tenant"

// tenantOf decides the tenant of a request by principal p that sent
// header (its X-Scope-OrgID, "" without one): the token's tenant for a
// token bound to one, which a header naming another cannot change
// (ErrForbidden); else the header's; else store.DefaultTenant. A header
// that is no tenant ID is ErrBadTenant.
func tenantOf(p Principal, header string) (string, error) {
	if header == "" {
		if p.Tenant != "" {
			return p.Tenant, nil
		}
		return store.DefaultTenant, nil
	}
	if err := store.ValidateTenant(header); err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrBadTenant, TenantHeader, err)
	}
	if p.Tenant != "" && header != p.Tenant {
		return "", fmt.Errorf("%w: %s acts in tenant %q only, not %q", ErrForbidden, p.Name, p.Tenant, header)
	}
	return header, nil
}

type tenantKey struct{}

// WithTenant returns ctx carrying tenant, the tenant a request acts in.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFromContext returns the tenant a guard decided for the request
// of ctx; store.DefaultTenant when none did (a listener without a guard).
func TenantFromContext(ctx context.Context) string {
	if t, ok := ctx.Value(tenantKey{}).(string); ok {
		return t
	}
	return store.DefaultTenant
}
