// Package alert delivers the alerts of evident's detections: a Router
// deduplicates and rate-limits them, links them to their evidence in the
// API, and fans them out to sinks (webhook, Alertmanager, Slack, JSON
// lines), each with its own bounded queue, worker and retries, so a slow
// or failing sink never blocks the engine nor the other sinks.
package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/report"
)

// Config tunes the Router.
type Config struct {
	// DedupeWindow: an alert whose DedupeKey fired less than this ago,
	// or fired for telemetry observed less than this from the alert's
	// own (detect.Alert.Observed), is counted and dropped; Seed carries
	// both across a restart.
	DedupeWindow time.Duration `yaml:"dedupe_window"`
	// MaxKeys bounds the keys remembered for deduplication and rate
	// limiting; the oldest half is forgotten when it is reached.
	MaxKeys int `yaml:"max_keys"`
	// KeyRate and KeyBurst limit the alerts of one kind for one service
	// (a scanner hitting every endpoint makes many distinct keys): a
	// token bucket refilled at KeyRate per second.
	KeyRate  float64 `yaml:"key_rate"`
	KeyBurst int     `yaml:"key_burst"`
	// SinkRate and SinkBurst limit what each sink is sent.
	SinkRate  float64 `yaml:"sink_rate"`
	SinkBurst int     `yaml:"sink_burst"`
	// QueueSize bounds each sink's queue; a full queue drops the alert
	// and counts it.
	QueueSize int `yaml:"queue_size"`
	// SendTimeout bounds one delivery attempt.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// Retry is the retry schedule of failed deliveries.
	Retry Retry `yaml:"retry"`
	// LinkPrefix is the API base URL alerts link to, e.g.
	// "http://127.0.0.1:8080/api/v1"; empty makes no links.
	LinkPrefix string `yaml:"link_prefix"`
}

// Retry is an exponential backoff with full jitter.
type Retry struct {
	// Initial is the first wait, Max the longest; each wait doubles.
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
	// Attempts is the most deliveries tried for one alert.
	Attempts int `yaml:"attempts"`
}

// DefaultConfig deduplicates over 10 minutes, lets one kind of alert of
// a service through at 1 a minute after a burst of 10, sends each sink at
// most 5 a second after a burst of 50, queues 1000 per sink, and tries a
// delivery 5 times over about 8 s at most.
func DefaultConfig() Config {
	return Config{
		DedupeWindow: 10 * time.Minute, MaxKeys: 100_000,
		KeyRate: 1.0 / 60, KeyBurst: 10, SinkRate: 5, SinkBurst: 50,
		QueueSize: 1000, SendTimeout: 10 * time.Second,
		Retry: Retry{Initial: 500 * time.Millisecond, Max: 5 * time.Second, Attempts: 5},
	}
}

// ErrInvalidConfig is wrapped by configuration errors.
var ErrInvalidConfig = errors.New("invalid alert configuration")

// Validate reports every problem in c.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.DedupeWindow < 0 {
		bad("dedupe_window %v is negative", c.DedupeWindow)
	}
	if c.MaxKeys < 2 {
		bad("max_keys %d is below 2", c.MaxKeys)
	}
	if c.KeyRate <= 0 || c.KeyBurst < 1 || c.SinkRate <= 0 || c.SinkBurst < 1 {
		bad("key_rate, key_burst, sink_rate and sink_burst must be positive")
	}
	if c.QueueSize < 1 {
		bad("queue_size %d is below 1", c.QueueSize)
	}
	if c.SendTimeout <= 0 {
		bad("send_timeout %v is not positive", c.SendTimeout)
	}
	if c.Retry.Initial <= 0 || c.Retry.Max < c.Retry.Initial || c.Retry.Attempts < 1 {
		bad("retry: initial must be positive, max at least initial, attempts at least 1")
	}
	if c.LinkPrefix != "" {
		if u, err := url.Parse(c.LinkPrefix); err != nil || u.Scheme == "" || u.Host == "" {
			bad("link_prefix %q is not an absolute URL", c.LinkPrefix)
		}
	}
	return errors.Join(errs...)
}

// Alert is a detection as sinks receive it: with an ID and links to its
// evidence.
type Alert struct {
	detect.Alert
	// ID identifies the alert: a hash of its DedupeKey and Observed, or
	// Time when Observed is not set.
	ID string `json:"id"`
	// Link is the alert in the API; FindingLink the finding it is about,
	// if any. Empty without a LinkPrefix.
	Link        string `json:"link,omitempty"`
	FindingLink string `json:"finding_link,omitempty"`
	// Tenant is the tenant whose telemetry fired the alert (Deps.Tenant);
	// empty for the default tenant.
	Tenant string `json:"tenant,omitempty"`
}

