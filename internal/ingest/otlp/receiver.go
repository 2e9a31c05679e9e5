// Package otlp receives OpenTelemetry traces and profiles over OTLP/gRPC
// and OTLP/HTTP, decodes them with internal/telemetry and hands the
// result to pipeline consumers.
//
// The receiver owns only the protocol: sizes, encodings, status codes and
// backpressure signals (protocols.md §1, §2; perf-reliability.md §5). What
// the data means is the engine's business.
//
// Answers follow the OTLP specification:
//   - success: 200 / OK with an Export*ServiceResponse in the request's
//     encoding, with partial_success when some records were malformed;
//   - undecodable body: 400 / INVALID_ARGUMENT with a google.rpc.Status;
//   - over MaxRequestBytes, measured after decompression: 413 /
//     RESOURCE_EXHAUSTED without retry information (the client must not
//     retry);
//   - consumer queue full: 429 with Retry-After / RESOURCE_EXHAUSTED with
//     a google.rpc.RetryInfo;
//   - consumer unavailable for another reason: 503 / UNAVAILABLE;
//   - more than MaxConcurrentRequests being decoded, memory above the
//     soft limit or the byte budget spent (package admission): 429 /
//     RESOURCE_EXHAUSTED with a retry delay. Memory is checked before
//     anything of a request is read, the budget as its bytes arrive, and
//     a request slot is taken once the request is read, so a client that
//     sends slowly holds only what it sent;
//   - a request that alone would need more than the byte budget: 413 /
//     RESOURCE_EXHAUSTED without retry information.
//
// Listeners, timeouts and connection caps come from package listener
// (docs/security.md). OTLP/gRPC is served by net/http's HTTP/2 server
// too, evident reading each call's message as OTLP/HTTP reads a body,
// under the same accounting (serveGRPC).
//
// Metrics, shared with the pyroscope receiver (label receiver):
// evident_receiver_accepted_{spans,profiles}_total{transport},
// evident_receiver_refused_{spans,profiles}_total{transport,reason} for
// decoded records not handed on, evident_receiver_refused_requests_total
// {transport,signal,reason} for requests refused before their records
// could be counted, and evident_receiver_request_duration_seconds.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// ErrClosed is returned by Start after Shutdown: a receiver is not reused.
var ErrClosed = errors.New("otlp receiver shut down")

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("invalid otlp receiver config")

// Config configures a Receiver.
type Config struct {
	// GRPCEndpoint is the host:port of the OTLP/gRPC listener; "" turns it off.
	GRPCEndpoint string `yaml:"grpc_endpoint"`
	// HTTPEndpoint is the host:port of the OTLP/HTTP listener; "" turns it off.
	HTTPEndpoint string `yaml:"http_endpoint"`
	// MaxRequestBytes bounds one request after decompression. Larger
	// requests get 413 (HTTP) or RESOURCE_EXHAUSTED (gRPC).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxConcurrentRequests bounds the requests read and decoded at once,
	// over both transports, so that memory stays bounded under overload:
	// beyond it a request is refused at once as throttled (429 /
	// RESOURCE_EXHAUSTED with a retry delay) instead of being buffered.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// Profiles bound the samples, locations and stack depth of each
	// profile received.
	Profiles telemetry.Limits `yaml:"profiles"`
	// Config bounds each listener's connections (max_connections each)
	// and how long a client may take to send a request (read_timeout) or
	// read the answer (write_timeout, from the request's start); a gRPC
	// call is a request of its own (an HTTP/2 stream), and idle_timeout
	// closes a connection without any.
	listener.Config `yaml:",inline"`
}

// DefaultConfig returns the OTLP default ports bound to loopback, as the
// Collector does since the 2024 hardening (perf-reliability.md §5.4), and
// a 16 MiB request limit.
func DefaultConfig() Config {
	return Config{
		GRPCEndpoint:    "127.0.0.1:4317",
		HTTPEndpoint:    "127.0.0.1:4318",
		MaxRequestBytes: 16 << 20,
		// A few requests per core keep the cores busy; more only queue.
		MaxConcurrentRequests: 64,
		Profiles:              telemetry.DefaultLimits(),
		Config:                listener.DefaultConfig(),
	}
}

