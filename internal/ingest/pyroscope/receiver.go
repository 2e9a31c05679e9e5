// Package pyroscope receives profiles the way a Grafana Pyroscope server
// does, so that the Pyroscope SDKs and Grafana Alloy can send them to
// evident unchanged (protocols.md §3): the legacy POST /ingest that
// pyroscope-go, pyroscope-java and pyroscope-rs use, and the Connect API
// POST /push.v1.PusherService/Push.
//
// /ingest reads pprof (telemetry.DecodePprof), JFR as the Pyroscope Java
// agent sends it, with its labels snapshot (format=jfr,
// telemetry.DecodePyroscopeJFR), and folded stacks (format=folded or
// groups, lines, or a text body without a format; telemetry.DecodeFolded);
// the Connect API carries pprof. Profiles are handed to a pipeline
// consumer as ProfileBatches whose Service comes from the application
// name or the service_name label.
//
// Answers follow Pyroscope's: 200 on success, 400 for bad parameters or
// undecodable profiles, 413 over MaxRequestBytes (after decompression,
// for all the profiles of a request together) or over the per-profile
// Limits, 415 for the formats not read (speedscope, trie, tree), 429 with Retry-After when
// the consumer's queue is full, all request slots are taken or admission
// refuses for memory, and 503 when the consumer is otherwise unavailable.
package pyroscope

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// ErrClosed is returned by Start after Shutdown: a receiver is not reused.
var ErrClosed = errors.New("pyroscope receiver shut down")

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("invalid pyroscope receiver config")

// Paths served, as a Pyroscope server registers them.
const (
	IngestPath       = "/ingest"
	PrefixIngestPath = "/pyroscope/ingest"
)

// PushPath is the Connect procedure path of PusherService.Push.
const PushPath = pushv1connect.PusherServicePushProcedure

// Config configures a Receiver.
type Config struct {
	// Endpoint is the host:port of the HTTP listener.
	Endpoint string `yaml:"endpoint"`
	// MaxRequestBytes bounds a request body and every profile in it after
	// decompression.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxConcurrentRequests bounds the requests read and decoded at once,
	// so that memory stays bounded under overload: beyond it a request is
	// refused at once with 429 and Retry-After instead of being buffered.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// Profiles bound the samples, locations and stack depth of each
	// profile received.
	Profiles telemetry.Limits `yaml:"profiles"`
	// Config bounds the listener's connections and how long a client may
	// take to send a request (read_timeout) or read the answer.
	listener.Config `yaml:",inline"`
}

// DefaultConfig returns Pyroscope's port bound to loopback, a 16 MiB
// limit (Pyroscope itself caps a profile at 4 MiB) and the listener
// package's limits.
func DefaultConfig() Config {
	return Config{
		Endpoint:        "127.0.0.1:4040",
		MaxRequestBytes: 16 << 20,
		// Profiles arrive every 10-15 s per process: a few slots suffice.
		MaxConcurrentRequests: 16,
		Profiles:              telemetry.DefaultLimits(),
		Config:                listener.DefaultConfig(),
	}
}

