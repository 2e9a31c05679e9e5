package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Watermarks persists how far each source has been read. The SQLite
// store implements it; it must be safe for concurrent use.
type Watermarks interface {
	// SourceWatermark returns the end of the last window read, the zero
	// time when none was.
	SourceWatermark(ctx context.Context, name string) (time.Time, error)
	// SetSourceWatermark records the end of a window read.
	SetSourceWatermark(ctx context.Context, name string, t time.Time) error
	// SourceProgress returns what was recorded of a window left
	// unfinished (the poller's record of it, encoded), nil when nothing
	// was.
	SourceProgress(ctx context.Context, name string) ([]byte, error)
	// SetSourceProgress records it; nil deletes it.
	SetSourceProgress(ctx context.Context, name string, progress []byte) error
}

// PollerConfig configures how serve polls the sources.
type PollerConfig struct {
	// Interval is the time between two polls.
	Interval time.Duration `yaml:"interval"`
	// Lag keeps the window this far behind now, so that data still being
	// ingested by the store is not missed.
	Lag time.Duration `yaml:"lag"`
	// Lookback is how far back the first poll reads, when no watermark is
	// recorded.
	Lookback time.Duration `yaml:"lookback"`
	// MaxWindow bounds one pull; a longer gap is caught up window by window.
	MaxWindow time.Duration `yaml:"max_window"`
	// MaxBackoff bounds the wait after 429/5xx answers, which doubles
	// from Interval/4 with jitter.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// DefaultPollerConfig returns the defaults: every minute, 1 minute behind,
// 1 hour back at first, windows of at most 1 hour.
func DefaultPollerConfig() PollerConfig {
	return PollerConfig{Interval: time.Minute, Lag: time.Minute, Lookback: time.Hour, MaxWindow: time.Hour, MaxBackoff: 10 * time.Minute}
}

// Validate reports a bad configuration.
func (c PollerConfig) Validate() error {
	if c.Interval <= 0 || c.Lookback <= 0 || c.MaxWindow <= 0 || c.MaxBackoff <= 0 || c.Lag < 0 {
		return errors.New("sources: interval, lookback, max_window and max_backoff must be positive, lag not negative")
	}
	return nil
}

// PollerDeps are what a Poller uses.
type PollerDeps struct {
	Pull       Pull
	Watermarks Watermarks
	Traces     pipeline.Consumer[[]telemetry.Span]
	Profiles   pipeline.Consumer[[]*telemetry.ProfileBatch]
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Lead, when set, says whether this process is the one that polls,
	// of several replicas sharing the store (the holder of a lock): the
	// others stand by and ask again at every interval. Nil: it always is.
	Lead func(ctx context.Context) (bool, error)
	// Redact, when set, is the redaction of free text (a span name): the
	// record of a window left unfinished holds no name it would change.
	Redact func(string) string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Poller keeps serve current from the sources alone: every interval it
// reads the window from the persisted watermark to now minus the lag
// and advances the watermark once the window is handed on, so that a
// restart resumes where the last poll ended. A failing source is logged,
// counted and retried; it never stops serve.
type Poller struct {
	cfg  PollerConfig
	deps PollerDeps
	name string

	up          prometheus.Gauge
	watermark   prometheus.Gauge
	lastSuccess prometheus.Gauge
	polls       *prometheus.CounterVec
	polling     prometheus.Gauge
	clockSkew   prometheus.Gauge
	gaveUp      prometheus.Counter

	// progress is the window being read, kept when a poll fails
	// part-way, and recorded in the store then (saved) so that a
	// restart resumes it (loaded once); only Poll uses them.
	progress *windowProgress
	loaded   bool
	saved    bool
	// role is what this replica did at the last poll (Lead).
	role role
	// skewed says the sources' clock was warned of: once while it
	// stays off.
	skewed bool

	mu      sync.Mutex
	loop    pipeline.Loop
	healthy bool
	lastErr error
}

var _ pipeline.Component = (*Poller)(nil)

// NewPoller returns a poller of the sources of deps.Pull. name keys its
// watermark and metrics ("tempo+pyroscope").
func NewPoller(name string, cfg PollerConfig, deps PollerDeps) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if why, least := shortLag(cfg.Lag, deps.Pull); why != "" {
		deps.Logger.Warn(fmt.Sprintf("sources: lag %s is shorter than the stores need (%s): what they hold only after its window is read is never read; keep lag at %s or more", cfg.Lag, why, least))
	}
	p := &Poller{cfg: cfg, deps: deps, name: name,
		up:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "evident_source_up", Help: "1 when the last poll of the query-API source succeeded.", ConstLabels: prometheus.Labels{"source": name}}),
		watermark:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "evident_source_watermark_timestamp_seconds", Help: "Unix time up to which the source has been read: now minus this is how old the freshest telemetry read is.", ConstLabels: prometheus.Labels{"source": name}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "evident_source_last_success_timestamp_seconds", Help: "Unix time at which the last successful poll of the query-API source ended.", ConstLabels: prometheus.Labels{"source": name}}),
		polls:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "evident_source_polls_total", Help: "Polls of the query-API source by result.", ConstLabels: prometheus.Labels{"source": name}}, []string{"result"}),
		polling:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "evident_source_polling", Help: "1 when this process polls the query-API source, 0 while another replica sharing the store does.", ConstLabels: prometheus.Labels{"source": name}}),
		gaveUp:      prometheus.NewCounter(prometheus.CounterOpts{Name: "evident_source_given_up_total", Help: "Items of a window (a trace, a service's profile of a part) given up after failing alone at several polls while the source answered the rest.", ConstLabels: prometheus.Labels{"source": name}}),
		clockSkew:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "evident_source_clock_skew_seconds", Help: "How far this process's clock is ahead of the query-API source's (its Date header; negative: behind), of the source furthest off.", ConstLabels: prometheus.Labels{"source": name}}),
	}
	if deps.Lead == nil {
		p.polling.Set(1)
	}
	// Both results exist from the start, so that a rate of errors is 0
	// rather than no data.
	p.polls.WithLabelValues("ok")
	p.polls.WithLabelValues("error")
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{p.up, p.watermark, p.lastSuccess, p.polls, p.polling, p.clockSkew, p.gaveUp} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register source metrics: %w", err)
			}
		}
	}
	return p, nil
}

