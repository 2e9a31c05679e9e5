package waf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/tlsconfig"
)

// ProxyConfig configures the enforcing reverse proxy.
type ProxyConfig struct {
	// Upstream is the base URL requests are forwarded to.
	Upstream string
	// Listen is the address to listen on; ":0" picks a port.
	Listen string
	// Directives are the SecLang rules to enforce (LoadRules).
	Directives string
	// MetricsPath serves the metrics on the proxy's listener; it is not
	// forwarded. Empty: no metrics endpoint.
	MetricsPath string
	// AuditLog receives one JSON line per blocked or detected request;
	// nil: none. Writes are serialised.
	AuditLog io.Writer
	// Redaction masks the secrets and personal data of the audit lines
	// (their URI, message and matched data) with the rules that serve
	// applies to telemetry; DefaultProxyConfig turns every built-in rule
	// on.
	Redaction redact.Config
	// Limits bound the proxy's connections and how long a client may take
	// to send a request; Limits.TLS serves TLS (and mTLS) to clients.
	Limits listener.Config
	// UpstreamTLS verifies an https upstream (a private CA, a client
	// certificate); zero: the system's roots.
	UpstreamTLS tlsconfig.ClientConfig
	// UpstreamTimeout bounds connecting to the upstream and waiting for
	// its response headers; a request that takes longer gets 504.
	UpstreamTimeout time.Duration
}

// DefaultProxyConfig returns the defaults of `evident waf proxy`: the
// listener package's limits without a write timeout, since the proxy
// does not know how long the upstream's responses may take.
func DefaultProxyConfig() ProxyConfig {
	lc := listener.DefaultConfig()
	lc.WriteTimeout = 0
	return ProxyConfig{
		Listen: "127.0.0.1:8090", MetricsPath: "/metrics", Limits: lc, UpstreamTimeout: 30 * time.Second,
		Redaction: redact.DefaultConfig(),
	}
}

// Validate checks the configuration.
func (c ProxyConfig) Validate() error {
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: upstream %q is not an http(s) URL", ErrConfig, c.Upstream)
	}
	if c.Listen == "" {
		return fmt.Errorf("%w: no listen address", ErrConfig)
	}
	if err := validMetricsPath(c.MetricsPath); err != nil {
		return fmt.Errorf("%w: metrics path %q: %w", ErrConfig, c.MetricsPath, err)
	}
	if c.UpstreamTimeout <= 0 {
		return fmt.Errorf("%w: upstream timeout %s is not positive", ErrConfig, c.UpstreamTimeout)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.UpstreamTLS.Validate(); err != nil {
		return fmt.Errorf("%w: upstream: %w", ErrConfig, err)
	}
	if err := c.Redaction.Validate(); err != nil {
		return fmt.Errorf("%w: audit log: %w", ErrConfig, err)
	}
	return nil
}

// validMetricsPath checks that p, when set, is a path the proxy's mux
// can serve alone: http.ServeMux panics on a pattern it cannot parse
// ("metrics", "/m etrics") or that "/" already takes, and would read a
// method, a host or a wildcard ("GET /m", "/a/{x}") as a pattern, not
// as the path. So it must be clean, absolute, not "/", and hold no
// space, control character, brace, '?' or '#'.
func validMetricsPath(p string) error {
	switch {
	case p == "":
		return nil
	case !strings.HasPrefix(p, "/"):
		return errors.New("does not start with /")
	case p == "/":
		return errors.New("is the root, which every request to the upstream goes through")
	case path.Clean(p) != p:
		return errors.New("is not a clean path (no trailing /, //, . or ..)")
	case strings.ContainsFunc(p, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune("{}?#", r)
	}):
		return errors.New("holds a space, a control character, a brace, ? or #")
	}
	return nil
}

// AuditRecord is one line of the audit log. URI, Msg and Data are
// redacted (ProxyConfig.Redaction) before the line is written: the rule,
// the vulnerability and the matched variable's name (Data, "ARGS:q"),
// which say what was blocked and where, are kept.
type AuditRecord struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // "blocked" or "detected"
	RuleID int       `json:"rule_id"`
	Vuln   string    `json:"vulnerability"`
	// Service is the service whose patch the rule is, for a proxy that
	// enforces the patches of several. A request no patch's rule denied
	// has those whose patched endpoints it was sent to (their scope
	// rules matched before it was denied), comma-separated, or "".
	Service string `json:"service"`
	Msg     string `json:"msg"`
	Method  string `json:"method"`
	URI     string `json:"uri"`
	Client  string `json:"client"`
	Data    string `json:"data,omitempty"`
}

