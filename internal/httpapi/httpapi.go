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
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/vulndb"
	"github.com/evidentsec/evident/internal/waf"
)

// State is the live assessment the API reads and the findings it
// replaces. Implementations are safe for concurrent use; Result returns a
// value the caller must not modify.
type State interface {
	Result() *report.Result
	SetFindings(ctx context.Context, fs []findings.Finding) error
}

// Alerts gives the API the alerts fired so far and a live feed of new
// ones. Alerts are any JSON-marshalable value.
type Alerts interface {
	Recent(ctx context.Context, since time.Time, limit int) ([]any, error)
	// Subscribe returns a channel of new alerts and a function that ends
	// the subscription; the channel is closed then. A slow reader misses
	// alerts rather than blocking the sender.
	Subscribe() (<-chan any, func())
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
	if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
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
	return nil
}

// Deps are what the server reads from. Alerts, Vulns and Importer may be
// nil; the endpoints that need them then answer 503.
type Deps struct {
	State    State
	Alerts   Alerts
	Vulns    *vulndb.DB
	Importer Importer
	Patches  Patcher
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// Products names what each service is deployed as, for the VEX
	// exports (the products setting).
	Products report.Products
	// Ready reports whether the service is ready for traffic (state
	// restored, receivers listening).
	Ready func() bool
}

// Server is the API server, a pipeline.Component.
type Server struct {
	cfg  Config
	deps Deps

	srv *listener.Server
	// uploads holds a slot per upload being read or parsed.
	uploads chan struct{}
}

var _ pipeline.Component = (*Server)(nil)

// New returns a server; Start listens.
func New(cfg Config, deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: deps, uploads: make(chan struct{}, max(cfg.MaxConcurrentUploads, 1))}
	s.srv = listener.New(listener.Options{Name: "api", Endpoint: cfg.Endpoint, Config: cfg.Config, Handler: s.Handler(), Logger: deps.Logger})
	return s
}

// Start listens on the configured endpoint and serves in a goroutine.
func (s *Server) Start(ctx context.Context) error {
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
// done; Server-Sent Event streams are closed when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/services", s.services)
	mux.HandleFunc("GET /api/v1/services/{name}", s.service)
	mux.HandleFunc("GET /api/v1/graph", s.graph)
	mux.HandleFunc("GET /api/v1/inventory", s.export("cyclonedx", "application/vnd.cyclonedx+json"))
	mux.HandleFunc("GET /api/v1/findings", s.findings)
	mux.HandleFunc("POST /api/v1/findings", s.upload)
	mux.HandleFunc("GET /api/v1/findings/{id}", s.finding)
	mux.HandleFunc("GET /api/v1/summary", s.summary)
	mux.HandleFunc("GET /api/v1/report", s.export("json", "application/json"))
	mux.HandleFunc("GET /api/v1/export/openvex", s.export("openvex", "application/json"))
	mux.HandleFunc("GET /api/v1/export/sarif", s.export("sarif", "application/sarif+json"))
	mux.HandleFunc("GET /api/v1/export/cyclonedx", s.export("cyclonedx", "application/vnd.cyclonedx+json"))
	mux.HandleFunc("GET /api/v1/alerts", s.alerts)
	mux.HandleFunc("GET /api/v1/alerts/stream", s.alertStream)
	mux.HandleFunc("GET /api/v1/vulndb", s.vulndb)
	mux.HandleFunc("GET /api/v1/waf/patches", s.patches)
	mux.HandleFunc("GET /api/v1/waf/patches/{service}", s.patchConf)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.deps.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux
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
