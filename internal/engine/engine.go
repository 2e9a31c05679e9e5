// Package engine is the streaming core of evident serve: it accepts
// telemetry batches from the receivers, logs them to the store before
// acknowledging them, applies them to the runtime model on one worker
// goroutine, runs the streaming detections, re-assesses the findings a
// batch can have changed, and keeps a consistent view (assessments,
// summary, model snapshot) for the API, published again soon after a
// service new to the model sends its first batch.
//
// Secrets and personal data are masked (internal/redact) before a batch
// is logged: the log, the model and its checkpoints never hold them. The
// exploit-payload rules alone see the values as received, and the alerts
// they raise carry redacted evidence.
//
// Ingestion never waits for assessment: Consume reserves a slot in a
// bounded queue or refuses the batch with a *pipeline.FullError before
// writing anything; the worker applies batches, and re-assessment is
// coalesced to at most one run per Config.AssessInterval.
package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/safegob"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Store is what the engine needs of the persistent store; store.Store
// satisfies it, with the concurrency, ownership and error rules written
// there.
type Store interface {
	SubmitBatch(ctx context.Context, kind store.BatchKind, payload []byte) (wait func() (seq int64, err error))
	Batches(ctx context.Context, after int64, fn func(seq int64, kind store.BatchKind, payload []byte) error) error
	Checkpoint(ctx context.Context, seq int64, state []byte) error
	LoadCheckpoint(ctx context.Context) (seq int64, state []byte, err error)
	PutFindings(ctx context.Context, u store.FindingsUpdate) error
	Findings(ctx context.Context) ([]findings.Finding, error)
	AppendVerdicts(ctx context.Context, changes []store.VerdictChange) error
}

// Alerter takes the alerts the detections raise. Fire is called from the
// engine's worker and must not block: the alert router queues, and drops
// with a metric when it must.
type Alerter interface {
	Fire(a detect.Alert)
}

// pendingAlerter is an Alerter that decides on an alert before it is
// built (*alert.Router): the engine hands it the exploit-payload alerts,
// most of which a router drops as duplicates, unbuilt.
type pendingAlerter interface {
	FirePending(p *detect.Pending)
}