// Validate reports the first problem of c.
func (c Config) Validate() error {
	if err := listener.ValidateEndpoint(c.Endpoint); err != nil {
		return fmt.Errorf("%w: endpoint %q: %w", ErrConfig, c.Endpoint, err)
	}
	if c.MaxRequestBytes <= 0 || c.MaxRequestBytes > telemetry.MaxProfileSize {
		// The most the engine reads back of a logged request on replay.
		return fmt.Errorf("%w: max_request_bytes %d, want 1 byte to %d (256 MiB, the most a logged request may take on replay)", ErrConfig, c.MaxRequestBytes, telemetry.MaxProfileSize)
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

// Receiver serves the Pyroscope ingestion endpoints. It is a
// pipeline.Component.
type Receiver struct {
	cfg      Config
	profiles pipeline.Consumer[[]*telemetry.ProfileBatch]
	log      *slog.Logger
	m        *metrics
	handler  http.Handler
	guard    *auth.Guard // nil: no credentials asked
	adm      *admission.Controller
	dec      *ingest.Decompressor
	// slots holds a profile decoder per request that may be decoded at
	// once (MaxConcurrentRequests): a request takes one, decodes with it
	// and gives it back, so that its buffers serve the next request.
	slots chan *telemetry.ProfileDecoder

	srv *listener.Server

	mu      sync.Mutex
	started bool
	stopped bool
}

var _ pipeline.Component = (*Receiver)(nil)

// New returns a receiver that hands profiles to the consumer. Metrics are
// registered with reg (nil: not registered). adm admits requests, shared
// with the other receivers (nil: a private one with the default byte
// budget).
func New(cfg Config, profiles pipeline.Consumer[[]*telemetry.ProfileBatch], logger *slog.Logger, reg prometheus.Registerer, adm *admission.Controller) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if profiles == nil {
		return nil, fmt.Errorf("%w: no profiles consumer", ErrConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register pyroscope receiver metrics: %w", err)
	}
	if adm == nil {
		adm = admission.Default()
	}
	r := &Receiver{cfg: cfg, profiles: profiles, log: logger, m: m, adm: adm,
		dec: ingest.NewDecompressor(cfg.MaxRequestBytes), slots: make(chan *telemetry.ProfileDecoder, cfg.MaxConcurrentRequests)}
	for range cfg.MaxConcurrentRequests {
		r.slots <- new(telemetry.ProfileDecoder)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(IngestPath, r.serveIngest)
	mux.HandleFunc(PrefixIngestPath, r.serveIngest)
	path, push := pushv1connect.NewPusherServiceHandler(&pusher{r: r},
		// Connect applies the limit to the message after decompression,
		// but refuses it as throttled (RESOURCE_EXHAUSTED, HTTP 429), which
		// clients retry, after inflating all of it to say its size: a
		// gzip message is read by pushGzip, which refuses it as soon as
		// it is over the limit, before Connect's own limit, one byte
		// further, is reached.
		connect.WithReadMaxBytes(int(cfg.MaxRequestBytes)+1),
		connect.WithCompression("gzip", func() connect.Decompressor { return &pushGzip{r: r} }, func() connect.Compressor { return gzip.NewWriter(nil) }))
	mux.Handle(path, r.limitPush(push))
	r.handler = r.limit(mux)
	r.srv = listener.New(listener.Options{Name: "pyroscope receiver", Endpoint: cfg.Endpoint, Config: cfg.Config,
		Handler: http.HandlerFunc(r.serveGuarded), Logger: logger, Registerer: reg,
		// HTTP/2 without TLS lets gRPC clients of PusherService (Connect
		// serves gRPC on the same path) reach a loopback or in-cluster port.
		UnencryptedHTTP2: true})
	return r, nil
}

// limit refuses a request before its body is read while memory is above
// the soft limit, and gives it a ticket on the byte budget (ticketFrom),
// released when it is answered.
func (r *Receiver) limit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.adm.Admit(); err != nil {
			r.refuseErr(w, err)
			return
		}
		t := r.adm.Ticket()
		defer t.Release()
		h.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ticketKey{}, t)))
	})
}

type ticketKey struct{}

// ticketFrom returns the request's ticket; a handler served without
// limit (none is) would get one of its own, never released.
func ticketFrom(ctx context.Context, adm *admission.Controller) *admission.Ticket {
	if t, ok := ctx.Value(ticketKey{}).(*admission.Ticket); ok {
		return t
	}
	return adm.Ticket()
}

// acquire takes a slot for decoding a request whose body has been read,
// and the slot's decoder, the request's alone until release: a client
// that sends slowly holds only the bytes it sent, never a slot.
func (r *Receiver) acquire() (dec *telemetry.ProfileDecoder, release func(), err error) {
	select {
	case d := <-r.slots:
		return d, func() { r.slots <- d }, nil
	default:
		return nil, nil, fmt.Errorf("%w: %d requests in flight, retry later", errBusy, r.cfg.MaxConcurrentRequests)
	}
}

// serveGuarded serves the listener: the guard set by Guard (before Start)
// checks credentials before a request takes a slot or its body is read.
func (r *Receiver) serveGuarded(w http.ResponseWriter, req *http.Request) {
	if r.guard == nil {
		r.handler.ServeHTTP(w, req)
		return
	}
	r.guard.HTTP(auth.RoleIngest, r.handler).ServeHTTP(w, req)
}

// Handler returns the receiver's HTTP handler, for mounting on another
// server (and for fuzzing); Start serves it on Endpoint, behind the guard.
func (r *Receiver) Handler() http.Handler { return r.handler }

// Guard makes the listener admit only requests whose credentials have the
// ingest role (internal/auth), checked before a request takes a slot or
// its body is read. Call it before Start.
func (r *Receiver) Guard(g *auth.Guard) { r.guard = g }

// Addr returns the address the listener is bound to ("" before Start);
// with port 0 in the config it tells the real port.
func (r *Receiver) Addr() string { return r.srv.Addr() }

// Start listens on Endpoint and serves in a goroutine that Shutdown waits
// for. A second Start does nothing; Start after Shutdown returns
// ErrClosed.
func (r *Receiver) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrClosed
	}
	if r.started {
		return nil
	}
	if err := r.srv.Start(ctx); err != nil {
		return err
	}
	r.started = true
	r.log.Info("pyroscope receiver started", "endpoint", r.srv.Addr())
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight;
// when ctx ends first, it closes the remaining connections and returns
// ctx's error. It is safe to call twice and without Start.
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
	err := r.srv.Shutdown(ctx)
	r.log.Info("pyroscope receiver stopped")
	return err
}