// Sink delivers alerts somewhere. Send is called by one goroutine per
// sink at a time and must honour ctx. An error means the delivery failed
// and will be retried, unless it is pipeline.Permanent.
type Sink interface {
	Name() string
	Send(ctx context.Context, a Alert) error
}

// Deps are the Router's collaborators.
type Deps struct {
	// Logger defaults to slog.Default(); Registerer, when set, gets the
	// metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Tenant is the tenant whose alerts the router routes, set on each
	// Alert so that a receiver can tell tenants apart; empty for the
	// default tenant.
	Tenant string
}

// Router deduplicates, rate-limits and fans alerts out to sinks. Fire is
// safe for concurrent use and never blocks.
type Router struct {
	cfg    Config
	tenant string
	log    *slog.Logger
	now    func() time.Time
	m      *metrics
	sinks  []*sinkQueue

	mu sync.Mutex
	// keys holds what deduplication knows of each dedupe key, in one
	// entry so that an alert takes one look-up: each alert of a
	// scanner's run of requests is one.
	keys   *generations[keyState]
	limits *generations[*rate.Limiter] // kind|service -> bucket
	// seededAt is when the last Seed began, zero before the first.
	seededAt time.Time

	// lifeMu guards the lifecycle; Fire holds it for reading while it
	// queues, so Shutdown never closes a queue under it.
	lifeMu  sync.RWMutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// dropsMu guards drops: per sink ("" before the fan-out) and reason,
	// the alerts dropped since the last log line about them.
	dropsMu sync.Mutex
	drops   map[[2]string]*dropCount
}

// dropCount is what dropped says of one sink and reason.
type dropCount struct {
	logged time.Time
	n      int
}

// dropLogEvery is how often at most the router logs the alerts one sink
// drops for one reason: a full queue drops many at once.
const dropLogEvery = 10 * time.Second

type sinkQueue struct {
	sink    Sink
	queue   chan Alert
	limiter *rate.Limiter
}

var _ pipeline.Component = (*Router)(nil)

// NewRouter returns a router over sinks; it delivers nothing until
// Start.
func NewRouter(cfg Config, sinks []Sink, deps Deps) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		cfg: cfg, tenant: deps.Tenant, log: deps.Logger, now: deps.Now,
		keys:   newGenerations[keyState](cfg.MaxKeys),
		limits: newGenerations[*rate.Limiter](cfg.MaxKeys),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	names := map[string]bool{}
	for _, s := range sinks {
		if names[s.Name()] {
			return nil, fmt.Errorf("%w: two sinks are named %q", ErrInvalidConfig, s.Name())
		}
		names[s.Name()] = true
		r.sinks = append(r.sinks, &sinkQueue{
			sink: s, queue: make(chan Alert, cfg.QueueSize),
			limiter: rate.NewLimiter(rate.Limit(cfg.SinkRate), cfg.SinkBurst),
		})
	}
	m, err := newMetrics(deps.Registerer, r.sinks)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

// Fire routes one alert. It records the detection latency (from the
// receipt of the triggering telemetry to now) unless an alert of the
// same occurrence fired before (Config.DedupeWindow), drops duplicates and
// alerts over their rate, and queues the rest for every sink.
func (r *Router) Fire(d detect.Alert) {
	r.route(d.Kind, d.Service, d.DedupeKey, d.Observed, d.ReceivedAt, func() detect.Alert { return d })
}

// FirePending routes an alert as Fire does, deciding on what p says of
// it (kind, service, dedupe key, observation, receipt) and building it
// with p.Alert only when it is queued: an alert dropped as a duplicate
// or over its rate is counted as Fire counts it, and never built.
func (r *Router) FirePending(p *detect.Pending) {
	r.route(p.Kind, p.Service, p.DedupeKey, p.Observed, p.ReceivedAt, p.Alert)
}