// Deps are the parts the engine works with.
type Deps struct {
	// Store is required.
	Store Store
	// Model is required; it may hold state already, which a checkpoint
	// found on Start replaces.
	Model *model.Model
	// Vulns resolves findings to their records (affected functions);
	// nil assesses on what the findings carry.
	Vulns assess.Vulns
	// KEV says whether Vulns holds a CISA KEV catalog: without one no
	// finding is known exploited, whether it is or not, and the engine
	// exports no evident_findings_known_exploited rather than zeros.
	KEV bool
	// Assess configures assessment: sensitivity labels, exposure
	// overrides, the evidence needed for a verdict.
	Assess assess.Config
	// Rules are the exploit-payload rules; nil uses detect.DefaultRules.
	Rules *detect.Rules
	// Attribution, when set, makes the model's attributor from the
	// findings whenever they are set (Start, SetFindings,
	// ReloadFindings, UseFindings), so that what they tell attribution
	// (the Go modules, Maven artifacts and PyPI distributions they name)
	// serves the profiles that come after; nil keeps the model's.
	Attribution func(fs []findings.Finding) *attribution.Attributor
	// Alerter receives the alerts; nil drops them.
	Alerter Alerter
	// Redactor masks span attributes before they are logged and alert
	// evidence before it is fired; nil uses redact.DefaultConfig.
	Redactor *redact.Redactor
	// Logger defaults to slog.Default(); Registerer, when set, gets the
	// engine's metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// ErrNotRunning is returned by Consume and SetFindings outside
// Start..Shutdown. It is not permanent: the sender should retry later.
var ErrNotRunning = errors.New("engine not running")

// View is what the engine concluded at one moment. It is immutable: the
// engine builds a new View after each re-assessment.
type View struct {
	// Assessments are the findings' assessments in priority order.
	Assessments []assess.Assessment
	Summary     assess.Summary
	// Snapshot is the model the assessments were made on.
	Snapshot *model.Snapshot
	// Exposure is the exposure decided for each service of Snapshot,
	// with findings or without.
	Exposure map[string]assess.ExposureResult
	// At is when the view was built.
	At time.Time
}

type state int

const (
	stateNew state = iota
	stateStarting
	stateRunning
	stateStopped
)

// Engine is the streaming core. Create it with New; it is a
// pipeline.Component.
type Engine struct {
	cfg     Config
	st      Store
	model   *model.Model
	vulns   assess.Vulns
	kev     bool
	acfg    assess.Config
	rules   *detect.Rules
	red     *redact.Redactor
	alerter Alerter
	pending pendingAlerter // alerter, when it is one
	log     *slog.Logger
	now     func() time.Time
	// attributorOf makes the model's attributor from the findings
	// (Deps.Attribution).
	attributorOf func(fs []findings.Finding) *attribution.Attributor
	m            *metrics

	// slots holds a token for every batch between Consume and the end of
	// its application, so that a full queue is known before anything is
	// written; queue carries the batches themselves, and a failed one's
	// ticket, in the order their commits end.
	slots chan struct{}
	queue chan item
	ctl   chan func()
	// inflight counts the batches handed to the store and not yet queued.
	inflight sync.WaitGroup
	// bufs holds buffers for the compressed log payloads (*[]byte): the
	// store copies a payload when it is handed over.
	bufs sync.Pool

	// mu serialises the hand-over of batches to the store, which numbers
	// them in that order, and the tickets that tell the worker that order;
	// the commit itself happens outside mu, so that concurrent batches
	// share it. mu also guards the lifecycle fields below.
	mu       sync.Mutex
	tickets  uint64 // the ticket of the next batch handed over
	state    state
	started  bool
	stopping chan struct{}
	drainCtx context.Context
	done     chan struct{}
	cancel   context.CancelFunc

	view atomic.Pointer[View]

	// Worker-owned state.
	w worker
}

// worker is the state only the worker goroutine touches (and Start,
// before the worker exists).
type worker struct {
	findings  []findings.Finding
	current   []assess.Assessment // by index into findings
	watch     *detect.FirstExecution
	anomalies *detect.Anomalies
	exploits  *detect.Scanner

	dirty        map[int]bool
	dirtyAll     bool
	spanServices map[string]bool // services whose spans arrived since the last assessment
	topoServices map[string]bool // services with a new edge or store since then
	pending      model.Changes   // new edges and stores for SensitivePaths
	pendingAt    time.Time       // receipt of the earliest of them
	// newService is set when a batch applied since the last assessment
	// made the model know a service (model.Changes.NewServices): worth an
	// assessment of its own, so that the view (the API's services) shows
	// it within AssessInterval, not at the next refresh. The model holds
	// at most MaxServices and forgets none, so this happens at most that
	// many times.
	newService bool
	exposure   map[string]assess.Exposure
	// awaitingJoin is set while the exposure of a service is unknown
	// because its spans wait for their callers, or the destinations it
	// consumes from for their producers (model.Service.Waiting): it
	// turns when the join window passes, with no new span, so assess
	// keeps looking.
	awaitingJoin bool
	// exposureDue makes the next assessment decide the exposure of every
	// service, whatever spans arrived. restore sets it, to record the
	// exposure of the restored model's services: one that becomes
	// exposed with the first batch after a restart then alerts, as it
	// does without the restart, instead of being taken as new. The
	// refresh sets it too: the spans of a service without findings do
	// not ask for its exposure, and without findings anywhere nothing
	// else would.
	exposureDue bool
	applied     int64 // sequence number of the last applied batch
	// arrived holds the batches whose commit ended before that of a batch
	// handed over earlier, by ticket; next is the ticket to apply next.
	// Applying in ticket order is applying in sequence order, so that a
	// checkpoint at the last applied sequence number covers every batch
	// before it.
	arrived       map[uint64]item
	next          uint64
	checkpointed  int64
	lastCheckTime time.Time
}

// toAssess reports whether an assessment has anything to do: findings
// or services touched since the last one, a service new to the model,
// or a join still awaited.
func (w *worker) toAssess() bool {
	return len(w.dirty) > 0 || w.dirtyAll || len(w.spanServices) > 0 || len(w.topoServices) > 0 || w.newService || w.awaitingJoin || w.exposureDue
}

// item is one accepted batch.
type item struct {
	ticket uint64
	// failed marks the ticket of a batch that was not logged: the worker
	// skips it.
	failed bool
	seq    int64
	kind   store.BatchKind
	// spans are redacted; raw are the spans as received, for the exploit
	// rules, nil after a replay (the log holds only redacted spans).
	spans, raw []telemetry.Span
	// received is the OTLP trace request spans were decoded from, as it
	// arrived (telemetry.Received), nil when the receiver did not say;
	// logged is what the log keeps of it, redacted.
	received, logged []byte
	// texts are where the texts of received are, nil when not known.
	texts *telemetry.Texts
	// redacted is set when redaction masked something in the batch.
	redacted bool
	profiles []*telemetry.ProfileBatch
	// preq is the request profiles were decoded from, as received
	// (telemetry.ReceivedProfiles), when it is what the log keeps: nil
	// when the receiver did not say, or redaction would change it.
	preq       *telemetry.ProfileRequest
	receivedAt time.Time
	// release gives raw back to the receiver that decoded it
	// (telemetry.WithRelease) once the batch is applied; nil when the
	// receiver did not offer it.
	release func([]telemetry.Span)
}

var _ pipeline.Component = (*Engine)(nil)

// New returns an engine; it does nothing until Start.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Model == nil {
		return nil, fmt.Errorf("%w: Deps.Store and Deps.Model are required", ErrInvalidConfig)
	}
	if err := deps.Assess.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, st: deps.Store, model: deps.Model, vulns: deps.Vulns, kev: deps.KEV, acfg: deps.Assess,
		rules: deps.Rules, red: deps.Redactor, alerter: deps.Alerter, log: deps.Logger, now: deps.Now,
		attributorOf: deps.Attribution,
		slots:        make(chan struct{}, cfg.QueueSize),
		queue:        make(chan item, cfg.QueueSize),
		ctl:          make(chan func()),
		stopping:     make(chan struct{}),
		done:         make(chan struct{}),
	}
	e.bufs.New = func() any { return new([]byte) }
	if e.rules == nil {
		r, err := detect.CompileRules(detect.DefaultRules())
		if err != nil {
			return nil, fmt.Errorf("compile the built-in exploit rules: %w", err)
		}
		e.rules = r
	}
	if e.red == nil {
		r, err := redact.New(redact.DefaultConfig())
		if err != nil {
			return nil, fmt.Errorf("build the default redaction: %w", err)
		}
		e.red = r
	}
	e.pending, _ = e.alerter.(pendingAlerter)
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	m, err := newMetrics(deps.Registerer, func() float64 { return float64(len(e.queue)) }, e)
	if err != nil {
		return nil, err
	}
	e.m = m
	e.w = worker{
		anomalies: detect.NewAnomalies(cfg.Anomaly),
		watch:     detect.NewFirstExecution(nil, nil),
		exploits:  e.rules.NewScanner(e.red),
		dirty:     map[int]bool{}, spanServices: map[string]bool{}, topoServices: map[string]bool{},
		exposure: map[string]assess.Exposure{}, arrived: map[uint64]item{},
	}
	e.view.Store(&View{Summary: assess.Summarize(nil), Snapshot: &model.Snapshot{}})
	return e, nil
}

