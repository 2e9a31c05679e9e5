package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Mode is how a listener treats a request without credentials. A request
// with credentials is always checked, whatever the mode, so that the
// audit log names who made a change.
type Mode int

const (
	// Required refuses it: the mode of every listener bound beyond
	// loopback.
	Required Mode = iota
	// Loopback admits it as Anonymous with every role, when its Host
	// header names a loopback address: a web page that rebinds its own
	// name to 127.0.0.1 still sends its own name, and is refused.
	Loopback
	// Insecure admits it as Anonymous with every role: a listener beyond
	// loopback that the operator chose to leave open (--insecure).
	Insecure
)

// String names the mode in logs.
func (m Mode) String() string {
	switch m {
	case Required:
		return "required"
	case Loopback:
		return "loopback"
	case Insecure:
		return "insecure"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// IsLoopback reports whether a listener on endpoint (host:port) can be
// reached from this machine only: a host of localhost or a loopback IP
// (127.0.0.0/8, ::1). An empty host, 0.0.0.0, :: and every other name or
// address reach beyond it.
func IsLoopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		host = endpoint
	}
	return loopbackHost(host)
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// Listener names a listener and the endpoint it binds, for Modes.
type Listener struct {
	Name, Endpoint string
}

// ErrRefuse is returned by Modes when a listener beyond loopback would
// need credentials that nobody has.
var ErrRefuse = errors.New("refusing to start")

// Modes decides how each listener treats requests without credentials:
// Loopback for one bound to loopback (unless RequireOnLoopback), Required
// for every other, or Insecure instead when insecure is set (the
// --insecure flag). When a listener is Required and no credential exists
// (no live token, no OIDC), its clients could never be admitted: Modes
// returns ErrRefuse with what to do, so that evident does not start
// looking healthy while refusing everything, nor open by accident.
func (a *Authenticator) Modes(ls []Listener, insecure bool) (map[string]Mode, error) {
	modes := make(map[string]Mode, len(ls))
	var exposed []string
	var beyond, loopback bool // where the exposed listeners are
	for _, l := range ls {
		switch {
		case IsLoopback(l.Endpoint) && !a.cfg.RequireOnLoopback:
			modes[l.Name] = Loopback
		case insecure:
			modes[l.Name] = Insecure
		default:
			modes[l.Name] = Required
			exposed = append(exposed, fmt.Sprintf("%s (%s)", l.Name, l.Endpoint))
			if IsLoopback(l.Endpoint) {
				loopback = true
			} else {
				beyond = true
			}
		}
	}
	if len(exposed) > 0 && !a.HasCredentials() {
		// Listening on loopback helps only the listeners beyond it; those
		// on loopback need credentials because require_on_loopback says so.
		var instead string
		if beyond {
			instead += "\n  or listen on loopback only:  e.g. --api 127.0.0.1:8080"
		}
		if loopback {
			instead += "\n  or admit loopback clients:   serve.auth.require_on_loopback: false"
		}
		return nil, fmt.Errorf(`%w: %s would need credentials, and there is no API token or OIDC issuer to authenticate anyone.
  Create a token first:        evident token create --name <what for> --role ingest|read|admin
  or configure OIDC:           serve.auth.oidc (docs/security.md)%s
  or run without auth:         --insecure (anyone who reaches these ports can read every finding and replace them)`,
			ErrRefuse, strings.Join(exposed, ", "), instead)
	}
	return modes, nil
}

// Guard admits the requests of one listener.
type Guard struct {
	a        *Authenticator
	listener string
	mode     Mode
}

// guardResults are the values of evident_auth_requests_total's result
// label, every one admit counts.
var guardResults = []string{"ok", "anonymous", "no_credentials", "bad_credentials", "forbidden", "foreign_host", "bad_tenant"}

// Guard returns the guard of a listener, named in metrics and logs.
func (a *Authenticator) Guard(listener string, mode Mode) *Guard {
	// Every result of the listener exists from 0, so a rate of refusals is
	// 0 rather than "no data" before the first.
	for _, result := range guardResults {
		a.requests.WithLabelValues(listener, result)
	}
	return &Guard{a: a, listener: listener, mode: mode}
}

// Mode returns the guard's mode.
func (g *Guard) Mode() Mode { return g.mode }

// admit checks the credentials of a request that needs role need, and
// decides its tenant from them and orgID, its X-Scope-OrgID. host is the
// request's Host header, "" when there is none to check (gRPC).
func (g *Guard) admit(ctx context.Context, authorization, host, orgID string, need Role) (Principal, string, error) {
	p, err := g.check(ctx, authorization, host, need)
	var tenant string
	if err == nil {
		tenant, err = tenantOf(p, orgID)
	}
	result := "ok"
	switch {
	case errors.Is(err, ErrNoCredentials):
		result = "no_credentials"
	case errors.Is(err, ErrBadCredentials):
		result = "bad_credentials"
	case errors.Is(err, errForeignHost):
		result = "foreign_host"
	case errors.Is(err, ErrForbidden):
		result = "forbidden"
	case errors.Is(err, ErrBadTenant):
		result = "bad_tenant"
	case p.Name == Anonymous:
		result = "anonymous"
	}
	g.a.requests.WithLabelValues(g.listener, result).Inc()
	return p, tenant, err
}

// errForeignHost refuses an anonymous request on a loopback listener
// whose Host names something else.
var errForeignHost = fmt.Errorf("%w: anonymous requests on a loopback listener must name a loopback host", ErrForbidden)

func (g *Guard) check(ctx context.Context, authorization, host string, need Role) (Principal, error) {
	if authorization == "" {
		switch g.mode {
		case Required:
			return Principal{}, fmt.Errorf("%w: this listener needs a token (Authorization: Bearer evd_...)", ErrNoCredentials)
		case Loopback:
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if host != "" && !loopbackHost(host) {
				return Principal{}, fmt.Errorf("%w, not %q", errForeignHost, host)
			}
		}
		return Principal{Name: Anonymous, Roles: RoleIngest | RoleRead | RoleAdmin}, nil
	}
	p, err := g.a.Authenticate(ctx, authorization)
	if err != nil {
		// The client is told only that the token is invalid or expired;
		// the operator of a collector refused since it expired needs why.
		var te *tokenError
		if errors.As(err, &te) {
			g.a.refusals.refused(g.listener, te.id, te.reason)
		}
		return Principal{}, err
	}
	if !p.Roles.Allows(need) {
		return p, fmt.Errorf("%w: %s has roles %q, this needs %q", ErrForbidden, p.Name, p.Roles, need)
	}
	return p, nil
}

// HTTP wraps next so that it serves only requests whose principal has
// role need, with the principal in the request's context (FromContext)
// and the tenant it acts in (TenantFromContext: the principal's, or the
// one X-Scope-OrgID picks when the principal may pick one).
// Others get 401 with a WWW-Authenticate challenge for Bearer and Basic,
// or 403, and a JSON body {"error": "..."}.
func (g *Guard) HTTP(need Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, tenant, err := g.admitHTTP(r, need)
		if err != nil {
			refuse(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithTenant(NewContext(r.Context(), p), tenant)))
	})
}

