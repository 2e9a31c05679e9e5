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
//     RESOURCE_EXHAUSTED with a retry delay; over gRPC before grpc-go
//     reads the message, over HTTP before the body is decoded;
//   - a request that alone would need more than the byte budget: 413 /
//     RESOURCE_EXHAUSTED without retry information.
//
// Listeners, timeouts and connection caps come from package listener
// (docs/security.md).
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
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcencoding "google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP servers MUST accept gzip (protocols.md §1.1); New registers zstd and snappy
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/tap"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/tlsconfig"
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
	// and how long a client may take: over HTTP, to send a request
	// (read_timeout) or read the answer; over gRPC, read_header_timeout
	// bounds the connection's handshake, read_timeout one call, and
	// idle_timeout closes a connection without calls.
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
	if c.MaxRequestBytes > 1<<30 {
		return fmt.Errorf("%w: max_request_bytes %d, want at most 1 GiB", ErrConfig, c.MaxRequestBytes)
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
	bufs     sync.Pool     // *body
	inflight chan struct{} // a slot per request being served
	// freeSpans keeps the span slices the consumer gave back
	// (telemetry.WithRelease), freeTexts where the texts of finished
	// trace requests were, and freeMessages their gRPC messages, for the
	// next requests to decode and read into; putSpans is freeSpans.put,
	// made once.
	freeSpans    freeList[[]telemetry.Span]
	freeTexts    freeList[*telemetry.Texts]
	freeMessages freeList[[]byte]
	putSpans     func([]telemetry.Span)
	// grpcGuard and httpGuard admit requests by their credentials; nil:
	// none asked.
	grpcGuard, httpGuard *auth.Guard
	// grpcTLS serves the gRPC listener's certificates; nil without TLS.
	// The HTTP listener has its own, from the same files.
	grpcTLS *tlsconfig.Server
	reg     prometheus.Registerer

	mu       sync.Mutex
	started  bool
	stopped  bool
	grpcSrv  *grpc.Server
	httpSrv  *listener.Server
	grpcAddr string
	wg       sync.WaitGroup
}

var _ pipeline.Component = (*Receiver)(nil)

// New returns a receiver that hands traces and profiles to the given
// consumers. A nil consumer turns its signal off: its HTTP path answers
// 404 and its gRPC service UNIMPLEMENTED. Metrics are registered with reg
// (nil: not registered). adm admits requests, shared with the other
// receivers (nil: a private one with the default byte budget). With a
// gRPC endpoint, New registers evident's zstd and snappy compressors with
// grpc-go (registerGRPCCompressors), so it must run before gRPC calls do.
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
	if cfg.GRPCEndpoint != "" {
		// grpc-go takes compressors from a process-wide registry only.
		for _, name := range registerGRPCCompressors(cfg.MaxRequestBytes) {
			logger.Warn("another package registered this gRPC compressor: its memory bounds apply, not evident's", "grpc_encoding", name)
		}
	}
	r := &Receiver{cfg: cfg, traces: traces, profiles: profiles, log: logger, m: m, adm: adm, reg: reg,
		dec: ingest.NewDecompressor(cfg.MaxRequestBytes), inflight: make(chan struct{}, cfg.MaxConcurrentRequests),
		freeSpans: newFreeList(sliceBytes[telemetry.Span]), freeTexts: newFreeList(textsBytes), freeMessages: newFreeList(sliceBytes[byte])}
	r.putSpans = r.freeSpans.put
	if cfg.GRPCEndpoint != "" && cfg.TLS.Enabled() {
		if r.grpcTLS, err = tlsconfig.NewServer(cfg.TLS, tlsconfig.ServerOptions{Name: "otlp grpc receiver",
			NextProtos: []string{"h2"}, Logger: logger, Registerer: reg}); err != nil {
			return nil, err
		}
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
// the ingest role (internal/auth): over gRPC when a call's headers
// arrive, before grpc-go reads its message; over HTTP before a request
// takes a slot or its body is read. A nil guard leaves its listener open.
// Call it before Start.
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
	var grpcLn net.Listener
	if r.cfg.GRPCEndpoint != "" {
		var err error
		if grpcLn, err = listener.Listen(ctx, r.cfg.GRPCEndpoint, r.cfg.MaxConnections); err != nil {
			return fmt.Errorf("start otlp grpc receiver on %s: %w", r.cfg.GRPCEndpoint, err)
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
			if grpcLn != nil {
				grpcLn.Close()
			}
			return err
		}
	}
	r.started = true
	if grpcLn != nil {
		r.grpcSrv = r.newGRPCServer()
		r.grpcAddr = grpcLn.Addr().String()
		r.wg.Go(func() {
			if err := r.grpcSrv.Serve(grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.log.Error("otlp grpc receiver stopped", "endpoint", r.grpcAddr, "err", err)
			}
		})
	}
	httpAddr := ""
	if r.httpSrv != nil {
		httpAddr = r.httpSrv.Addr()
	}
	r.log.Info("otlp receiver started", "grpc", r.grpcAddr, "http", httpAddr)
	return nil
}