// TracesConsumer returns the consumer of span batches for the receivers.
func (e *Engine) TracesConsumer() pipeline.Consumer[[]telemetry.Span] {
	return pipeline.ConsumerFunc[[]telemetry.Span](func(ctx context.Context, spans []telemetry.Span) error {
		if len(spans) == 0 {
			return nil
		}
		it := item{kind: store.BatchSpans, raw: spans, release: telemetry.Releaser(ctx, spans)}
		it.received, it.texts, _ = telemetry.Received(ctx, spans)
		return e.consume(ctx, it)
	})
}

// ProfilesConsumer returns the consumer of profile batches for the
// receivers.
func (e *Engine) ProfilesConsumer() pipeline.Consumer[[]*telemetry.ProfileBatch] {
	return pipeline.ConsumerFunc[[]*telemetry.ProfileBatch](func(ctx context.Context, ps []*telemetry.ProfileBatch) error {
		if len(ps) == 0 {
			return nil
		}
		it := item{kind: store.BatchProfiles, profiles: ps}
		it.preq, _ = telemetry.ReceivedProfiles(ctx, ps)
		return e.consume(ctx, it)
	})
}

// consume is the acknowledgement path: reserve a queue slot or refuse,
// redact, log the batch durably, queue it. Only the hand-over to the store
// is serialised; the wait for the commit is not, so concurrent batches
// share a commit and each returns when the commit holding it is durable.
func (e *Engine) consume(ctx context.Context, it item) error {
	it.receivedAt = e.now()
	signal := string(it.kind)
	select {
	case e.slots <- struct{}{}:
	default:
		e.m.batches.WithLabelValues(signal, "refused").Inc()
		return &pipeline.FullError{RetryAfter: e.cfg.RetryAfter}
	}
	queued := false
	defer func() {
		if !queued {
			<-e.slots
		}
	}()
	e.redact(&it)
	buf := e.bufs.Get().(*[]byte)
	// Back to the pool when consume returns, after wait: the store reads
	// the payload encoded into it until then.
	defer e.bufs.Put(buf)
	kind, payload, err := encode(&it, *buf)
	// Every payload is the engine's own (an S2 buffer, a gob buffer), no
	// longer read by anyone once the store's wait returns.
	if cap(payload) > cap(*buf) && cap(payload) <= maxPooledBuffer {
		*buf = payload[:0]
	}
	if err != nil {
		e.m.batches.WithLabelValues(signal, "failed").Inc()
		return pipeline.Permanent(fmt.Errorf("encode %s batch: %w", signal, err))
	}
	e.mu.Lock()
	if e.state != stateRunning {
		e.mu.Unlock()
		e.m.batches.WithLabelValues(signal, "refused").Inc()
		return ErrNotRunning
	}
	it.ticket = e.tickets
	e.tickets++
	wait := e.st.SubmitBatch(ctx, kind, payload)
	e.inflight.Add(1)
	e.mu.Unlock()
	// The request's buffer goes back to the receiver when Consume
	// returns, so the queued item must not keep it.
	it.received, it.logged, it.texts, it.preq = nil, nil, nil, nil
	defer e.inflight.Done()
	seq, err := wait()
	// The ticket is queued either way (never blocks: the slot is ours),
	// so that the worker does not wait for it; the worker frees the slot.
	queued = true
	if err != nil {
		e.queue <- item{ticket: it.ticket, failed: true}
		e.m.batches.WithLabelValues(signal, "failed").Inc()
		return fmt.Errorf("log %s batch: %w", signal, err)
	}
	it.seq = seq
	e.queue <- it
	e.m.batches.WithLabelValues(signal, "accepted").Inc()
	e.m.items.WithLabelValues(signal).Add(float64(len(it.spans) + len(it.profiles)))
	if it.redacted {
		e.m.redacted.WithLabelValues(signal).Inc()
	}
	return nil
}

// redact sets the batch that is logged and applied: the received spans
// (it.raw) or profiles, redacted.
//
// Spans that came with their request as received are logged as that
// request, redacted on the wire (redact.Redactor.TraceRequest), and
// applied as the spans a replay of the log decodes from it. Spans
// without their request, and a request the wire redaction cannot follow,
// have their spans redacted and encoded again (encode).
func (e *Engine) redact(it *item) {
	switch it.kind {
	case store.BatchSpans:
		if it.received == nil {
			it.spans = e.red.Spans(it.raw)
			it.redacted = &it.spans[0] != &it.raw[0]
			return
		}
		var err error
		it.logged, it.spans, it.redacted, err = e.red.TraceRequest(it.raw, it.received, it.texts)
		if err != nil {
			e.log.Debug("logging a trace request's spans encoded again", "spans", len(it.raw), "err", err)
		}
	case store.BatchProfiles:
		var keep bool
		it.profiles, it.redacted, keep = e.red.ProfileRequest(it.profiles, it.preq)
		if !keep {
			it.preq = nil
		}
	}
}