// The delays before what a store receives can be queried, measured
// against real servers (docs/sources.md): Tempo's search finds spans up to
// a minute after they arrive; an SDK uploads a profile at the end of its
// period (pyroscope-go: 15 s), which Pyroscope makes queryable seconds
// later.
const (
	tempoDelay     = time.Minute
	pyroscopeDelay = 30 * time.Second
)

// shortLag says why lag is too short for the sources of pull, and the
// least it should be; "" when it is not too short.
func shortLag(lag time.Duration, pull Pull) (string, time.Duration) {
	switch {
	case pull.Tempo != nil && lag < tempoDelay:
		return fmt.Sprintf("Tempo's search finds spans up to %s after they arrive", tempoDelay), tempoDelay
	case pull.Pyroscope != nil && lag < pyroscopeDelay:
		return "a profiler uploads at the end of its period, pyroscope-go every 15s, and Pyroscope stores it seconds later", pyroscopeDelay
	}
	return "", 0
}

// Healthy reports whether the last poll succeeded, and its error if not.
func (p *Poller) Healthy() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthy, p.lastErr
}

// Start starts polling; a second Start does nothing.
func (p *Poller) Start(ctx context.Context) error { return p.loop.Start(ctx, nil, p.run) }

// Shutdown stops polling and waits for a poll in progress to end; it is
// safe to call twice and without Start.
func (p *Poller) Shutdown(ctx context.Context) error { return p.loop.Stop(ctx) }