// Validate reports the first problem of c.
func (c Config) Validate() error {
	if c.GRPCEndpoint == "" && c.HTTPEndpoint == "" {
		return fmt.Errorf("%w: grpc_endpoint and http_endpoint are both empty", ErrConfig)
	}
	for name, ep := range map[string]string{"grpc_endpoint": c.GRPCEndpoint, "http_endpoint": c.HTTPEndpoint} {
		if ep == "" {
			continue
		}
		if err := listener.ValidateEndpoint(ep); err != nil {
			return fmt.Errorf("%w: %s %q: %w", ErrConfig, name, ep, err)
		}
	}
	// Port 0 asks the system for a free port, so "host:0" twice is fine.
	if _, port, _ := net.SplitHostPort(c.GRPCEndpoint); c.GRPCEndpoint != "" && c.GRPCEndpoint == c.HTTPEndpoint && port != "0" {
		return fmt.Errorf("%w: grpc_endpoint and http_endpoint are both %q", ErrConfig, c.GRPCEndpoint)
	}
	if c.MaxRequestBytes <= 0 {
		return fmt.Errorf("%w: max_request_bytes %d, want > 0", ErrConfig, c.MaxRequestBytes)
	}
	if c.MaxRequestBytes > telemetry.MaxProfileSize {
		// What the engine reads back of a logged request on replay: a
		// larger one would be acknowledged, then skipped after a restart.
		return fmt.Errorf("%w: max_request_bytes %d, want at most %d (256 MiB, the most a logged request may take on replay)", ErrConfig, c.MaxRequestBytes, telemetry.MaxProfileSize)
	}
	if c.MaxConcurrentRequests <= 0 {
		return fmt.Errorf("%w: max_concurrent_requests %d, want > 0", ErrConfig, c.MaxConcurrentRequests)
	}
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Profiles.Validate(); err != nil {
		return fmt.Errorf("%w: profiles: %w", ErrConfig, err)
	}
	return nil
}

// Receiver serves OTLP/gRPC and OTLP/HTTP. It is a pipeline.Component.
type Receiver struct {
	cfg      Config
	traces   pipeline.Consumer[[]telemetry.Span]
	profiles pipeline.Consumer[[]*telemetry.ProfileBatch]
	log      *slog.Logger
	m        *metrics
	handler  http.Handler
	adm      *admission.Controller
	dec      *ingest.Decompressor
	inflight chan struct{} // a slot per request being served
	// freeSpans keeps the span slices the consumer gave back
	// (telemetry.WithRelease), freeTexts where the texts of finished
	// trace requests were, for the next requests to decode into, and
	// freeBodies the buffers of finished requests, to read the next
	// into; putSpans is freeSpans.put, made once.
	freeSpans  freeList[[]telemetry.Span]
	freeTexts  freeList[*telemetry.Texts]
	freeBodies freeList[*body]
	putSpans   func([]telemetry.Span)
	// grpcGuard and httpGuard admit requests by their credentials; nil:
	// none asked.
	grpcGuard, httpGuard *auth.Guard
	reg                  prometheus.Registerer

	mu       sync.Mutex
	started  bool
	stopped  bool
	grpcHTTP *listener.Server
	httpSrv  *listener.Server
}

var _ pipeline.Component = (*Receiver)(nil)

// New returns a receiver that hands traces and profiles to the given
// consumers. A nil consumer turns its signal off: its HTTP path answers
// 404 and its gRPC service UNIMPLEMENTED. Metrics are registered with reg
// (nil: not registered). adm admits requests, shared with the other
// receivers (nil: a private one with the default byte budget).
func New(cfg Config, traces pipeline.Consumer[[]telemetry.Span], profiles pipeline.Consumer[[]*telemetry.ProfileBatch], logger *slog.Logger, reg prometheus.Registerer, adm *admission.Controller) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if traces == nil && profiles == nil {
		return nil, fmt.Errorf("%w: no consumer for traces or profiles", ErrConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register otlp receiver metrics: %w", err)
	}
	if adm == nil {
		adm = admission.Default()
	}
	r := &Receiver{cfg: cfg, traces: traces, profiles: profiles, log: logger, m: m, adm: adm, reg: reg,
		dec: ingest.NewDecompressor(cfg.MaxRequestBytes), inflight: make(chan struct{}, cfg.MaxConcurrentRequests),
		freeSpans: newFreeList(sliceBytes[telemetry.Span]), freeTexts: newFreeList(textsBytes), freeBodies: newFreeList(bodyBytes)}
	r.putSpans = r.freeSpans.put
	if cfg.GRPCEndpoint != "" {
		r.grpcHTTP = listener.New(listener.Options{Name: "otlp grpc receiver", Endpoint: cfg.GRPCEndpoint, Config: cfg.Config,
			Handler: http.HandlerFunc(r.serveGRPC), Logger: logger, Registerer: reg, GRPC: true, HTTP2: grpcHTTP2(cfg)})
	}
	mux := http.NewServeMux()
	if traces != nil {
		mux.HandleFunc(TracesPath, r.admitHTTP("traces", r.serveTraces))
	}
	if profiles != nil {
		mux.HandleFunc(ProfilesPath, r.admitHTTP("profiles", r.serveProfiles))
	}
	r.handler = mux
	return r, nil
}

// Handler returns the OTLP/HTTP handler, for mounting on another server
// (and for fuzzing); Start serves it on HTTPEndpoint, behind the guard.
func (r *Receiver) Handler() http.Handler { return r.handler }