// route routes the alert build returns, deciding on its kind, service,
// dedupe key, observation and receipt: build is called only for an
// alert that is queued.
func (r *Router) route(k detect.Kind, service, key string, observed, receivedAt time.Time, build func() detect.Alert) {
	now := r.now()
	kind := string(k)
	r.mu.Lock()
	var st keyState
	if key != "" {
		st, _ = r.keys.get(key)
	}
	// An occurrence that fired was timed then: raised again by the replay
	// of the log after a crash, which keeps the receipt time, it would be
	// timed again with the downtime, though nothing paged late.
	again := key != "" && r.occurred(st.observed, observed)
	if !receivedAt.IsZero() && !again {
		r.m.latencyOf.of(kind).Observe(now.Sub(receivedAt).Seconds())
	}
	// A key that never fired has a zero last, which now.Sub saturates
	// far past the window.
	if key != "" && now.Sub(st.last) < r.cfg.DedupeWindow {
		r.mu.Unlock()
		r.m.dedupedOf.of(kind).Inc()
		return
	}
	if again {
		r.mu.Unlock()
		r.m.occurredOf.of(kind).Inc()
		return
	}
	lk := kind + "\x00" + service
	lim, ok := r.limits.get(lk)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(r.cfg.KeyRate), r.cfg.KeyBurst)
		r.limits.put(lk, lim)
	}
	if !lim.AllowN(now, 1) {
		r.mu.Unlock()
		r.dropped(kind, "", "rate_limited")
		return
	}
	if key != "" {
		st.last = now
		st.observed.add(observed)
		r.keys.put(key, st)
	}
	r.mu.Unlock()

	d := build()
	if d.Time.IsZero() {
		d.Time = now
	}
	a := r.link(d)
	r.lifeMu.RLock()
	defer r.lifeMu.RUnlock()
	if r.stopped {
		r.dropped(kind, "", "shutdown")
		return
	}
	r.m.fired.WithLabelValues(kind).Inc()
	for _, s := range r.sinks {
		select {
		case s.queue <- a:
		default:
			r.dropped(kind, s.sink.Name(), "queue_full")
		}
	}
}

// Fired is an alert that fired before the router was made, as History
// remembers it.
type Fired struct {
	// DedupeKey is the alert's; Time is when it fired.
	DedupeKey string
	Time      time.Time
	// Observed is the alert's detect.Alert.Observed; zero when it had
	// none, or History does not know it.
	Observed time.Time
}

// History is where alerts fired before a restart are kept (the store
// sink of evident serve).
type History interface {
	// Fired returns the alerts that fired at or after since, newest
	// first, at most limit of them. An alert without a dedupe key may be
	// left out. The slice is the caller's.
	Fired(ctx context.Context, since time.Time, limit int) ([]Fired, error)
}

