// Package httpapi serves evident's HTTP API (docs/api.md): the runtime
// model (services, graph, inventory), the prioritised findings with their
// evidence, exports (OpenVEX, SARIF, CycloneDX), alerts with a
// Server-Sent Events stream, uploads of scanner findings, the
// vulnerability database's status, Prometheus metrics and health checks.
//
// It is the only package where errors become HTTP status codes.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/vulndb"
	"github.com/evidentsec/evident/internal/waf"
)

// State is the live assessment the API reads and the findings it
// replaces. Implementations are safe for concurrent use; Result returns a
// value the caller must not modify. SetFindings stores the update with
// its audit record (store.Store.PutFindings) and re-assesses.
type State interface {
	Result() *report.Result
	SetFindings(ctx context.Context, u store.FindingsUpdate) error
}

// Audit is the audit log the API shows to admins; store.Store satisfies
// it.
type Audit interface {
	AuditLog(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error)
}

// Alerts gives the API the alerts fired so far and a live feed of new
// ones.
type Alerts interface {
	// Recent returns the stored alerts that match q, newest first (by
	// time, then by ID), as store.Store.Alerts does.
	Recent(ctx context.Context, q store.AlertQuery) ([]store.Alert, error)
	// Subscribe returns a channel of new alerts and a function that ends
	// the subscription; the channel is closed then. A slow reader misses
	// alerts rather than blocking the sender. Alerts are any
	// JSON-marshalable value.
	Subscribe() (<-chan any, func())
}

// Tenants gives the API the state and alerts of each tenant
// (internal/tenant).
type Tenants interface {
	// Tenant returns them for a request that changes the tenant's state
	// (an upload): a tenant seen for the first time is created.
	Tenant(ctx context.Context, id string) (State, Alerts, error)
	// Lookup returns them for a read, which creates no tenant: a tenant
	// with no state, in memory or in the store, is answered with the
	// state and alerts of an empty tenant (an empty Result, no alerts),
	// which take nothing from the tenants' limits.
	Lookup(ctx context.Context, id string) (State, Alerts, error)
}

// Patcher writes and validates the virtual patches of the findings of a
// result (docs/waf.md).
type Patcher func(ctx context.Context, res *report.Result) (*waf.PatchSet, error)

// Importer parses an uploaded scanner report or SBOM. format is "auto" to
// detect it. Record errors are returned beside what could be read.
type Importer func(r io.Reader, name, format string) ([]findings.Finding, []error)