// Proxy is a reverse proxy that enforces virtual patches with Coraza. It
// is a component: Start and Shutdown are safe to call twice, and Shutdown
// without Start does nothing.
type Proxy struct {
	cfg    ProxyConfig
	logger *slog.Logger
	// waf is the WAF in force. Reload replaces it: a request keeps the
	// one it started with.
	waf     atomic.Pointer[coraza.WAF]
	handler http.Handler
	redact  *redact.Redactor

	requests *prometheus.CounterVec
	blocked  *prometheus.CounterVec
	detected *prometheus.CounterVec
	latency  prometheus.Histogram
	reloads  *prometheus.CounterVec
	// reloadMu serialises Reload, so that two signals in a row cannot
	// store their rules in the other order.
	reloadMu sync.Mutex
	auditMu  sync.Mutex
	srv      *listener.Server
}

// NewProxy compiles the rules and registers the metrics with reg;
// gatherer (may be nil) is served on cfg.MetricsPath.
func NewProxy(cfg ProxyConfig, logger *slog.Logger, reg prometheus.Registerer, gatherer prometheus.Gatherer) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := newWAF(cfg.Directives)
	if err != nil {
		return nil, err
	}
	red, err := redact.New(cfg.Redaction)
	if err != nil {
		return nil, fmt.Errorf("%w: audit log: %w", ErrConfig, err)
	}
	up, _ := url.Parse(cfg.Upstream)
	p := &Proxy{
		cfg: cfg, logger: logger, redact: red,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_waf_requests_total", Help: "Requests seen by the proxy, by outcome (passed, blocked, error, redirected).",
		}, []string{"outcome"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_waf_blocked_total", Help: "Requests denied, by rule id and vulnerability.",
		}, []string{"rule_id", "vulnerability"}),
		detected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_waf_detected_total", Help: "Matches of detection-only rules, by rule id and vulnerability.",
		}, []string{"rule_id", "vulnerability"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "evident_waf_request_duration_seconds", Help: "Time from request to response through the proxy, upstream included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_waf_reloads_total", Help: "Reloads of the rules (SIGHUP), by result (ok, error).",
		}, []string{"result"}),
	}
	p.waf.Store(&w)
	// Every outcome is counted from 0, so a rate of blocked requests is 0
	// rather than "no data" before the first.
	for _, outcome := range []string{"passed", "blocked", "error", "redirected"} {
		p.requests.WithLabelValues(outcome)
	}
	p.reloads.WithLabelValues("ok")
	p.reloads.WithLabelValues("error")
	for _, c := range []prometheus.Collector{p.requests, p.blocked, p.detected, p.latency, p.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register proxy metrics: %w", err)
		}
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.UpstreamTLS != (tlsconfig.ClientConfig{}) {
		if transport, err = tlsconfig.NewTransport(cfg.UpstreamTLS, "waf proxy upstream", logger); err != nil {
			return nil, err
		}
	}
	rp.Transport = withTimeout(transport, cfg.UpstreamTimeout)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		logger.Warn("upstream", "url", r.URL.String(), "err", err)
		if o, ok := r.Context().Value(outcomeKey{}).(*string); ok {
			*o = "error"
		}
		status := http.StatusBadGateway
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			status = http.StatusGatewayTimeout
		}
		w.WriteHeader(status)
	}
	mux := http.NewServeMux()
	if cfg.MetricsPath != "" && gatherer != nil {
		mux.Handle(cfg.MetricsPath, metricsHandler{promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})})
	}
	mux.Handle("/", p.enforce(rp))
	p.handler = p.count(mux)
	p.srv = listener.New(listener.Options{Name: "waf proxy", Endpoint: cfg.Listen, Config: cfg.Limits, Handler: p.handler, Logger: logger, Registerer: reg})
	return p, nil
}

// metricsHandler serves the metrics; count tells it from the mux's own
// answers by its type.
type metricsHandler struct{ http.Handler }