// Seed makes the router remember, for deduplication, the alerts h holds,
// so that an alert deduplicated before a restart stays deduplicated
// after it, however long the process was down: those that fired within
// the dedupe window before now by their key (the exploit a scanner
// repeats does not page twice), all of them by their key and
// observation (the alerts the replay of the log after a crash raises
// again, for telemetry applied before it, are duplicates of those
// fired then, or of those these were duplicates of). An alert of a
// batch logged but not applied before the crash was not fired, and
// fires. It reads at most MaxKeys alerts, the newest, as many as the
// router remembers. Call it before the first Fire; it is safe for
// concurrent use with it, though, and to call again on a running router
// to learn the alerts another process stored since (an engine that takes
// over a partition of the ingest log applies again the records its last
// owner fired alerts for): what h holds is added to what the router
// remembers, which forgets nothing for it but the oldest observations
// of a key beyond the few it keeps. Called again, it reads the alerts
// that fired since the last call began, less the longest a store sink
// may take to store one (Config.seedOverlap).
func (r *Router) Seed(ctx context.Context, h History) error {
	now := r.now()
	// Every age: a replay raises the alerts of the batches since the
	// last checkpoint, which the process fired before it crashed,
	// whenever that was. A router seeded before remembers those, and
	// reads only what was stored since, the overlap included: reading
	// every one again, max_keys of them, took seconds a tenant at each
	// assignment of partitions (BenchmarkSeedAlerts), which waited for it.
	var since time.Time
	r.mu.Lock()
	if !r.seededAt.IsZero() {
		since = r.seededAt.Add(-r.cfg.seedOverlap())
	}
	r.mu.Unlock()
	fired, err := h.Fired(ctx, since, r.cfg.MaxKeys)
	if err != nil {
		return fmt.Errorf("seed alert deduplication: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.After(r.seededAt) {
		r.seededAt = now
	}
	// Oldest first, so that the newest are the last put: they are the
	// ones a full map keeps, and a key fired twice keeps its later time.
	for i := len(fired) - 1; i >= 0; i-- {
		f := fired[i]
		if f.DedupeKey == "" {
			continue
		}
		st, _ := r.keys.get(f.DedupeKey)
		changed := st.observed.add(f.Observed)
		// What the router saw itself may be as new.
		if now.Sub(f.Time) < r.cfg.DedupeWindow && st.last.Before(f.Time) {
			st.last, changed = f.Time, true
		}
		if changed {
			r.keys.put(f.DedupeKey, st)
		}
	}
	return nil
}

// keyState is what deduplication knows of a dedupe key.
type keyState struct {
	// last is when an alert of the key last fired; zero when none did
	// within the dedupe window of a Seed.
	last time.Time
	// observed holds when the telemetry of the alerts fired showed their
	// condition (detect.Alert.Observed): an alert fired again for the
	// same telemetry, however long after, is a duplicate.
	observed observedTimes
}

// observedTimes are the newest observations of the alerts of a key that
// fired, in Unix nanoseconds, in ascending order, 0 for none. A key
// fires at most once a dedupe window, and a replay covers the batches
// since the last checkpoint (a minute by default), so a few suffice.
type observedTimes [4]int64

// seedOverlap is how far before the last Seed a Seed of the router reads
// again: what a store sink of this configuration may store that late
// after the alert fired (its queue drained at SinkRate, then every
// attempt timed out and waited the longest backoff), and a dedupe window
// more, for processes whose clocks differ.
func (c Config) seedOverlap() time.Duration {
	late := float64(c.QueueSize)/c.SinkRate*float64(time.Second) +
		float64(c.Retry.Attempts)*float64(c.SendTimeout+c.Retry.Max) + float64(c.DedupeWindow)
	if late >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(late)
}

// add notes that an alert observed at fired, unless at is zero or ats
// has as many newer observations as it keeps: a Seed of a running router
// adds older observations than those it fired for itself, and they must
// not push those out. It reports whether ats changed.
func (ats *observedTimes) add(at time.Time) bool {
	if at.IsZero() {
		return false
	}
	n := at.UnixNano()
	if slices.Contains(ats[:], n) || n < ats[0] {
		return false
	}
	// Drop the oldest and insert n in order.
	i := 0
	for i+1 < len(ats) && ats[i+1] < n {
		ats[i] = ats[i+1]
		i++
	}
	ats[i] = n
	return true
}

// occurred reports whether an alert of a key whose observations are ats
// fired for telemetry observed at, or less than the dedupe window from
// it: the same telemetry applied again, or telemetry of the same
// occurrence, which a live router deduplicated by the window.
func (r *Router) occurred(ats observedTimes, at time.Time) bool {
	if at.IsZero() {
		return false
	}
	for _, o := range ats {
		if o == 0 {
			continue
		}
		// Sub saturates, as a difference of the nanoseconds would not.
		if d := at.Sub(time.Unix(0, o)).Abs(); d == 0 || d < r.cfg.DedupeWindow {
			return true
		}
	}
	return false
}

// link gives an alert its ID and links.
func (r *Router) link(d detect.Alert) Alert {
	at := d.Observed
	if at.IsZero() {
		at = d.Time
	}
	sum := sha256.Sum256([]byte(d.DedupeKey + "\x00" + strconv.FormatInt(at.UnixNano(), 10)))
	a := Alert{Alert: d, ID: hex.EncodeToString(sum[:8]), Tenant: r.tenant}
	if p := strings.TrimSuffix(r.cfg.LinkPrefix, "/"); p != "" {
		// A reader of another tenant than the default needs it named,
		// and a link carries no header.
		var q string
		if r.tenant != "" {
			q = "?" + url.Values{auth.TenantParam: {r.tenant}}.Encode()
		}
		a.Link = p + "/alerts/" + a.ID + q
		if f := d.Evidence.Finding; f != nil {
			a.FindingLink = p + "/findings/" + report.FindingID(findings.Finding{
				Service: f.Service, Vulnerability: findings.Vulnerability{ID: f.VulnID}, Package: findings.Package{PURL: f.PURL},
			}) + q
		}
	}
	return a
}

// Start starts one worker per sink. It is safe to call twice.
func (r *Router) Start(context.Context) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.started || r.stopped {
		return nil
	}
	r.started = true
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, s := range r.sinks {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.work(ctx, s)
		}()
	}
	return nil
}

// Shutdown lets the workers deliver what is queued until ctx ends, then
// cancels the deliveries in progress and waits for the workers. It is
// safe to call twice and without Start.
func (r *Router) Shutdown(ctx context.Context) error {
	r.lifeMu.Lock()
	if r.stopped {
		r.lifeMu.Unlock()
		return nil
	}
	r.stopped = true
	started := r.started
	if started {
		for _, s := range r.sinks {
			close(s.queue)
		}
	}
	r.lifeMu.Unlock()
	if !started {
		return nil
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		<-done
		return fmt.Errorf("alert router shutdown: %w", ctx.Err())
	}
}