func (p *Poller) run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		wait := p.cfg.Interval
		caughtUp, err := p.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && (errors.Is(err, ErrRetryable) || errors.Is(err, pipeline.ErrFull)):
			backoff = min(max(2*backoff, p.cfg.Interval/4), p.cfg.MaxBackoff)
			// Full jitter, so that several evident instances spread out.
			wait = backoff/2 + rand.N(backoff/2+1)
		case err != nil:
			backoff = 0
		default:
			backoff = 0
			if !caughtUp {
				wait = 0
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// role is what a replica does of the polling (PollerDeps.Lead).
type role int

const (
	roleUnknown role = iota
	roleLead
	roleStandby
)

// Poll reads the next window, if one is due, and advances the watermark.
// It reports whether the watermark has caught up with now minus the lag.
// A window that fails part-way is read again by the next Poll, to the
// same end, without what was handed on before the failure; Poll must not
// be called concurrently. A replica that does not lead (PollerDeps.Lead)
// reads nothing and reports itself caught up.
func (p *Poller) Poll(ctx context.Context) (caughtUp bool, err error) {
	standby := false
	defer func() {
		p.mu.Lock()
		p.healthy, p.lastErr = err == nil, err
		p.mu.Unlock()
		if !standby {
			p.checkClock()
		}
		switch {
		case standby:
			// Nothing is failing.
			p.up.Set(1)
		case err == nil:
			p.up.Set(1)
			p.lastSuccess.Set(float64(p.deps.Now().UnixNano()) / 1e9)
			p.polls.WithLabelValues("ok").Inc()
		case ctx.Err() == nil:
			p.up.Set(0)
			p.polls.WithLabelValues("error").Inc()
			p.deps.Logger.Warn("source poll failed; retrying", "source", p.name, "err", err)
		}
	}()
	if p.deps.Lead != nil {
		lead, err := p.deps.Lead(ctx)
		if err != nil {
			return false, fmt.Errorf("poll %s: %w", p.name, err)
		}
		if !lead {
			if p.role != roleStandby {
				p.deps.Logger.Info("source: another replica polls; standing by", "source", p.name)
			}
			// The one that leads moves the watermark and records its
			// own progress: this replica reads them again when it leads.
			standby, p.role, p.progress, p.loaded, p.saved = true, roleStandby, nil, false, false
			p.polling.Set(0)
			// Where the replica that polls has read up to.
			if wm, err := p.deps.Watermarks.SourceWatermark(ctx, p.name); err == nil && !wm.IsZero() {
				p.watermark.Set(float64(wm.UnixNano()) / 1e9)
			}
			return true, nil
		}
		if p.role != roleLead {
			p.deps.Logger.Info("source: this replica polls", "source", p.name)
			p.role = roleLead
			p.polling.Set(1)
		}
	}
	end := p.deps.Now().Add(-p.cfg.Lag)
	from, err := p.deps.Watermarks.SourceWatermark(ctx, p.name)
	if err != nil {
		return false, err
	}
	if !p.loaded {
		if err := p.loadProgress(ctx, from); err != nil {
			return false, err
		}
		p.loaded = true
	}
	switch {
	case from.IsZero() && p.progress != nil:
		// The first window, left unfinished.
		from = p.progress.w.From
	case from.IsZero():
		from = end.Add(-p.cfg.Lookback)
	}
	if !from.Before(end) {
		return true, nil
	}
	// A window left unfinished is read again to the same end, skipping
	// what it handed on.
	pr := p.progress
	if pr == nil || !pr.w.From.Equal(from) {
		to := end
		if to.Sub(from) > p.cfg.MaxWindow {
			to = from.Add(p.cfg.MaxWindow)
		}
		pr = newWindowProgress(Window{From: from, To: to})
		p.progress = pr
	}
	to := pr.w.To
	// A long window is recorded as it goes too, so that even a crash
	// reads again only what was handed on since the last record.
	last := p.deps.Now()
	pr.checkpoint = func() error {
		now := p.deps.Now()
		if now.Sub(last) < checkpointInterval {
			return nil
		}
		last = now
		if p.deps.Lead != nil {
			// A replica that lost the lock in the middle of a window
			// (its connection to the store) stops: another may lead.
			lead, err := p.deps.Lead(ctx)
			if err != nil {
				return fmt.Errorf("%w: %w", errLostLead, err)
			}
			if !lead {
				return errLostLead
			}
		}
		p.saveProgress(ctx, pr)
		return nil
	}
	h := &consumerHandler{ctx: ctx, traces: p.deps.Traces, profiles: p.deps.Profiles}
	skip := func(err error) {
		if errors.Is(err, ErrGaveUp) {
			p.gaveUp.Inc()
			p.deps.Logger.Error("source: given up: what it holds is not read", "source", p.name, "reason", err)
			return
		}
		if errors.Is(err, ErrNoCPUSamples) {
			// Every poll would say it again.
			p.deps.Logger.Debug("source: no CPU samples", "source", p.name, "reason", err)
			return
		}
		p.deps.Logger.Info("source: skipped", "source", p.name, "reason", err)
	}
	if err := p.deps.Pull.resume(ctx, pr, h, skip); err != nil {
		if errors.Is(err, errLostLead) {
			// The record is the replica's that leads now, or this one's
			// again if it takes the lock back: read it then.
			p.progress, p.loaded = nil, false
		} else {
			p.saveProgress(ctx, pr)
		}
		return false, fmt.Errorf("poll %s window %s to %s: %w", p.name, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	if err := p.deps.Watermarks.SetSourceWatermark(ctx, p.name, to); err != nil {
		return false, err
	}
	p.progress = nil
	if p.saved {
		// Only a window starting at the watermark is resumed: a
		// record left here by a crash is ignored at the next start.
		if err := p.deps.Watermarks.SetSourceProgress(ctx, p.name, nil); err != nil {
			p.deps.Logger.Warn("source: could not delete the record of the window read", "source", p.name, "err", err)
		} else {
			p.saved = false
		}
	}
	p.watermark.Set(float64(to.UnixNano()) / 1e9)
	return !to.Before(end), nil
}

// maxSkew is how far the sources' clock may be from evident's, at the
// least (the Date header is to the second, and an answer takes time to
// come); beyond it, and beyond a quarter of lag, it is warned of.
const maxSkew = 5 * time.Second

// checkClock shows how far the local clock is from the sources', and
// warns once while it is further than lag allows for: the window ends at
// the local clock minus lag, while the store answers by the times the
// apps stamped, by their clocks, which the store's stands for.
func (p *Poller) checkClock() {
	d, which := p.deps.Pull.clockSkew()
	if which == "" {
		return
	}
	p.clockSkew.Set(d.Seconds())
	if d.Abs() <= max(p.cfg.Lag/4, maxSkew) {
		p.skewed = false
		return
	}
	if p.skewed {
		return
	}
	p.skewed = true
	off := d.Round(time.Second)
	if d > 0 {
		p.deps.Logger.Warn(fmt.Sprintf("sources: this clock is %s ahead of %s's (its Date header): a window ends at this clock minus lag %s, so what the apps stamp by a clock as far behind may be in no window read; synchronize the clocks (NTP), or raise lag by as much", off, which, p.cfg.Lag), "source", p.name)
		return
	}
	p.deps.Logger.Warn(fmt.Sprintf("sources: this clock is %s behind %s's (its Date header): each window is read that much later than lag %s says; synchronize the clocks (NTP)", -off, which, p.cfg.Lag), "source", p.name)
}

// loadProgress takes up the window a poller before this one left
// unfinished, recorded in the store, when it starts at the watermark
// (or the watermark is not set). A record that cannot be read is logged
// and the window read from its start.
func (p *Poller) loadProgress(ctx context.Context, watermark time.Time) error {
	data, err := p.deps.Watermarks.SourceProgress(ctx, p.name)
	if err != nil || data == nil {
		return err
	}
	p.saved = true
	pr, err := unmarshalProgress(data)
	switch {
	case err != nil:
		p.deps.Logger.Warn("source: the record of the window left unfinished cannot be read; reading the window from its start", "source", p.name, "err", err)
	case watermark.IsZero() || pr.w.From.Equal(watermark):
		p.progress = pr
		p.deps.Logger.Info("source: resuming the window left unfinished", "source", p.name,
			"from", pr.w.From.Format(time.RFC3339), "to", pr.w.To.Format(time.RFC3339))
	}
	return nil
}

// saveProgress records pr in the store, when anything of its window was
// handed on, so that a restart resumes the window instead of reading it
// again from its start. It runs when a poll fails, shutdown included,
// and every checkpointInterval of a long one: the record is written
// whatever ctx.
func (p *Poller) saveProgress(ctx context.Context, pr *windowProgress) {
	if pr.empty() {
		return
	}
	data, err := pr.marshal(func(name string) bool { return p.deps.Redact == nil || p.deps.Redact(name) == name })
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
		defer cancel()
		err = p.deps.Watermarks.SetSourceProgress(ctx, p.name, data)
	}
	if err != nil {
		p.deps.Logger.Warn("source: could not record the window left unfinished; a restart reads it again from its start", "source", p.name, "err", err)
		return
	}
	p.saved = true
}

// errLostLead stops a poll whose replica no longer holds the lock.
var errLostLead = errors.New("this replica lost the lead of the polling")

// saveTimeout bounds the write of a window left unfinished, and
// checkpointInterval is the longest a window is read without writing
// what it handed on.
const (
	saveTimeout        = 10 * time.Second
	checkpointInterval = 30 * time.Second
)

// consumerHandler hands what a pull decodes to the engine's consumers.
type consumerHandler struct {
	ctx      context.Context
	traces   pipeline.Consumer[[]telemetry.Span]
	profiles pipeline.Consumer[[]*telemetry.ProfileBatch]
}

func (h *consumerHandler) Spans(s []telemetry.Span) error { return h.traces.Consume(h.ctx, s) }
func (h *consumerHandler) Profile(b *telemetry.ProfileBatch) error {
	return h.profiles.Consume(h.ctx, []*telemetry.ProfileBatch{b})
}