// count serves requests with mux, and counts those the mux answers
// itself, which neither enforce nor the metrics see: a path that is not
// clean (//search, /a/../search) gets a redirect to its clean form, whose
// request the rules then inspect ("redirected"); an authority-form
// CONNECT gets a 404, and a request for "*" a 400 ("error"). The
// redirect is kept: the route expressions of the rules match the clean
// path, which is the one routers serve.
func (p *Proxy) count(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch h, _ := mux.Handler(r); h.(type) {
		case enforcer, metricsHandler:
			if r.RequestURI != "*" {
				mux.ServeHTTP(w, r)
				return
			}
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r)
		outcome := "error"
		if sw.status >= 300 && sw.status < 400 {
			outcome = "redirected"
		}
		p.requests.WithLabelValues(outcome).Inc()
		p.latency.Observe(time.Since(start).Seconds())
	})
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// enforcer is the handler enforce returns; count tells it from the
// mux's own answers by its type.
type enforcer func(http.ResponseWriter, *http.Request)

func (f enforcer) ServeHTTP(w http.ResponseWriter, r *http.Request) { f(w, r) }

// enforce runs each request through the WAF before next.
func (p *Proxy) enforce(next http.Handler) http.Handler {
	return enforcer(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { p.latency.Observe(time.Since(start).Seconds()) }()
		tx := (*p.waf.Load()).NewTransaction()
		defer func() {
			tx.ProcessLogging()
			if err := tx.Close(); err != nil {
				p.logger.Warn("close waf transaction", "err", err)
			}
		}()
		it, err := inspectHTTP(tx, r)
		if err != nil {
			p.logger.Warn("inspect request", "uri", r.URL.RequestURI(), "err", err)
			p.requests.WithLabelValues("error").Inc()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		blockedVuln, audited := "", false
		for _, mr := range matched(tx) {
			id := mr.Rule().ID()
			action := "detected"
			if it != nil && it.RuleID == id {
				action = "blocked"
				blockedVuln = vulnTag(mr.Rule().Tags())
				audited = true
			} else {
				p.detected.WithLabelValues(strconv.Itoa(id), vulnTag(mr.Rule().Tags())).Inc()
			}
			p.audit(AuditRecord{
				Time: start.UTC(), Action: action, RuleID: id, Vuln: vulnTag(mr.Rule().Tags()), Service: serviceTag(mr.Rule().Tags()), Msg: mr.Message(),
				Method: r.Method, URI: r.URL.RequestURI(), Client: mr.ClientIPAddress(), Data: mr.Data(),
			})
		}
		if it != nil {
			status := it.Status
			if status == 0 {
				status = http.StatusForbidden
			}
			if !audited {
				// No evident rule denied it: the engine did (a body over
				// SecRequestBodyLimit), or a rule of the directory that
				// is not a patch's. Every blocked request is audited.
				client, _, err := net.SplitHostPort(r.RemoteAddr)
				if err != nil {
					client = r.RemoteAddr
				}
				p.audit(AuditRecord{
					Time: start.UTC(), Action: "blocked", RuleID: it.RuleID, Service: scopeServices(tx), Msg: interruptionMsg(it, status),
					Method: r.Method, URI: r.URL.RequestURI(), Client: client, Data: it.Data,
				})
			}
			p.requests.WithLabelValues("blocked").Inc()
			p.blocked.WithLabelValues(strconv.Itoa(it.RuleID), blockedVuln).Inc()
			w.WriteHeader(status)
			return
		}
		// The upstream's error handler may turn the outcome into an
		// error; each request is counted once, when it is done.
		outcome := "passed"
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), outcomeKey{}, &outcome)))
		p.requests.WithLabelValues(outcome).Inc()
	})
}

// interruptionMsg says why the engine denied a request no evident rule
// matched. Coraza interrupts with rule id 0 and status 413 for a body
// over SecRequestBodyLimit (SecRequestBodyLimitAction Reject).
func interruptionMsg(it *types.Interruption, status int) string {
	if it.RuleID == 0 && status == http.StatusRequestEntityTooLarge {
		return "request body larger than the engine limit (SecRequestBodyLimit)"
	}
	if it.RuleID == 0 {
		return fmt.Sprintf("denied by the engine (status %d)", status)
	}
	return fmt.Sprintf("denied by rule %d, which is not an evident patch's", it.RuleID)
}