// Start restores the model from the last checkpoint, loads the findings,
// replays the batches logged after the checkpoint and starts the worker.
// The replay happens before Start returns, so that receivers, started
// after the engine, never feed a half-restored model; it is bounded by
// ctx. Start is safe to call twice.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.state != stateNew {
		e.mu.Unlock()
		return nil
	}
	e.state = stateStarting
	e.mu.Unlock()
	if err := e.restore(ctx); err != nil {
		e.mu.Lock()
		e.state = stateNew
		e.mu.Unlock()
		return err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stateStarting { // Shutdown came first
		cancel()
		return nil
	}
	e.state, e.started, e.cancel = stateRunning, true, cancel
	go e.run(wctx)
	return nil
}

func (e *Engine) restore(ctx context.Context) error {
	seq, state, err := e.st.LoadCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	if state != nil {
		if err := e.model.UnmarshalBinary(state); err != nil {
			return fmt.Errorf("restore checkpoint %d: %w", seq, err)
		}
		// A host called before the checkpoint is not called for the
		// first time when it is called again after the restart.
		e.learnHosts()
	}
	e.w.applied, e.w.checkpointed, e.w.lastCheckTime = seq, seq, e.now()
	fs, err := e.st.Findings(ctx)
	if err != nil {
		return fmt.Errorf("load findings: %w", err)
	}
	e.setFindings(fs)
	replayed := 0
	// Batches are replayed one at a time: one profile decoder serves all.
	var pd telemetry.ProfileDecoder
	err = e.st.Batches(ctx, seq, func(seq int64, kind store.BatchKind, payload []byte) error {
		if err := kind.Validate(); err != nil {
			// Not damage: every kind appended is validated, so a newer
			// evident logged it. Skipped like a batch that does not
			// decode, it would be lost for good at the next checkpoint.
			return fmt.Errorf("%w: logged batch %d is of kind %q, which a newer evident wrote and this one cannot replay: %s",
				store.ErrSchemaTooNew, seq, kind, store.TooNewHint)
		}
		it, err := decode(&pd, kind, payload)
		if errors.Is(err, telemetry.ErrNewerVersion) {
			// A known kind in a newer version of its encoding (the
			// version byte of profile_request_s2): refused for the same
			// reason as a kind this evident does not know.
			return fmt.Errorf("%w: logged batch %d: %v: %s", store.ErrSchemaTooNew, seq, err, store.TooNewHint)
		}
		if err != nil {
			// A batch that cannot be decoded is reported and skipped: it
			// must not keep every later batch from being applied.
			e.log.Error("skip logged batch", "seq", seq, "kind", kind, "err", err)
			e.w.applied = seq
			return nil
		}
		// A batch logged before the log kept its receipt time is dated
		// by the replay, as it was before.
		it.seq = seq
		if it.receivedAt.IsZero() {
			it.receivedAt = e.now()
		}
		e.apply(it)
		replayed++
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay batches after %d: %w", seq, err)
	}
	if replayed > 0 {
		e.log.Info("replayed logged batches", "from", seq, "batches", replayed, "to", e.w.applied)
	}
	e.w.exposureDue = true
	e.assess(ctx)
	return nil
}

// Shutdown stops accepting batches, lets the worker apply what is queued
// (until ctx ends; what is left stays in the log for the next start),
// checkpoints the model and waits for the worker. It is safe to call
// twice and without Start.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	switch e.state {
	case stateNew, stateStarting:
		e.state = stateStopped
		e.mu.Unlock()
		return nil
	case stateRunning:
		e.state = stateStopped
		e.drainCtx = ctx
		close(e.stopping)
	}
	started := e.started
	e.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		e.cancel() // the worker gives up on its store calls and exits
		return fmt.Errorf("engine shutdown: %w", ctx.Err())
	}
}

// run is the worker.
func (e *Engine) run(ctx context.Context) {
	defer close(e.done)
	defer e.cancel()
	// The assessment timer runs only while there is something to
	// assess, so that an idle engine does not wake its process: armed
	// when an event leaves work, it fires AssessInterval later, which
	// bounds both the rate of assessments and their delay.
	assessT := time.NewTimer(e.cfg.AssessInterval)
	defer assessT.Stop()
	armed := true
	checkT := time.NewTicker(e.cfg.CheckpointInterval)
	defer checkT.Stop()
	var refresh <-chan time.Time
	if e.cfg.RefreshInterval > 0 {
		t := time.NewTicker(e.cfg.RefreshInterval)
		defer t.Stop()
		refresh = t.C
	}
	for {
		select {
		case it := <-e.queue:
			e.arrive(it)
		case f := <-e.ctl:
			f()
		case <-assessT.C:
			armed = false
			e.assess(ctx)
		case <-refresh:
			e.w.dirtyAll, e.w.exposureDue = true, true
		case <-checkT.C:
			e.checkpoint(ctx)
		case <-e.stopping:
			e.mu.Lock()
			dctx := e.drainCtx
			e.mu.Unlock()
			e.drain(ctx, dctx)
			return
		}
		if !armed && e.w.toAssess() {
			assessT.Reset(e.cfg.AssessInterval)
			armed = true
		}
	}
}

// arrive applies the batch of ticket it.ticket and those arrived before
// it that waited for it, in ticket order, freeing their slots.
func (e *Engine) arrive(it item) {
	w := &e.w
	w.arrived[it.ticket] = it
	for {
		it, ok := w.arrived[w.next]
		if !ok {
			return
		}
		delete(w.arrived, w.next)
		w.next++
		if !it.failed {
			e.apply(it)
		}
		<-e.slots
	}
}

