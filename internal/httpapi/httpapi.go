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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evidentsec/evident/internal/findings"
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
}

// DefaultConfig listens on 127.0.0.1:8080 and accepts 64 MiB uploads.
func DefaultConfig() Config {
	return Config{Endpoint: "127.0.0.1:8080", MaxUploadBytes: 64 << 20}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
		return fmt.Errorf("api endpoint %q: %w", c.Endpoint, err)
	}
	if c.MaxUploadBytes <= 0 {
		return fmt.Errorf("api max_upload_bytes %d: must be positive", c.MaxUploadBytes)
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

	mu   sync.Mutex
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

var _ pipeline.Component = (*Server)(nil)

// New returns a server; Start listens.
func New(cfg Config, deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, deps: deps}
}

// Start listens on the configured endpoint and serves in a goroutine.
func (s *Server) Start(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	s.addr = ln.Addr()
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.deps.Logger.Error("api server stopped", "err", err)
		}
	}(s.srv, s.done)
	return nil
}

// Addr is the address the server listens on, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops the server, waiting for requests in flight until ctx is
// done. Server-Sent Event streams end with it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
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
