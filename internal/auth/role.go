package auth

import (
	"context"
	"fmt"
	"strings"
)

// Role is a set of permissions: a single role, or several or-ed together.
type Role uint8

// The roles. Admin allows everything; ingest and read are independent,
// so a Collector's token cannot read findings and a dashboard's cannot
// send telemetry.
const (
	// RoleIngest sends telemetry to the receivers.
	RoleIngest Role = 1 << iota
	// RoleRead reads the API: findings, services, exports, alerts, metrics.
	RoleRead
	// RoleAdmin uploads findings, reads the audit log, and does what the
	// other roles do.
	RoleAdmin
)

var roleNames = []struct {
	role Role
	name string
}{{RoleIngest, "ingest"}, {RoleRead, "read"}, {RoleAdmin, "admin"}}

// ParseRoles parses role names ("ingest", "read", "admin") into a set.
func ParseRoles(names []string) (Role, error) {
	var r Role
	for _, n := range names {
		found := false
		for _, rn := range roleNames {
			if strings.EqualFold(strings.TrimSpace(n), rn.name) {
				r, found = r|rn.role, true
			}
		}
		if !found {
			return 0, fmt.Errorf("role %q: want ingest, read or admin", n)
		}
	}
	return r, nil
}

// Strings returns the names of the roles in r.
func (r Role) Strings() []string {
	var out []string
	for _, rn := range roleNames {
		if r&rn.role != 0 {
			out = append(out, rn.name)
		}
	}
	return out
}

// String is the comma-separated names of the roles.
func (r Role) String() string { return strings.Join(r.Strings(), ",") }

// Allows reports whether r grants need.
func (r Role) Allows(need Role) bool { return r&RoleAdmin != 0 || r&need == need }

// Principal is who made a request.
type Principal struct {
	// Name identifies the principal in the audit log and in logs:
	// "token:<id> (<name>)", "oidc:<subject>", or Anonymous.
	Name string
	// Roles are what the principal may do.
	Roles Role
	// Tenant is the only tenant the principal may act in; empty: any,
	// picked per request with X-Scope-OrgID (TenantHeader).
	Tenant string
}

// Anonymous is the name of the principal of a request without
// credentials on a loopback listener that does not ask for them.
const Anonymous = "anonymous (loopback)"

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of a request that a guard admitted.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