// drain applies what is queued, and what is still being committed, until
// dctx ends, then re-assesses and checkpoints.
func (e *Engine) drain(ctx, dctx context.Context) {
	committed := make(chan struct{})
	go func() {
		e.inflight.Wait() // no batch is handed over after stopping
		close(committed)
	}()
	select {
	case <-committed:
	case <-dctx.Done():
	}
	for dctx.Err() == nil {
		select {
		case it := <-e.queue:
			e.arrive(it)
			continue
		default:
		}
		break
	}
	if dctx.Err() != nil {
		return
	}
	e.assess(ctx)
	e.checkpoint(ctx)
}

// apply folds one batch into the model and runs the detections on it.
func (e *Engine) apply(it item) {
	now := e.now()
	w := &e.w
	switch it.kind {
	case store.BatchSpans:
		ch := e.model.AddSpans(it.spans)
		w.newService = w.newService || len(ch.NewServices) > 0
		e.mergedNamespaces(ch)
		raw := it.raw
		if raw == nil {
			raw = it.spans
		}
		for i := range it.spans {
			sp := &it.spans[i]
			w.exploits.Exploits(&raw[i], it.receivedAt, now, e.firePending)
			e.fire(w.anomalies.Observe(sp, it.receivedAt, now))
			// Only the exposure of services with findings is worth a
			// snapshot; new edges and stores are handled below.
			if len(w.watch.Of(sp.Service)) > 0 {
				w.spanServices[sp.Service] = true
			}
		}
		e.topology(ch, it.receivedAt)
		// Nothing applied keeps a pointer into the spans: the model, the
		// detections and their alerts copy what they keep (strings, ids,
		// times); a pending alert points at its span only during the
		// call that fires it (detect.Pending).
		if it.release != nil {
			it.release(it.raw)
		}
	case store.BatchProfiles:
		for _, b := range it.profiles {
			ch := e.model.AddProfile(b)
			w.newService = w.newService || len(ch.NewServices) > 0
			e.mergedNamespaces(ch)
			alerts, touched := w.watch.Check(ch, b.Start, it.receivedAt, now)
			e.fire(alerts)
			for _, i := range touched {
				w.dirty[i] = true
			}
			// More samples can turn unknown into not_observed or loaded.
			for _, i := range w.watch.Of(b.Service) {
				if w.current[i].Reachability.Verdict == assess.Unknown {
					w.dirty[i] = true
				}
			}
		}
	}
	w.applied = max(w.applied, it.seq)
}

// mergedNamespaces logs the services that ch showed in a second
// service.namespace, once per service (model.Changes.MergedNamespaces):
// their telemetry and findings mix, which the user must know of. Their
// findings are re-assessed: none may stay not_affected on profiles that
// may be the other service's, though nothing else of theirs changed.
func (e *Engine) mergedNamespaces(ch model.Changes) {
	for _, mg := range ch.MergedNamespaces {
		e.log.Warn("services of one service.name in several service.namespace values are merged into one: their spans, profiles, calls, stores and findings mix, and none of its findings is not_affected; give them different service.name values",
			"service", mg.Service, "namespaces", mg.Namespaces)
		e.markService(mg.Service)
	}
}

// topology notes the new edges, stores and consumed destinations of ch,
// received at at, for the next assessment: the services they touch (and
// upstream, the producers to a destination), and the sensitive paths
// they may open.
func (e *Engine) topology(ch model.Changes, at time.Time) {
	w := &e.w
	if len(ch.NewEdges) == 0 && len(ch.NewStores) == 0 && len(ch.NewConsumes) == 0 {
		return
	}
	for _, ed := range ch.NewEdges {
		w.topoServices[ed.From], w.topoServices[ed.To] = true, true
	}
	for _, st := range ch.NewStores {
		w.topoServices[st.Service] = true
	}
	for _, st := range ch.NewConsumes {
		w.topoServices[st.Service] = true
	}
	if w.pending.Empty() {
		w.pendingAt = at
	}
	w.pending.NewEdges = append(w.pending.NewEdges, ch.NewEdges...)
	w.pending.NewStores = append(w.pending.NewStores, ch.NewStores...)
	w.pending.NewConsumes = append(w.pending.NewConsumes, ch.NewConsumes...)
}

// fire counts alerts and hands them to the alerter.
func (e *Engine) fire(as []detect.Alert) {
	for _, a := range as {
		e.m.alert(a.Kind)
		if e.alerter != nil {
			e.alerter.Fire(a)
		}
	}
}

// firePending is fire of one alert not built yet: an alerter that
// decides before building gets it as it is, any other the alert built.
func (e *Engine) firePending(p *detect.Pending) {
	e.m.alert(p.Kind)
	switch {
	case e.pending != nil:
		e.pending.FirePending(p)
	case e.alerter != nil:
		e.alerter.Fire(p.Alert())
	}
}