func (r *Receiver) newGRPCServer() *grpc.Server {
	c := r.cfg
	opts := []grpc.ServerOption{
		// grpc-go applies the limit to the decompressed message and answers
		// RESOURCE_EXHAUSTED, as OTLP asks for oversized requests.
		grpc.MaxRecvMsgSize(int(c.MaxRequestBytes)),
		// grpc-go takes one tap handle: tapGRPC runs every check that must
		// come before the message is read (credentials, then admission), so
		// a refused call costs no message buffer.
		grpc.InTapHandle(r.tapGRPC),
		// Trace requests reach the handler undecoded (traceCodec).
		grpc.ForceServerCodecV2(traceCodec{proto: grpcencoding.GetCodecV2(protoCodecName), free: r.freeMessages}),
		// Fixed windows bound what a call holds before its handler reserves
		// the read (admitGRPC).
		grpc.StaticStreamWindowSize(grpcStreamWindow),
		grpc.StaticConnWindowSize(grpcConnWindow),
		// One connection cannot open more calls than there are slots; the
		// calls beyond are refused by the transport (REFUSED_STREAM).
		grpc.MaxConcurrentStreams(uint32(min(c.MaxConcurrentRequests, 1000))),
		grpc.MaxHeaderListSize(uint32(c.MaxHeaderBytes)),
		grpc.ConnectionTimeout(c.ReadHeaderTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: c.IdleTimeout,
			// Ping a silent connection, and drop it if the ping is not
			// answered: a vanished client does not keep its slot.
			Time:    time.Minute,
			Timeout: 20 * time.Second,
		}),
		// Clients may ping every 10 s (the Collector's exporters are often
		// configured so), even without calls; faster pings close the
		// connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if r.grpcTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(r.grpcTLS.TLSConfig())))
	}
	s := grpc.NewServer(opts...)
	if r.traces != nil {
		s.RegisterService(&traceServiceDesc, &traceServer{r: r})
	}
	if r.profiles != nil {
		pprofileotlp.RegisterGRPCServer(s, &profileServer{r: r})
	}
	return s
}