// Guard makes each listener admit only requests whose credentials have
// the ingest role (internal/auth), before a request's body is read. A nil
// guard leaves its listener open. Call it before Start.
func (r *Receiver) Guard(grpcGuard, httpGuard *auth.Guard) {
	r.grpcGuard, r.httpGuard = grpcGuard, httpGuard
}

// Start listens on the configured endpoints and serves them in
// goroutines that Shutdown waits for. A second Start does nothing; Start
// after Shutdown returns ErrClosed.
func (r *Receiver) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrClosed
	}
	if r.started {
		return nil
	}
	if r.grpcHTTP != nil {
		if err := r.grpcHTTP.Start(ctx); err != nil {
			return err
		}
	}
	if r.cfg.HTTPEndpoint != "" {
		h := r.handler
		if r.httpGuard != nil {
			h = r.httpGuard.HTTP(auth.RoleIngest, h)
		}
		r.httpSrv = listener.New(listener.Options{Name: "otlp http receiver", Endpoint: r.cfg.HTTPEndpoint,
			Config: r.cfg.Config, Handler: h, Logger: r.log, Registerer: r.reg})
		if err := r.httpSrv.Start(ctx); err != nil {
			if r.grpcHTTP != nil {
				r.grpcHTTP.Shutdown(ctx)
			}
			return err
		}
	}
	r.started = true
	httpAddr := ""
	if r.httpSrv != nil {
		httpAddr = r.httpSrv.Addr()
	}
	r.log.Info("otlp receiver started", "grpc", r.GRPCAddr(), "http", httpAddr)
	return nil
}

// grpcHTTP2 returns the HTTP/2 limits of the gRPC listener.
func grpcHTTP2(c Config) *http.HTTP2Config {
	return &http.HTTP2Config{
		// What one connection may ask at once. The calls beyond are
		// refused by the transport (REFUSED_STREAM), which clients retry.
		MaxConcurrentStreams: min(c.MaxConcurrentRequests, 1000),
		// What a client may send before the server reads it: the body of
		// a call is read as it arrives (readGRPCMessage), under the byte
		// budget, so the windows bound the bytes in flight, which
		// net/http's HTTP/2 server holds outside the budget until the
		// handler reads them. 256 KiB holds a request of a thousand
		// ordinary spans whole: with 64 KiB, telemetrygen's 1000-span
		// requests waited for a window update, 50 ms at the median when
		// the client's core was busy. With 1 MiB, 200 calls of 15 MiB at
		// once took the process to 520-585 MB (the streams' unread data
		// 68 MB of a 190 MB live heap), against 340-390 MB with 256 KiB.
		MaxReceiveBufferPerStream:     256 << 10,
		MaxReceiveBufferPerConnection: 4<<20 - 1,
		// Ping a silent connection, and drop it if the ping is not
		// answered: a vanished client does not keep its connection.
		SendPingTimeout: time.Minute,
		PingTimeout:     20 * time.Second,
	}
}

// acquire takes a request slot, or reports that all are taken.
func (r *Receiver) acquire() bool {
	select {
	case r.inflight <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *Receiver) release() { <-r.inflight }

// busyRetry is the wait suggested to a client refused for lack of a
// request slot or memory: requests take milliseconds, so a slot frees up
// soon.
const busyRetry = time.Second

// refuseGRPC answers an admission refusal: throttling with a RetryInfo,
// or, for a call that could never be admitted, without one.
func (r *Receiver) refuseGRPC(signal string, err error) error {
	if errors.Is(err, admission.ErrTooLarge) || errors.Is(err, ingest.ErrTooLarge) {
		r.m.refusedRequest("grpc", signal, ingest.ReasonTooLarge)
		return grpcStatus(codes.ResourceExhausted, err, 0)
	}
	r.m.refusedRequest("grpc", signal, ingest.ReasonMemory)
	return grpcStatus(codes.ResourceExhausted, err, busyRetry)
}

// GRPCAddr returns the address the gRPC listener is bound to ("" before
// Start or when off); with port 0 in the config it tells the real port.
func (r *Receiver) GRPCAddr() string {
	if r.grpcHTTP == nil {
		return ""
	}
	return r.grpcHTTP.Addr()
}

// HTTPAddr returns the address the HTTP listener is bound to ("" before
// Start or when off).
func (r *Receiver) HTTPAddr() string {
	r.mu.Lock()
	srv := r.httpSrv
	r.mu.Unlock()
	if srv == nil {
		return ""
	}
	return srv.Addr()
}

// Shutdown stops accepting connections and waits for requests in flight
// to finish, so that every request is answered and nothing acknowledged
// is lost; when ctx ends first, the remaining connections are closed and
// ctx's error is returned. It is safe to call twice and without Start.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	if !r.started {
		return nil
	}
	var errs []error
	for _, srv := range []*listener.Server{r.grpcHTTP, r.httpSrv} {
		if srv != nil {
			errs = append(errs, srv.Shutdown(ctx))
		}
	}
	r.log.Info("otlp receiver stopped")
	return errors.Join(errs...)
}