// Config configures the API server.
type Config struct {
	// Endpoint is the address to listen on; loopback unless configured.
	Endpoint string `yaml:"endpoint"`
	// MaxUploadBytes bounds an uploaded report.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// MaxConcurrentUploads bounds the uploads read and parsed at once, each
	// up to MaxUploadBytes in memory; beyond, 429 with Retry-After.
	MaxConcurrentUploads int `yaml:"max_concurrent_uploads"`
	// Config bounds the connections and how long a client may take to
	// send a request or read a response. The alert stream sets its own
	// write deadline per event.
	listener.Config `yaml:",inline"`
	// CORS lets web pages of other origins call the API; closed unless
	// configured.
	CORS CORSConfig `yaml:"cors"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ (pprofRoutes)
	// to admins; off unless configured, as the OpenTelemetry Collector's
	// pprof extension is.
	Pprof bool `yaml:"pprof"`
}

// CORSConfig lists the origins whose pages may call the API from a
// browser. Without any, no answer carries an Access-Control-Allow-*
// header, so browsers keep other origins' pages from reading answers or
// sending anything but simple requests (which upload refuses by their
// content type).
type CORSConfig struct {
	// AllowedOrigins are origins as browsers send them:
	// scheme://host[:port], no path, no wildcard.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Validate reports an origin that is not scheme://host[:port].
func (c CORSConfig) Validate() error {
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || strings.Contains(o, "*") {
			return fmt.Errorf("api cors allowed_origins %q: want scheme://host[:port], as a browser sends it in Origin", o)
		}
	}
	return nil
}

// DefaultConfig listens on 127.0.0.1:8080, accepts 64 MiB uploads and
// has the listener package's limits, with two minutes to upload or
// download a report.
func DefaultConfig() Config {
	lc := listener.DefaultConfig()
	lc.ReadTimeout, lc.WriteTimeout = 2*time.Minute, 2*time.Minute
	return Config{Endpoint: "127.0.0.1:8080", MaxUploadBytes: 64 << 20, MaxConcurrentUploads: 4, Config: lc}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Endpoint == "" {
		// Unlike the receivers', the API listener cannot be turned off.
		return errors.New(`api endpoint "": the API listener cannot be turned off (it serves /healthz, /metrics, the API and the web UI); give it a host:port, e.g. 127.0.0.1:8080`)
	}
	if err := listener.ValidateEndpoint(c.Endpoint); err != nil {
		return fmt.Errorf("api endpoint %q: %w", c.Endpoint, err)
	}
	if c.MaxUploadBytes <= 0 {
		return fmt.Errorf("api max_upload_bytes %d: must be positive", c.MaxUploadBytes)
	}
	if c.MaxConcurrentUploads <= 0 {
		return fmt.Errorf("api max_concurrent_uploads %d: must be positive", c.MaxConcurrentUploads)
	}
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return c.CORS.Validate()
}

// Deps are what the server reads from. Alerts, Vulns, Importer and Audit
// may be nil; the endpoints that need them then answer 503.
type Deps struct {
	// State and Alerts are the single tenant's, when Tenants is nil.
	State  State
	Alerts Alerts
	// Tenants, when set, replaces State and Alerts: each request reads
	// and changes those of the tenant its guard decided
	// (auth.TenantFromContext) and no other's.
	Tenants  Tenants
	Audit    Audit
	Vulns    *vulndb.DB
	Importer Importer
	Patches  Patcher
	Gatherer prometheus.Gatherer
	// Registerer registers the listener's TLS metrics; nil: none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Products names what each service is deployed as, for the VEX
	// exports (the products setting).
	Products report.Products
	// Guard admits requests by their credentials; nil admits every
	// request as auth.Anonymous, for tests and embedding behind another
	// guard.
	Guard *auth.Guard
	// Now is the clock of the audit records; nil is time.Now.
	Now func() time.Time
	// Ready reports whether the service is ready for traffic (state
	// restored, receivers listening).
	Ready func() bool
	// UI, if not nil, is the web UI (internal/ui): it owns / and /ui/,
	// behind the guard with the read role; every other path is the API's.
	UI http.Handler
	// Checks, if not nil, reports the health of parts that do not decide
	// readiness (the telemetry sources): /readyz shows each by name, "ok"
	// or its error ("failing" to a caller without the read role), and
	// stays 200 while Ready holds, since serve works on without them and
	// retries them.
	Checks func() map[string]error
	// Ops, when set, serves the operational routes only (/healthz,
	// /readyz, /metrics, and /debug/pprof/ with Config.Pprof): the
	// listener of a receiver or an engine of the scaled-out deployment,
	// whose state the API replicas serve.
	Ops bool
}

// Server is the API server, a pipeline.Component.
type Server struct {
	cfg  Config
	deps Deps

	srv *listener.Server
	// uploads holds a slot per upload being read or parsed.
	uploads chan struct{}
	// streams counts the alert streams open.
	streams streamCount

	// mu guards stop and stopNow: stop ends when Shutdown begins, and
	// with it the profiles in flight (endAtShutdown); Start after
	// Shutdown makes a new one.
	mu      sync.Mutex
	stop    context.Context
	stopNow context.CancelFunc
}

var _ pipeline.Component = (*Server)(nil)

// New returns a server; Start listens.
func New(cfg Config, deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{cfg: cfg, deps: deps, uploads: make(chan struct{}, max(cfg.MaxConcurrentUploads, 1))}
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.srv = listener.New(listener.Options{Name: "api", Endpoint: cfg.Endpoint, Config: cfg.Config, Handler: s.Handler(), Logger: deps.Logger, Registerer: deps.Registerer})
	return s
}

// Start listens on the configured endpoint and serves in a goroutine.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.stop.Err() != nil {
		s.stop, s.stopNow = context.WithCancel(context.Background())
	}
	s.mu.Unlock()
	if err := s.srv.Start(ctx); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// Addr is the address the server listens on, nil before Start.
func (s *Server) Addr() net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s.srv.Addr())
	if err != nil || s.srv.Addr() == "" {
		return nil
	}
	return a
}

// Shutdown stops the server, waiting for requests in flight until ctx is
// done; alert streams (Server-Sent Events) and profiles in flight end at
// once (endAtShutdown).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopNow()
	s.mu.Unlock()
	return s.srv.Shutdown(ctx)
}

// endAtShutdown ends h's request when Shutdown begins. A CPU profile
// holds its request for 30 seconds by default, and an alert stream until
// its client leaves, longer than serve's shutdown_timeout (15s); serve
// stops the API before the engine and the sinks: waited for, one would
// leave them no time to checkpoint and deliver. net/http/pprof ends a
// profile when its request's context does, and answers what it took so
// far; a browser's EventSource reconnects to a stream that ended.
func (s *Server) endAtShutdown(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		stop := s.stop
		s.mu.Unlock()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
		h(w, r.WithContext(ctx))
	}
}

// route is one route of the API: its pattern, the role it needs (none:
// it answers everyone; with probe, it answers everyone and knows the
// principals with the role), the query parameters it takes and its
// handler.
type route struct {
	pattern string
	need    auth.Role
	probe   bool
	params  []string
	h       http.HandlerFunc
}

// listParams are the parameters every list takes.
var listParams = []string{"limit", "cursor"}

// routes are the API's routes; openapi.json describes each.
func (s *Server) routes() []route {
	list := func(filters ...string) []string { return append(filters, listParams...) }
	rs := []route{
		{"GET /api/v1/services", auth.RoleRead, false, list(), s.services},
		{"GET /api/v1/services/{name}", auth.RoleRead, false, nil, s.service},
		{"GET /api/v1/graph", auth.RoleRead, false, nil, s.graph},
		{"GET /api/v1/inventory", auth.RoleRead, false, nil, s.export("cyclonedx", "application/vnd.cyclonedx+json")},
		{"GET /api/v1/findings", auth.RoleRead, false, list(report.FindingParams...), s.findings},
		{"POST /api/v1/findings", auth.RoleAdmin, false, []string{"service", "format"}, s.upload},
		{"GET /api/v1/findings/{id}", auth.RoleRead, false, nil, s.finding},
		{"GET /api/v1/summary", auth.RoleRead, false, nil, s.summary},
		{"GET /api/v1/report", auth.RoleRead, false, nil, s.export("json", "application/json")},
		{"GET /api/v1/export/openvex", auth.RoleRead, false, nil, s.export("openvex", "application/json")},
		{"GET /api/v1/export/sarif", auth.RoleRead, false, nil, s.export("sarif", "application/sarif+json")},
		{"GET /api/v1/export/cyclonedx", auth.RoleRead, false, nil, s.export("cyclonedx", "application/vnd.cyclonedx+json")},
		{"GET /api/v1/alerts", auth.RoleRead, false, list(AlertParams...), s.alerts},
		{"GET /api/v1/alerts/stream", auth.RoleRead, false, nil, s.endAtShutdown(s.alertStream)},
		{"GET /api/v1/alerts/{id}", auth.RoleRead, false, nil, s.alert},
		{"GET /api/v1/vulndb", auth.RoleRead, false, nil, s.vulndb},
		{"GET /api/v1/waf/patches", auth.RoleRead, false, nil, s.patches},
		{"GET /api/v1/waf/patches/{service}", auth.RoleRead, false, nil, s.patchConf},
		{"GET /api/v1/audit", auth.RoleAdmin, false, list("after"), deploymentWide(s.audit)},
		{"GET /api/v1/openapi.json", auth.RoleRead, false, nil, serveOpenAPI},
		{"GET /healthz", 0, false, nil, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }},
		{"GET /readyz", auth.RoleRead, true, nil, s.readyz},
	}
	if s.deps.Ops {
		rs = slices.DeleteFunc(rs, func(rt route) bool { return rt.pattern != "GET /healthz" && rt.pattern != "GET /readyz" })
	}
	if s.deps.Gatherer != nil {
		rs = append(rs, route{"GET /metrics", auth.RoleRead, false, nil, deploymentWide(promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)})
	}
	return rs
}

// Handler returns the API's routes, each behind the guard with the role
// it needs, and the CORS headers of the configured origins. /healthz and
// /readyz answer everyone, as Kubernetes' and Prometheus' do: probes
// carry no credentials. They tell anyone only whether evident is up and
// ready and which checks fail; why a check fails (an error that may name
// a source's internal URL) only a principal with the read role sees.
// The UI, if any, has / and /ui/; Go's profiles, if configured, are
// under /debug/pprof/. Every error is JSON, an unknown route
// (404) and a wrong method (405, with Allow) too. Every route, and the
// UI, takes the tenant as X-Scope-OrgID or as a link names it
// (tenantParam).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		var h http.Handler = checked(rt.params, rt.h)
		switch {
		case rt.need == 0:
		case rt.probe:
			h = s.probe(rt.need, h.ServeHTTP)
		default:
			h = s.guard(rt.need, s.inTenant(!strings.HasPrefix(rt.pattern, http.MethodGet+" "), h.ServeHTTP))
		}
		mux.Handle(rt.pattern, h)
	}
	if s.cfg.Pprof {
		for _, rt := range pprofRoutes() {
			mux.Handle(rt.pattern, s.guard(rt.need, deploymentWide(s.endAtShutdown(rt.h))))
		}
	}
	if s.deps.UI != nil {
		mux.Handle("GET /{$}", s.guard(auth.RoleRead, s.deps.UI))
		mux.Handle("GET /ui/", s.guard(auth.RoleRead, s.deps.UI))
	}
	return s.cors(secureHeaders(tenantParam(jsonFallback(mux))))
}

// secureHeaders marks every answer nosniff, so that no browser takes a
// text/plain or JSON answer, which may hold what traffic put in spans,
// for HTML or script; and the API's answers (a tenant's findings,
// exports, patches) not to be kept by caches on the way.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			w.Header().Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// tenantParam lets a link name the tenant, since a browser following it
// sends no header: the query parameter auth.TenantParam becomes the
// request's X-Scope-OrgID before the guard decides the tenant, so it is
// admitted or refused exactly as the header would be (a token bound to
// one tenant cannot read another through it), and the routes never see
// it. An empty value names none, as an empty filter does not filter;
// two values, one the header contradicts, or one that is no tenant ID
// are a 400.
func tenantParam(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		vs, ok := q[auth.TenantParam]
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		switch header := r.Header.Get(auth.TenantHeader); {
		case len(vs) > 1:
			writeError(w, http.StatusBadRequest, "parameter %q given %d times: give it once", auth.TenantParam, len(vs))
			return
		case vs[0] != "" && header != "" && header != vs[0]:
			writeError(w, http.StatusBadRequest, "parameter %s=%q and header %s: %q name different tenants", auth.TenantParam, vs[0], auth.TenantHeader, header)
			return
		case vs[0] != "":
			if err := store.ValidateTenant(vs[0]); err != nil {
				writeError(w, http.StatusBadRequest, "parameter %s: %v", auth.TenantParam, err)
				return
			}
		}
		r = r.Clone(r.Context())
		if vs[0] != "" {
			r.Header.Set(auth.TenantHeader, vs[0])
		}
		q.Del(auth.TenantParam)
		r.URL.RawQuery = q.Encode()
		h.ServeHTTP(w, r)
	})
}

// checked refuses, with 400, a query with a parameter h does not take.
func checked(params []string, h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := CheckQuery(r.URL.Query(), params); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		h.ServeHTTP(w, r)
	}
}

// jsonFallback answers what mux has no route for (404, or 405 with the
// Allow header when the path has routes for other methods) with a JSON
// error instead of the mux's text.
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			// ServeHTTP, not h: it sets the path values h reads.
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer says which: keep its status and Allow.
		var rec statusRecorder
		h.ServeHTTP(&rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s: allowed %s", r.Method, r.URL.Path, allow)
			return
		}
		writeError(w, http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path)
	})
}

// statusRecorder is a ResponseWriter that keeps the status and headers and
// drops the body.
type statusRecorder struct {
	header http.Header
	status int
}

func (p *statusRecorder) Header() http.Header {
	if p.header == nil {
		p.header = http.Header{}
	}
	return p.header
}

func (p *statusRecorder) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *statusRecorder) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

// probe puts h, a route that answers everyone, behind the configured
// guard's optional admission: a principal with role need is in the
// request's context (auth.FromContext), anyone else is not.
func (s *Server) probe(need auth.Role, h http.HandlerFunc) http.Handler {
	if s.deps.Guard == nil {
		return h
	}
	return s.deps.Guard.HTTPOptional(need, h)
}

// guard puts h behind the configured guard.
func (s *Server) guard(need auth.Role, h http.Handler) http.Handler {
	if s.deps.Guard == nil {
		return h
	}
	return s.deps.Guard.HTTP(need, h)
}

// tenantState is the state and alerts of the tenant of a request.
type tenantState struct {
	state  State
	alerts Alerts
}

type tenantStateKey struct{}

// storeStatus is the status of a store's error: 400 when the request
// asked for what the store cannot hold or read (store.ErrInvalid, a time
// outside its range), 503 otherwise.
func storeStatus(err error) int {
	if errors.Is(err, store.ErrInvalid) {
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// inTenant resolves the state and alerts of the request's tenant before
// h runs; without Deps.Tenants, h reads Deps.State and Deps.Alerts. Only
// a route that writes (every method but GET) may create the tenant: a
// read of a tenant that does not exist is answered as an empty one's.
func (s *Server) inTenant(write bool, h http.HandlerFunc) http.HandlerFunc {
	if s.deps.Tenants == nil {
		return h
	}
	resolve := s.deps.Tenants.Lookup
	if write {
		resolve = s.deps.Tenants.Tenant
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id := auth.TenantFromContext(r.Context())
		st, al, err := resolve(r.Context(), id)
		if err != nil {
			writeError(w, storeStatus(err), "tenant %q: %v", id, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), tenantStateKey{}, tenantState{state: st, alerts: al})))
	}
}

// stateOf is the state of the request's tenant.
func (s *Server) stateOf(r *http.Request) State {
	if ts, ok := r.Context().Value(tenantStateKey{}).(tenantState); ok {
		return ts.state
	}
	return s.deps.State
}

// alertsOf is the alerts of the request's tenant; nil when there are
// none.
func (s *Server) alertsOf(r *http.Request) Alerts {
	if ts, ok := r.Context().Value(tenantStateKey{}).(tenantState); ok {
		return ts.alerts
	}
	return s.deps.Alerts
}

// deploymentWide refuses, with 403, the principals bound to a tenant:
// what h shows (the audit log, the metrics) is every tenant's.
func deploymentWide(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); ok && p.Tenant != "" {
			writeError(w, http.StatusForbidden, "%s acts in tenant %q only; this shows every tenant's", p.Name, p.Tenant)
			return
		}
		h(w, r)
	}
}

// actor names who made a request in the audit log.
func actor(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return p.Name
	}
	return auth.Anonymous
}

// cors adds the CORS headers for the configured origins, and answers
// their preflight requests; a request from another origin, preflight or
// not, gets no Access-Control-Allow-* header.
func (s *Server) cors(next http.Handler) http.Handler {
	if len(s.cfg.CORS.AllowedOrigins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(s.cfg.CORS.AllowedOrigins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...)})
}