// serviceTag returns the service among an evident rule's tags
// ("evident/service/NAME", as Rule.render writes it): the service whose
// patch the rule is.
func serviceTag(tags []string) string {
	for _, t := range tags {
		if s, ok := strings.CutPrefix(t, "evident/service/"); ok {
			return s
		}
	}
	return ""
}

// scopeServices returns the services whose patched endpoints the
// request of tx was sent to, those of the evident scope rules that
// matched, sorted and comma-separated; "" when none did.
func scopeServices(tx types.Transaction) string {
	var services []string
	for _, mr := range tx.MatchedRules() {
		tags := mr.Rule().Tags()
		if hasTag(tags, "evident") && hasTag(tags, "evident/"+KindScope) {
			if s := serviceTag(tags); s != "" {
				services = append(services, s)
			}
		}
	}
	slices.Sort(services)
	return strings.Join(slices.Compact(services), ",")
}

// outcomeKey keys the request's outcome in its context, for the reverse
// proxy's error handler to set.
type outcomeKey struct{}

// withTimeout bounds connecting to the upstream and waiting for its
// response headers. The response body has no deadline: a download or a
// stream may take as long as it takes.
func withTimeout(t *http.Transport, timeout time.Duration) *http.Transport {
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = min(t.TLSHandshakeTimeout, timeout)
	t.ResponseHeaderTimeout = timeout
	return t
}

// audit writes rec, redacted, as one line of the audit log. The URI is
// redacted as a URL (the values of parameters named like secrets), and
// it, the message and the matched data as free text (e-mail addresses,
// card numbers, URL credentials); no header value is ever written.
func (p *Proxy) audit(rec AuditRecord) {
	if p.cfg.AuditLog == nil {
		return
	}
	rec.URI = p.redact.Value(redact.FieldURLFull, rec.URI)
	rec.Msg = p.redact.Text(rec.Msg)
	rec.Data = p.redact.Text(rec.Data)
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	p.auditMu.Lock()
	defer p.auditMu.Unlock()
	if _, err := p.cfg.AuditLog.Write(append(line, '\n')); err != nil {
		p.logger.Warn("write audit log", "err", err)
	}
}

// reopener is an audit log that can be opened again at its path
// (AuditFile).
type reopener interface{ Reopen() error }

// Reload loads the rules of dir for services again, with the checks of
// LoadRules, and enforces them from the next request on; requests in
// flight finish on the rules they started with. When they do not load
// (a rule that does not compile, a file that cannot be read), the proxy
// keeps the rules in force and the error names the file and line. Either
// way an audit log that is an AuditFile is opened again at its path, so
// that after logrotate moves it new lines go to a new file. It returns
// the errors of both, and logs them and what it loaded. It is safe for
// concurrent use; `evident waf proxy` calls it on SIGHUP.
func (p *Proxy) Reload(dir string, services []string) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	var reopenErr error
	if r, ok := p.cfg.AuditLog.(reopener); ok {
		if reopenErr = r.Reopen(); reopenErr != nil {
			p.logger.Error("reopen audit log: writing on to the file already open", "err", reopenErr)
		}
	}
	srcs, w, err := loadRules(dir, services)
	if err != nil {
		p.reloads.WithLabelValues("error").Inc()
		p.logger.Error("reload waf rules: enforcing the rules loaded before", "rules", dir, "err", err)
		return errors.Join(err, reopenErr)
	}
	p.waf.Store(&w)
	p.reloads.WithLabelValues("ok").Inc()
	if len(services) == 0 {
		services = PatchedServices(dir)
	}
	counts := ruleCounts(srcs)
	var rules []string
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		rules = append(rules, fmt.Sprintf("%s=%d", name, counts[name]))
	}
	p.logger.Info("reloaded waf rules", "rules", dir, "services", strings.Join(services, ","), "rule_counts", strings.Join(rules, ","))
	return reopenErr
}

// Start listens and serves in the background until Shutdown.
func (p *Proxy) Start(ctx context.Context) error { return p.srv.Start(ctx) }

// Addr returns the address the proxy listens on, "" before Start.
func (p *Proxy) Addr() string { return p.srv.Addr() }

// Shutdown stops accepting requests and waits for those in flight, or
// for ctx.
func (p *Proxy) Shutdown(ctx context.Context) error { return p.srv.Shutdown(ctx) }