// tapGRPC admits a call when its headers arrive, before grpc-go reads its
// message: the guard checks its credentials first, so a call without
// them takes no admission budget, then admitGRPC.
func (r *Receiver) tapGRPC(ctx context.Context, info *tap.Info) (context.Context, error) {
	if r.grpcGuard != nil {
		var err error
		if ctx, err = r.grpcGuard.Tap(auth.RoleIngest)(ctx, info); err != nil {
			return nil, err
		}
	}
	return r.admitGRPC(ctx, info)
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

// admitGRPC admits a call before grpc-go reads its message: memory below
// the soft limit and a request slot, held until the call ends, which also
// ends at read_timeout: a client that sends its message slowly loses the
// call and its slot. It runs on the connection's reader, so it must not
// block.
//
// A trace call reserves its read on the byte budget in its handler, just
// before grpc-go reads the message (traceServer.export); until then its
// stream holds at most the flow-control window, grpcStreamWindow, so the
// calls admitted hold at most max_concurrent_requests windows beyond the
// budget. A profiles call, served by pdata's unary handler, which runs
// only once the message is read, reserves its read here.
func (r *Receiver) admitGRPC(ctx context.Context, info *tap.Info) (context.Context, error) {
	signal, reserve := "traces", int64(0)
	if strings.Contains(info.FullMethodName, "Profiles") {
		signal, reserve = "profiles", r.grpcReadBytes()
	}
	if err := r.adm.Admit(); err != nil {
		return nil, r.refuseGRPC(signal, err)
	}
	t := r.adm.Ticket()
	if err := t.Reserve(reserve); err != nil {
		return nil, r.refuseGRPC(signal, err)
	}
	if !r.acquire() {
		t.Release()
		r.m.refusedRequest("grpc", signal, ingest.ReasonFull)
		return nil, grpcStatus(codes.ResourceExhausted, fmt.Errorf("%d requests in flight, retry later", r.cfg.MaxConcurrentRequests), busyRetry)
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, ticketKey{}, t), r.cfg.ReadTimeout)
	// grpc-go cancels the stream's context when the call ends, however it
	// ends, so this runs exactly once per admitted call.
	context.AfterFunc(ctx, func() {
		cancel()
		t.Release()
		r.release()
	})
	return ctx, nil
}

// grpcStreamWindow is each gRPC stream's flow-control window, fixed
// (grpc-go's dynamic windows grow to 16 MiB): what a client may send on
// a call before its handler asks for the message, so the calls admitted
// hold at most max_concurrent_requests windows (16 MiB by default) beyond
// the byte budget. Reading a larger message opens the window to its size,
// which costs the client one more round trip. 256 KiB holds a request of
// a thousand ordinary spans whole: with 64 KiB, telemetrygen's 1000-span
// requests waited for that round trip, 50 ms at the median when the
// client's core was busy (bench/collector-vs-evident.sh), where the
// Collector, whose windows are dynamic, answered in 5 ms.
const grpcStreamWindow = 256 << 10

// grpcConnWindow is each gRPC connection's flow-control window: grpc-go
// grants it back as data arrives, whether read or not, so it bounds the
// bytes in flight, not the bytes held, and is the most grpc-go's dynamic
// windows would reach.
const grpcConnWindow = 16 << 20

// grpcReadBytes is the most a call's message holds while grpc-go reads
// it: the message as received, its decompressed form, and the codec's
// copy of it, which overlap two at a time, each within MaxRequestBytes.
func (r *Receiver) grpcReadBytes() int64 {
	return min(2*r.cfg.MaxRequestBytes, r.adm.MaxBuffered())
}

type ticketKey struct{}

// ticketFrom returns the call's ticket, taken by admitGRPC.
func ticketFrom(ctx context.Context, adm *admission.Controller) *admission.Ticket {
	if t, ok := ctx.Value(ticketKey{}).(*admission.Ticket); ok {
		return t
	}
	return adm.Ticket()
}

// refuseGRPC answers an admission refusal: throttling with a RetryInfo,
// or, for a call that could never be admitted, without one.
func (r *Receiver) refuseGRPC(signal string, err error) error {
	if errors.Is(err, admission.ErrTooLarge) {
		r.m.refusedRequest("grpc", signal, ingest.ReasonTooLarge)
		return grpcStatus(codes.ResourceExhausted, err, 0)
	}
	r.m.refusedRequest("grpc", signal, ingest.ReasonMemory)
	return grpcStatus(codes.ResourceExhausted, err, busyRetry)
}

// GRPCAddr returns the address the gRPC listener is bound to ("" before
// Start or when off); with port 0 in the config it tells the real port.
func (r *Receiver) GRPCAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grpcAddr
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
	if r.httpSrv != nil {
		errs = append(errs, r.httpSrv.Shutdown(ctx))
	}
	if r.grpcSrv != nil {
		done := make(chan struct{})
		go func() {
			r.grpcSrv.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			r.grpcSrv.Stop()
			<-done
			errs = append(errs, fmt.Errorf("shut down otlp grpc receiver: %w", ctx.Err()))
		}
	}
	r.wg.Wait()
	r.log.Info("otlp receiver stopped")
	return errors.Join(errs...)
}