// dropped counts an alert of kind dropped by sink ("" before the fan-out)
// for reason, and logs it: the first of a sink and reason at once, the
// next at most every dropLogEvery with how many since, so that an alert
// lost is never only a counter.
func (r *Router) dropped(kind, sink, reason string) {
	r.m.dropped.WithLabelValues(kind, sink, reason).Inc()
	now := r.now()
	r.dropsMu.Lock()
	if r.drops == nil {
		r.drops = map[[2]string]*dropCount{}
	}
	k := [2]string{sink, reason}
	d := r.drops[k]
	if d == nil {
		d = &dropCount{}
		r.drops[k] = d
	}
	d.n++
	n := d.n
	if !d.logged.IsZero() && now.Sub(d.logged) < dropLogEvery {
		r.dropsMu.Unlock()
		return
	}
	d.logged, d.n = now, 0
	r.dropsMu.Unlock()
	args := []any{"reason", reason, "kind", kind, "dropped", n, "hint", dropHint(sink, reason)}
	if sink != "" {
		args = append([]any{"sink", sink}, args...)
	}
	r.log.Warn("alerts dropped", args...)
}

// dropHint says what a drop by sink for reason means.
func dropHint(sink, reason string) string {
	switch {
	case reason == "rate_limited" && sink == "":
		return "more alerts of one kind for one service than alerts.key_rate and key_burst allow"
	case reason == "rate_limited":
		return "more alerts for this sink than alerts.sink_rate and sink_burst allow"
	case reason == "queue_full":
		return "the sink takes alerts slower than they come: its queue (alerts.queue_size) is full"
	}
	return "the router stopped before the alert was delivered"
}

// maxLostIDs bounds the IDs the log line of the alerts a shutdown left
// undelivered names.
const maxLostIDs = 20

// work delivers one sink's queue. What it still holds when Shutdown
// gives up is dropped, and said in the log: the metric goes with the
// process, and neither a restart nor its replay sends those alerts again
// (the store sink kept them, so they are duplicates then).
func (r *Router) work(ctx context.Context, s *sinkQueue) {
	name := s.sink.Name()
	var lost []string
	n := 0
	for a := range s.queue {
		if ctx.Err() != nil {
			r.m.dropped.WithLabelValues(string(a.Kind), name, "shutdown").Inc()
			if n++; len(lost) < maxLostIDs {
				lost = append(lost, a.ID)
			}
			continue
		}
		if !s.limiter.Allow() {
			r.dropped(string(a.Kind), name, "rate_limited")
			continue
		}
		r.deliver(ctx, s.sink, a)
	}
	if n > 0 {
		r.log.Error("alerts not delivered: the shutdown timeout ended while they were queued", "sink", name, "alerts", n, "ids", lost)
	}
}

// deliver sends with retries: exponential backoff with full jitter,
// bounded in attempts and in wait.
func (r *Router) deliver(ctx context.Context, s Sink, a Alert) {
	name, kind := s.Name(), string(a.Kind)
	wait := r.cfg.Retry.Initial
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, r.cfg.SendTimeout)
		start := time.Now()
		err := s.Send(sctx, a)
		cancel()
		r.m.sendSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		if err == nil {
			r.m.sent.WithLabelValues(kind, name).Inc()
			return
		}
		if pipeline.IsPermanent(err) || attempt >= r.cfg.Retry.Attempts || ctx.Err() != nil {
			r.m.dropped.WithLabelValues(kind, name, "failed").Inc()
			r.log.Error("deliver alert", "sink", name, "alert", a.ID, "attempts", attempt, "err", err)
			return
		}
		r.m.retries.WithLabelValues(name).Inc()
		t := time.NewTimer(rand.N(wait) + 1)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, r.cfg.Retry.Max)
	}
}

// generations is a bounded map that forgets its oldest half when full.
type generations[V any] struct {
	max       int
	cur, prev map[string]V
}

func newGenerations[V any](max int) *generations[V] {
	return &generations[V]{max: max, cur: make(map[string]V)}
}

func (g *generations[V]) get(k string) (V, bool) {
	if v, ok := g.cur[k]; ok {
		return v, true
	}
	v, ok := g.prev[k]
	return v, ok
}

func (g *generations[V]) put(k string, v V) {
	if len(g.cur) >= g.max/2 {
		g.prev, g.cur = g.cur, make(map[string]V, len(g.cur))
	}
	g.cur[k] = v
}
