// Package admission decides whether a receiver may take a request now,
// so that evident's memory stays bounded whatever its clients send.
//
// Two checks, both cheap enough for every request:
//   - a memory limiter, as the OpenTelemetry Collector's memory_limiter
//     does: Start sets the Go runtime's memory limit (GOMEMLIMIT) and
//     samples the memory the runtime holds every CheckInterval; above
//     RefuseAbovePercent of the limit, Admit refuses until it falls back;
//   - a byte budget: the request bodies held at once, raw and
//     decompressed, across every receiver. A Ticket reserves bytes as
//     they arrive, so a slow client holds only what it has sent, and a
//     flood of fast large requests is refused once the budget is spent.
//
// Receivers answer both refusals as throttling (HTTP 429 with
// Retry-After, gRPC RESOURCE_EXHAUSTED with RetryInfo), which OTLP and
// Pyroscope clients retry.
package admission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/pipeline"
)

// Errors of a refused admission; ErrMemory and ErrBudget are retryable.
var (
	// ErrMemory refuses a request while the process is above the soft
	// memory limit.
	ErrMemory = errors.New("memory above the soft limit")
	// ErrBudget refuses bytes beyond the budget of buffered request bodies.
	ErrBudget = errors.New("buffered request bytes at the limit")
	// ErrTooLarge refuses a request that alone needs more than the whole
	// budget: it could never be admitted, so it is not retryable.
	ErrTooLarge = errors.New("request needs more than max_buffered_bytes")
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("invalid admission config")

// Config configures a Controller.
type Config struct {
	// MemoryLimitBytes is set as the Go runtime's soft memory limit
	// (GOMEMLIMIT) at Start; 0 keeps the runtime's, which is the
	// GOMEMLIMIT environment variable's when set, else none. Without a
	// limit, no request is refused for memory.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
	// RefuseAbovePercent is the soft limit: above this share of the memory
	// limit, requests are refused until memory falls back below it. The
	// Collector's memory_limiter leaves 20% for spikes.
	RefuseAbovePercent int `yaml:"refuse_above_percent"`
	// CheckInterval is how often memory is sampled.
	CheckInterval time.Duration `yaml:"check_interval"`
	// MaxBufferedBytes bounds the request bodies, raw and decompressed,
	// and what decoding makes of them, that all receivers hold at once.
	// Bodies are reserved as their bytes arrive.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
	// GCPercent is set as the Go garbage collector's target percentage
	// (GOGC) at Start, unless the GOGC environment variable is set,
	// which then wins, as it does for any Go program; 0 keeps the
	// runtime's (GOGC's, else Go's 100).
	GCPercent int `yaml:"gc_percent"`
}

// DefaultConfig returns no memory limit of its own (GOMEMLIMIT from the
// environment is honoured), a soft limit at 80%, checked every 100 ms,
// and 64 MiB of buffered request bodies: with decoding at a few times
// the size of the data, ingestion then stays within a few hundred MB.
//
// The collector's target is 50 %, not Go's 100 %: serve reuses its
// decoding buffers and allocates little per span (a collection every
// 20 s under telemetrygen's 4 workers, each about 10 ms of CPU,
// 2026-12-07), so collecting twice as often costs under 1 % of its CPU,
// while the heap, mostly the model's bounded tables (12 MB live), grew
// to twice that between collections, and the pages the runtime touched
// stayed resident: from 1 M to 10 M spans the RSS grew 10.5 % at 100
// and 6.6 % at 50, at 287 and 295 thousand spans per CPU-second
// (bench/serve-load.sh, docs/architecture.md).
func DefaultConfig() Config {
	return Config{RefuseAbovePercent: 80, CheckInterval: 100 * time.Millisecond, MaxBufferedBytes: 64 << 20, GCPercent: 50}
}

// Validate reports the first problem of c.
func (c Config) Validate() error {
	switch {
	case c.MemoryLimitBytes < 0:
		return fmt.Errorf("%w: memory_limit_bytes %d, want >= 0 (0: GOMEMLIMIT or none)", ErrConfig, c.MemoryLimitBytes)
	case c.MemoryLimitBytes > 0 && c.MemoryLimitBytes < 64<<20:
		return fmt.Errorf("%w: memory_limit_bytes %d, want at least 64 MiB", ErrConfig, c.MemoryLimitBytes)
	case c.RefuseAbovePercent < 10 || c.RefuseAbovePercent > 100:
		return fmt.Errorf("%w: refuse_above_percent %d, want 10 to 100", ErrConfig, c.RefuseAbovePercent)
	case c.CheckInterval <= 0:
		return fmt.Errorf("%w: check_interval %s, want > 0", ErrConfig, c.CheckInterval)
	case c.MaxBufferedBytes < 1<<20:
		return fmt.Errorf("%w: max_buffered_bytes %d, want at least 1 MiB", ErrConfig, c.MaxBufferedBytes)
	case c.GCPercent < 0:
		return fmt.Errorf("%w: gc_percent %d, want >= 0 (0: GOGC or Go's 100)", ErrConfig, c.GCPercent)
	}
	return nil
}

// Controller admits requests. It is a pipeline.Component (Start samples
// memory; without Start only the byte budget applies) and safe for
// concurrent use.
type Controller struct {
	cfg Config
	log *slog.Logger

	over     atomic.Bool
	buffered atomic.Int64
	limit    atomic.Int64 // the runtime's memory limit while sampling, 0 for none

	// freed is closed, and cleared, when bytes are released while a
	// ReserveWait waits for them; nil while none waits.
	freedMu sync.Mutex
	freed   chan struct{}

	// waiting is the request ReserveRead lets wait for room, with the
	// bytes it waits for, which Reserve keeps free for it; nil while none
	// waits.
	waiting atomic.Pointer[waiter]

	memLimited prometheus.GaugeFunc

	loop pipeline.Loop
}

// New returns a controller; metrics of memory in use and bytes buffered
// are registered with reg (nil: not registered).
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg, log: logger}
	c.memLimited = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "evident_admission_memory_limited",
		Help: "1 while memory is above the soft limit and requests are refused.",
	}, func() float64 {
		if c.over.Load() {
			return 1
		}
		return 0
	})
	if reg != nil {
		for _, g := range []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "evident_admission_buffered_bytes",
				Help: "Bytes of request bodies, raw and decompressed, held by the receivers.",
			}, func() float64 { return float64(c.buffered.Load()) }),
			c.memLimited,
		} {
			if err := reg.Register(g); err != nil {
				return nil, fmt.Errorf("register admission metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Default returns a controller with DefaultConfig and no metrics, for a
// receiver that was given none.
func Default() *Controller {
	c, _ := New(DefaultConfig(), nil, nil)
	return c
}

// Start sets the memory limit and samples memory until Shutdown. It is
// safe to call twice.
func (c *Controller) Start(ctx context.Context) error {
	return c.loop.Start(ctx, func() error {
		if c.cfg.MemoryLimitBytes > 0 {
			debug.SetMemoryLimit(c.cfg.MemoryLimitBytes)
		}
		// A negative input reads the limit without changing it; math.MaxInt64
		// means none was set.
		if l := debug.SetMemoryLimit(-1); l > 0 && l < 1<<62 {
			c.limit.Store(l)
		}
		if _, env := os.LookupEnv("GOGC"); c.cfg.GCPercent > 0 && !env {
			debug.SetGCPercent(c.cfg.GCPercent)
		}
		c.log.Info("admission started", "memory_limit_bytes", c.limit.Load(), "refuse_above_percent", c.cfg.RefuseAbovePercent,
			"max_buffered_bytes", c.cfg.MaxBufferedBytes, "gc_percent", gcPercent())
		return nil
	}, c.sample)
}

// gcPercent returns the garbage collector's target percentage now (-1:
// off); debug.SetGCPercent reads it only by changing it.
func gcPercent() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// Shutdown stops sampling; safe to call twice and without Start.
func (c *Controller) Shutdown(ctx context.Context) error { return c.loop.Stop(ctx) }

// memoryMetrics are what GOMEMLIMIT limits: all memory mapped by the
// runtime less the heap memory returned to the system. Reading them does
// not stop the world, unlike runtime.ReadMemStats.
var memoryMetrics = [...]string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

// sample samples memory every CheckInterval until ctx ends. Without a
// memory limit there is nothing to sample, and it waits without waking
// the process.
func (c *Controller) sample(ctx context.Context) {
	if c.limit.Load() == 0 { // set by Start, before sample runs
		<-ctx.Done()
		return
	}
	samples := make([]metrics.Sample, len(memoryMetrics))
	for i, name := range memoryMetrics {
		samples[i].Name = name
	}
	t := time.NewTicker(c.cfg.CheckInterval)
	defer t.Stop()
	for {
		limit := c.limit.Load()
		metrics.Read(samples)
		inUse := int64(samples[0].Value.Uint64() - samples[1].Value.Uint64())
		over := inUse > limit/100*int64(c.cfg.RefuseAbovePercent)
		if was := c.over.Swap(over); was != over {
			c.log.Warn("memory soft limit", "refusing", over, "in_use_bytes", inUse, "limit_bytes", limit)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Admit returns ErrMemory while memory is above the soft limit.
func (c *Controller) Admit() error {
	if c.over.Load() {
		return fmt.Errorf("%w of %d%% of %d bytes, retry later", ErrMemory, c.cfg.RefuseAbovePercent, c.limit.Load())
	}
	return nil
}

// MaxBuffered returns the budget of buffered bytes.
func (c *Controller) MaxBuffered() int64 { return c.cfg.MaxBufferedBytes }

// Buffered returns the bytes reserved by tickets now.
func (c *Controller) Buffered() int64 { return c.buffered.Load() }

// Ticket returns an empty reservation for one request; its owner calls
// Release when the request's buffers are no longer used.
//
// Receivers reserve the bytes they read and decompress, and an estimate
// of what decoding makes of them (DecodedSpanBytes per span), so that the
// budget bounds the memory of the requests in flight, not only of their
// bodies.
func (c *Controller) Ticket() *Ticket { return &Ticket{c: c} }

// Ticket holds the bytes one request has reserved. It is safe for
// concurrent use: a gRPC call's deadline may release it while its
// handler still runs, and what the handler reserves after is refused.
type Ticket struct {
	c *Controller

	mu     sync.Mutex
	n      int64
	closed bool
}

// waiter is a request waiting for room (ReserveRead).
type waiter struct {
	t    *Ticket
	need int64
}

// errReleased refuses reservations on a released ticket.
var errReleased = errors.New("request ended")

// Reserve reserves n more bytes, or reserves nothing and returns
// ErrBudget when the budget cannot hold them now, or ErrTooLarge when the
// request would hold more than the whole budget.
func (t *Ticket) Reserve(n int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("%w: %w", ErrBudget, errReleased)
	}
	max := t.c.cfg.MaxBufferedBytes
	if t.n+n > max {
		return fmt.Errorf("%w: %d bytes, max_buffered_bytes %d", ErrTooLarge, t.n+n, max)
	}
	for {
		cur, room := t.c.buffered.Load(), max
		if w := t.c.waiting.Load(); w != nil && w.t != t {
			room -= w.need // kept for the request waiting for room
		}
		if cur+n > room {
			return fmt.Errorf("%w of %d bytes, retry later", ErrBudget, max)
		}
		if t.c.buffered.CompareAndSwap(cur, cur+n) {
			t.n += n
			return nil
		}
	}
}

// ReserveWait reserves n more bytes as Reserve does, but while the
// budget cannot hold them it waits for other tickets to release bytes,
// until ctx ends; it then returns Reserve's ErrBudget. It is for a
// reservation held briefly by many requests in turn (the spans decoded
// from a request, until the consumer has them): waiting a little costs
// the client less than a refusal, which OTLP clients answer by backing
// off for a second.
func (t *Ticket) ReserveWait(ctx context.Context, n int64) error {
	for {
		freed := t.c.waitFreed()
		err := t.Reserve(n)
		if err == nil || !errors.Is(err, ErrBudget) || errors.Is(err, errReleased) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-freed:
		}
	}
}

// ReserveRead reserves n more bytes of a request that is being read, as
// Reserve does; when the budget cannot hold them, one request so refused
// at a time waits up to readWait for room, which the others may not take
// meanwhile, rather than being refused: the others are refused at once
// and give back what they read. Requests reserve as their bytes arrive,
// so when more arrive together than the budget holds, each holds part of
// it; without a request that waits, all would be refused part-way, and
// again when their clients retried together. With one, one finishes.
func (t *Ticket) ReserveRead(n int64) error {
	err := t.Reserve(n)
	if err == nil || !errors.Is(err, ErrBudget) || errors.Is(err, errReleased) {
		return err
	}
	c := t.c
	w := &waiter{t: t, need: n}
	if !c.waiting.CompareAndSwap(nil, w) {
		return err // another request waits for room
	}
	defer c.waiting.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), readWait)
	defer cancel()
	return t.ReserveWait(ctx, n)
}

// readWait is the most a request being read waits for room
// (ReserveRead): the others are refused at once meanwhile, so room comes
// in milliseconds unless requests that do not finish hold the budget.
const readWait = time.Second

// waitFreed returns a channel closed at the next release of bytes.
func (c *Controller) waitFreed() <-chan struct{} {
	c.freedMu.Lock()
	defer c.freedMu.Unlock()
	if c.freed == nil {
		c.freed = make(chan struct{})
	}
	return c.freed
}

// give returns n bytes to the budget and wakes the ReserveWait calls
// waiting for them.
func (c *Controller) give(n int64) {
	if n == 0 {
		return
	}
	c.buffered.Add(-n)
	c.freedMu.Lock()
	if c.freed != nil {
		close(c.freed)
		c.freed = nil
	}
	c.freedMu.Unlock()
}

// Resize makes the ticket hold n bytes: a smaller n gives the rest back
// at once, without letting other requests take what the ticket keeps; a
// larger one reserves the difference as Reserve does. It is for data that
// replaces the data it came from (a gRPC message once grpc-go has copied
// it and let go of what it read). On an error the ticket holds what it
// held.
func (t *Ticket) Resize(n int64) error {
	t.mu.Lock()
	held := t.n
	if n <= held {
		t.n = n
		t.mu.Unlock()
		t.c.give(held - n)
		return nil
	}
	t.mu.Unlock()
	return t.Reserve(n - held)
}

// Release returns every byte the ticket reserved; later reservations are
// refused. It may be called again.
func (t *Ticket) Release() {
	t.mu.Lock()
	n := t.n
	t.n = 0
	t.closed = true
	t.mu.Unlock()
	t.c.give(n)
}

// DecodedSpanBytes estimates the memory of one decoded span: its pdata
// form over gRPC and evident's telemetry.Span with its strings. A small
// request can hold many spans: counting them keeps a request of many
// tiny spans from taking many times its size.
const DecodedSpanBytes = 1 << 10

// ReadStep is the most a Reader reads, and reserves, at a time, and how
// far past what has arrived a reader of a request reserves the room of
// its buffer (ingest.ReadBody does the same).
const ReadStep = 64 << 10

// Reader returns r whose reads reserve the bytes they may return before
// reading them, as much as the caller's buffer offers (at most ReadStep a
// read): a request waiting for its body holds what it has read and the
// room its buffer has for more, which is memory taken already, not a
// step ahead of it. A read that the budget cannot hold fails with
// ErrBudget.
func (t *Ticket) Reader(r io.Reader) io.Reader { return &reader{r: r, t: t} }

type reader struct {
	r    io.Reader
	t    *Ticket
	read int64 // returned so far
	own  int64 // reserved through this reader
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) > ReadStep {
		p = p[:ReadStep]
	}
	if need := r.read + int64(len(p)) - r.own; need > 0 {
		if err := r.t.ReserveRead(need); err != nil {
			return 0, err
		}
		r.own += need
	}
	n, err := r.r.Read(p)
	r.read += int64(n)
	return n, err
}