// assess re-assesses the findings that changes since the last run can
// have affected, raises the sensitive-path alerts, records verdict
// changes and publishes a new View.
func (e *Engine) assess(ctx context.Context) {
	w := &e.w
	if !w.toAssess() {
		return
	}
	start := time.Now()
	snap := e.model.Snapshot()
	e.w.newService = false
	a := assess.New(e.acfg, e.vulns, snap)
	now := e.now()
	var exposedNow map[string]bool
	if len(w.spanServices) > 0 || len(w.topoServices) > 0 || w.awaitingJoin || w.exposureDue {
		// Exposure depends on every span of a service; it is cheap to
		// decide, so all services are compared with the last run.
		w.awaitingJoin, w.exposureDue = false, false
		for _, s := range snap.Services {
			lvl := a.Exposure(s.Name).Level
			if old, known := w.exposure[s.Name]; old != lvl {
				// A service known as not exposed that now is: the
				// sensitive stores it reaches alert, though no edge or
				// store is new (a restart knows none, and alerts none).
				if known && lvl == assess.Exposed {
					if exposedNow == nil {
						exposedNow = map[string]bool{}
					}
					exposedNow[s.Name] = true
				}
				w.exposure[s.Name] = lvl
				e.markService(s.Name)
			}
			w.awaitingJoin = w.awaitingJoin || (lvl == assess.ExposureUnknown && s.Waiting())
		}
		for svc := range upstream(snap, w.topoServices) {
			e.markService(svc)
		}
	}
	if !w.pending.Empty() || len(exposedNow) > 0 {
		receivedAt := w.pendingAt
		if w.pending.Empty() {
			receivedAt = now // the join window passed: no telemetry triggered it
		}
		e.fire(detect.SensitivePaths(w.pending, exposedNow, a, snap, receivedAt, now))
	}
	if w.dirtyAll {
		for i := range w.findings {
			w.dirty[i] = true
		}
	}
	var changes []store.VerdictChange
	for i := range w.dirty {
		old := w.current[i]
		as := a.One(w.findings[i])
		// The VEX status can change under a steady verdict (the bound
		// tightens as samples accumulate); the store audits those.
		if old.Reachability.Verdict != "" && (old.Reachability.Verdict != as.Reachability.Verdict || old.VEX.Status != as.VEX.Status) {
			f := w.findings[i]
			changes = append(changes, store.VerdictChange{
				Time: now, Service: f.Service, VulnID: f.Vulnerability.ID, PURL: f.Package.PURL,
				From: old.Reachability.Verdict, To: as.Reachability.Verdict, Reason: as.Reachability.Reason,
				VEXFrom: old.VEX.Status, VEXTo: as.VEX.Status,
			})
		}
		w.current[i] = as
	}
	e.m.reassessed.Add(float64(len(w.dirty)))
	clear(w.dirty)
	clear(w.spanServices)
	clear(w.topoServices)
	w.dirtyAll = false
	w.pending = model.Changes{}
	e.publish(a, snap, now)
	e.m.assessSeconds.Observe(time.Since(start).Seconds())
	if len(changes) > 0 {
		slices.SortFunc(changes, func(x, y store.VerdictChange) int {
			return cmp.Or(cmp.Compare(x.Service, y.Service), cmp.Compare(x.VulnID, y.VulnID), cmp.Compare(x.PURL, y.PURL))
		})
		if err := e.st.AppendVerdicts(ctx, changes); err != nil {
			e.log.Error("record verdict changes", "changes", len(changes), "err", err)
		}
	}
}

// markService marks the findings of a service for re-assessment.
func (e *Engine) markService(svc string) {
	for _, i := range e.w.watch.Of(svc) {
		e.w.dirty[i] = true
	}
}

// upstream returns the services in set and every service that reaches
// one of them, through calls or through a messaging destination it
// produces to: their blast radius may have grown.
func upstream(snap *model.Snapshot, set map[string]bool) map[string]bool {
	if len(set) == 0 {
		return nil
	}
	rev := map[string][]string{}
	for _, s := range snap.Services {
		for _, ed := range s.Edges {
			rev[ed.To] = append(rev[ed.To], s.Name)
		}
	}
	producers, consumers := snap.Destinations()
	for dest, cs := range consumers {
		for _, c := range cs {
			rev[c] = append(rev[c], producers[dest]...)
		}
	}
	out := make(map[string]bool, len(set))
	var queue []string
	for s := range set {
		out[s] = true
		queue = append(queue, s)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, u := range rev[s] {
			if !out[u] {
				out[u] = true
				queue = append(queue, u)
			}
		}
	}
	return out
}

// publish builds and stores a new View.
func (e *Engine) publish(a *assess.Assessor, snap *model.Snapshot, now time.Time) {
	as := slices.Clone(e.w.current)
	slices.SortStableFunc(as, assess.ByPriority)
	e.view.Store(newView(a, snap, as, now))
}

// newView is the view of the assessments as, in priority order, made by
// a on snap at now.
func newView(a *assess.Assessor, snap *model.Snapshot, as []assess.Assessment, now time.Time) *View {
	return &View{Assessments: as, Summary: assess.Summarize(as), Snapshot: snap, Exposure: a.ServiceExposures(), At: now}
}

// EmptyView returns the view an engine publishes when it starts on a
// store that holds nothing (no findings, no telemetry), m being a model
// that applied nothing, as of now: the view of a tenant that does not
// exist, which a read answers with and which creates nothing
// (internal/tenant).
func EmptyView(cfg assess.Config, vulns assess.Vulns, m *model.Model, now time.Time) *View {
	snap := m.Snapshot()
	return newView(assess.New(cfg, vulns, snap), snap, []assess.Assessment{}, now)
}

// checkpoint writes the model as of the last applied batch.
func (e *Engine) checkpoint(ctx context.Context) {
	w := &e.w
	if w.applied == w.checkpointed {
		return
	}
	state, err := e.model.MarshalBinary()
	if err == nil {
		err = e.st.Checkpoint(ctx, w.applied, state)
	}
	if err != nil {
		e.log.Error("checkpoint the model", "seq", w.applied, "err", err)
		return
	}
	w.checkpointed, w.lastCheckTime = w.applied, e.now()
	e.m.checkpoints.Inc()
}

// SetFindings replaces findings (uploaded scanner results), all of them
// or those of the update's services: it stores them, with the record of
// the change in the audit log, and when the engine runs, re-assesses
// every finding the store then holds before it returns. Before Start,
// Start loads them from the store.
func (e *Engine) SetFindings(ctx context.Context, u store.FindingsUpdate) error {
	if err := e.st.PutFindings(ctx, u); err != nil {
		return fmt.Errorf("store findings: %w", err)
	}
	return e.ReloadFindings(ctx)
}