// HTTPOptional wraps next, a route that answers everyone (a probe), so
// that it can tell a principal with role need from anyone else: the
// request of such a principal carries it in its context (FromContext),
// as with HTTP; a request without credentials, or whose principal may
// not have what need guards (a missing role, a foreign Host, another
// tenant), reaches next without one. Credentials that do not
// authenticate are refused with 401 as by HTTP: a caller that sends a
// token learns that it is wrong.
func (g *Guard) HTTPOptional(need Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, tenant, err := g.admitHTTP(r, need)
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(WithTenant(NewContext(r.Context(), p), tenant)))
		case errors.Is(err, ErrNoCredentials), errors.Is(err, ErrForbidden), errors.Is(err, ErrBadTenant):
			next.ServeHTTP(w, r)
		default:
			refuse(w, err)
		}
	})
}

// Recheck reports whether the request r, which HTTP admitted with role
// need, would still be admitted: nil, or the error that refuses it now
// (its token revoked or expired since, a JWT past its expiry). An answer
// that outlives the request's admission, the alert stream, asks before
// each write, so that a revoked token stops receiving within the reload
// interval, as every other request does. The principal's tenant cannot
// have changed: a token's is fixed, and a JWT's is in the JWT. It counts
// nothing in evident_auth_requests_total, which counts requests.
func (g *Guard) Recheck(r *http.Request, need Role) error {
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	_, err := g.check(r.Context(), r.Header.Get("Authorization"), host, need)
	return err
}

// admitHTTP admits an HTTP request (admit).
func (g *Guard) admitHTTP(r *http.Request, need Role) (Principal, string, error) {
	host := r.Host
	if host == "" {
		host = "localhost" // HTTP/1.0 without Host: not a browser
	}
	return g.admit(r.Context(), r.Header.Get("Authorization"), host, r.Header.Get(TenantHeader), need)
}

// refuse answers a request that admit refused: 400 for an X-Scope-OrgID
// that is no tenant ID, 403 when the principal may not, else 401 with a
// WWW-Authenticate challenge for Bearer and Basic; the body is
// {"error": "..."}.
func refuse(w http.ResponseWriter, err error) {
	var status int
	switch {
	case errors.Is(err, ErrBadTenant):
		status = http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	default:
		status = http.StatusUnauthorized
		w.Header().Add("WWW-Authenticate", `Bearer realm="evident"`)
		w.Header().Add("WWW-Authenticate", `Basic realm="evident"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// GRPC admits a gRPC call served through net/http (a gRPC server's
// ServeHTTP) whose principal has role need, from its Authorization header
// (the "authorization" metadata), in the tenant that the principal and
// X-Scope-OrgID decide (as Guard.HTTP): it returns r with both in its
// context (FromContext, TenantFromContext), which ServeHTTP hands on to
// the service's handlers. It refuses others with a status error:
// UNAUTHENTICATED, PERMISSION_DENIED, or INVALID_ARGUMENT for an
// X-Scope-OrgID that is no tenant ID; the caller answers them with
// listener.WriteGRPCStatus(w, status.Convert(err)), before anything reads
// the call's body.
//
// The Host (:authority) is not checked, so a Loopback guard admits an
// anonymous call whatever name it uses. That check stops a browser page
// whose name was rebound to 127.0.0.1, and such a page cannot reach a
// listener that serves HTTP/2 alone (listener.Options.GRPC): browsers
// speak HTTP/2 only over TLS, whose certificate does not name the
// rebound name.
func (g *Guard) GRPC(need Role, r *http.Request) (*http.Request, error) {
	p, tenant, err := g.admit(r.Context(), r.Header.Get("Authorization"), "", r.Header.Get(TenantHeader), need)
	switch {
	case errors.Is(err, ErrBadTenant):
		return r, status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrForbidden):
		return r, status.Error(codes.PermissionDenied, err.Error())
	case err != nil:
		return r, status.Error(codes.Unauthenticated, err.Error())
	}
	return r.WithContext(WithTenant(NewContext(r.Context(), p), tenant)), nil
}