// ReloadFindings makes the findings the store holds now the engine's,
// and re-assesses them before it returns, as SetFindings does after it
// stored an update: it is for findings another process stored (an API
// replica's upload seen by the others). Before Start it does nothing,
// since Start loads them.
func (e *Engine) ReloadFindings(ctx context.Context) error {
	e.mu.Lock()
	running := e.state == stateRunning
	e.mu.Unlock()
	if !running {
		return nil
	}
	var err error
	if cerr := e.call(ctx, func(wctx context.Context) {
		// The store says what the findings are now: another update of
		// other services may have committed in between, and the last
		// of the worker's reloads sees both.
		var fs []findings.Finding
		if fs, err = e.st.Findings(wctx); err != nil {
			err = fmt.Errorf("reload findings: %w", err)
			return
		}
		e.setFindings(fs)
		e.assess(wctx)
	}); cerr != nil {
		return cerr
	}
	return err
}

// call runs f on the worker and waits for it.
func (e *Engine) call(ctx context.Context, f func(wctx context.Context)) error {
	done := make(chan struct{})
	req := func() {
		defer close(done)
		f(ctx)
	}
	select {
	case e.ctl <- req:
	case <-e.done:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

// setFindings replaces the findings, keeping the last assessment of the
// ones that stay, so verdict changes are recorded across an upload.
func (e *Engine) setFindings(fs []findings.Finding) {
	w := &e.w
	type key struct{ svc, vuln, purl string }
	keyOf := func(f findings.Finding) key { return key{f.Service, f.Vulnerability.ID, f.Package.PURL} }
	old := make(map[key]assess.Assessment, len(w.findings))
	for i, f := range w.findings {
		old[keyOf(f)] = w.current[i]
	}
	w.findings = fs
	w.current = make([]assess.Assessment, len(fs))
	for i, f := range fs {
		if a, ok := old[keyOf(f)]; ok {
			w.current[i] = a
		}
	}
	w.watch = detect.NewFirstExecution(fs, e.vulns)
	clear(w.dirty)
	w.dirtyAll = true
	if e.attributorOf != nil {
		e.model.SetAttributor(e.attributorOf(fs))
	}
}

// View returns the latest view. It is shared: callers must not modify it.
func (e *Engine) View() *View { return e.view.Load() }

// Assessments returns the current assessments in priority order; the
// slice is shared and must not be modified.
func (e *Engine) Assessments() []assess.Assessment { return e.view.Load().Assessments }

// Summary returns the headline of the current assessments.
func (e *Engine) Summary() assess.Summary { return e.view.Load().Summary }

// Snapshot returns the model snapshot of the current assessments.
func (e *Engine) Snapshot() *model.Snapshot { return e.view.Load().Snapshot }

// encode encodes a batch for the log and returns the kind it logs it
// under, which says how to decode it: encodeBatch's, with the time the
// batch was received after it (store.BatchReceivedAt), when it is known.
func encode(it *item, dst []byte) (store.BatchKind, []byte, error) {
	kind, payload, err := encodeBatch(it, dst)
	if err != nil || it.receivedAt.IsZero() {
		return kind, payload, err
	}
	payload = binary.LittleEndian.AppendUint64(payload, uint64(it.receivedAt.UnixNano()))
	payload = append(payload, kind...)
	return store.BatchReceivedAt, append(payload, byte(len(kind))), nil
}

// receivedAtTrailer is the shortest trailer of a store.BatchReceivedAt
// payload: the time, a kind of one byte and its length.
const receivedAtTrailer = 8 + 1 + 1

// splitReceivedAt splits the payload of a store.BatchReceivedAt batch into
// the batch's own kind and payload and the time it was received.
func splitReceivedAt(payload []byte) (store.BatchKind, []byte, time.Time, error) {
	if len(payload) < receivedAtTrailer {
		return "", nil, time.Time{}, fmt.Errorf("%d bytes, shorter than the trailer", len(payload))
	}
	n := int(payload[len(payload)-1])
	if n == 0 || len(payload) < 8+n+1 {
		return "", nil, time.Time{}, fmt.Errorf("a kind of %d bytes in a payload of %d", n, len(payload))
	}
	end := len(payload) - 1 - n
	kind := store.BatchKind(payload[end : end+n])
	at := time.Unix(0, int64(binary.LittleEndian.Uint64(payload[end-8:end])))
	return kind, payload[:end-8], at, nil
}

// encodeBatch encodes a batch for the log and returns the kind it logs it
// under, which says how to decode it: spans as an OTLP trace request, the
// one received (it.logged) or one written from the spans, compressed with
// S2 (store.BatchTraceRequestS2), or with encoding/gob (store.BatchSpans)
// when they cannot go as one; profiles as the request they were received
// in (telemetry.AppendProfileRequest) compressed with S2
// (store.BatchProfileRequestS2), or with encoding/gob (store.BatchProfiles)
// without it. dst, when large enough, holds the compressed request.
func encodeBatch(it *item, dst []byte) (store.BatchKind, []byte, error) {
	if it.preq != nil {
		req := telemetry.AppendProfileRequest(nil, it.preq)
		if err := loggable(req); err != nil {
			return "", nil, err
		}
		return store.BatchProfileRequestS2, s2.Encode(dst[:cap(dst)], req), nil
	}
	req := it.logged
	if req == nil && it.kind == store.BatchSpans {
		// Instrumented HTTP and database spans take about 300 bytes.
		b, err := telemetry.AppendTraceRequest(make([]byte, 0, 320*len(it.spans)), it.spans)
		if err != nil && !errors.Is(err, telemetry.ErrNotEncodable) {
			return "", nil, err
		}
		req = b
		if err != nil {
			req = nil
		}
	}
	if req != nil {
		if err := loggable(req); err != nil {
			return "", nil, err
		}
		// The log's bytes are written and synced before the request is
		// acknowledged, and kept until the next checkpoint: OTLP, names
		// and keys repeated span after span, compresses several times
		// (telemetrygen's 1000-span requests to 32 KB each in the log,
		// 2026-12-07), for about 3 % of serve's CPU under that load.
		return store.BatchTraceRequestS2, s2.Encode(dst[:cap(dst)], req), nil
	}
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	var err error
	if it.kind == store.BatchSpans {
		err = enc.Encode(it.spans)
	} else {
		err = enc.Encode(it.profiles)
	}
	return it.kind, buf.Bytes(), err
}

// maxPooledBuffer bounds the buffers kept for compressed payloads, so
// that one large request does not pin its size.
const maxPooledBuffer = 4 << 20

// decode reverses encode for replay, for every kind encode wrote since
// the log began; a trace request decodes into a spans batch, a profile
// request into a profiles batch, with pd.
func decode(pd *telemetry.ProfileDecoder, kind store.BatchKind, payload []byte) (item, error) {
	it := item{kind: kind}
	var err error
	switch kind {
	case store.BatchTraceRequest:
		it.kind = store.BatchSpans
		it.spans, err = telemetry.TraceRequestSpans(payload, "the log")
	case store.BatchTraceRequestS2:
		it.kind = store.BatchSpans
		var req []byte
		if req, err = decompress(payload); err == nil {
			it.spans, err = telemetry.TraceRequestSpans(req, "the log")
		}
	case store.BatchSpans:
		err = safegob.Decode(payload, &it.spans)
		if err == nil && len(it.spans) == 0 {
			// Never logged (a batch has spans), and refused as a trace
			// request of no span is (found by FuzzReplay: it encoded
			// again as an empty request, which does not decode).
			err = errors.New("no span")
		}
		for i := range it.spans {
			// A span that names no service is UnknownService's, as the
			// trace decoders make it (found by FuzzReplay: it encoded
			// again as a request without service.name, which decodes
			// to UnknownService).
			it.spans[i].Service = cmp.Or(it.spans[i].Service, telemetry.UnknownService)
		}
	case store.BatchProfiles:
		err = safegob.Decode(payload, &it.profiles)
	case store.BatchProfileRequestS2:
		it.kind = store.BatchProfiles
		it.profiles, it.preq, err = decodeProfileRequest(pd, payload)
	case store.BatchReceivedAt:
		inner, b, at, serr := splitReceivedAt(payload)
		switch {
		case serr != nil:
			err = serr
		case inner == store.BatchReceivedAt:
			err = fmt.Errorf("a %s batch in a %[1]s batch", inner)
		case inner.Validate() != nil:
			// Every kind is checked before it is logged, inside this
			// one too: a newer evident's, refused as the kind itself is.
			err = fmt.Errorf("%w: a batch of kind %q, which a newer evident wrote", telemetry.ErrNewerVersion, inner)
		default:
			if it, err = decode(pd, inner, b); err == nil {
				it.receivedAt = at
				return it, nil
			}
		}
	default:
		err = fmt.Errorf("unknown batch kind %q", kind)
	}
	if err != nil {
		return it, fmt.Errorf("decode %s batch: %w", kind, err)
	}
	return it, nil
}

// maxLoggedRequest bounds what a logged request decompresses to on
// replay, so that a damaged row cannot make a restart allocate
// gigabytes: it is the most a profile may take (telemetry.MaxProfileSize),
// sixteen times the receivers' default max_request_bytes.
const maxLoggedRequest = telemetry.MaxProfileSize

// loggable refuses a request that replay would not read back
// (decompress): logged and acknowledged, it would be skipped after a
// restart. The receivers' max_request_bytes is at most the same bound.
func loggable(req []byte) error {
	if len(req) > maxLoggedRequest {
		return fmt.Errorf("%w: a request of %d bytes, over the %d a logged request may take", telemetry.ErrTooLarge, len(req), maxLoggedRequest)
	}
	return nil
}

// decompress returns a logged request compressed with S2, decompressed.
func decompress(payload []byte) ([]byte, error) {
	n, err := s2.DecodedLen(payload)
	if err != nil {
		return nil, fmt.Errorf("s2: %w", err)
	}
	if n > maxLoggedRequest {
		return nil, fmt.Errorf("s2: decompresses to %d bytes, over %d", n, maxLoggedRequest)
	}
	b, err := s2.Decode(nil, payload)
	if err != nil {
		return nil, fmt.Errorf("s2: %w", err)
	}
	return b, nil
}

// decodeProfileRequest decodes a logged profile request with the
// receivers' decoder. The request holds the profiles the receiver
// decoded something from, and it was accepted for what decoded; that is
// what replay yields, as it did then: the error is only for a request
// of which nothing decodes.
func decodeProfileRequest(pd *telemetry.ProfileDecoder, payload []byte) ([]*telemetry.ProfileBatch, *telemetry.ProfileRequest, error) {
	b, err := decompress(payload)
	if err != nil {
		return nil, nil, err
	}
	req, err := telemetry.ParseProfileRequest(b)
	if err != nil {
		return nil, nil, err
	}
	ps, err := pd.DecodeRequest(req)
	if len(ps) > 0 {
		return ps, req, nil
	}
	if err == nil {
		err = errors.New("no profile")
	}
	return nil, nil, err
}
