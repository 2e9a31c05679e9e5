package engine

import (
	"context"
	"time"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/telemetry"
)

// The scaled-out deployment (docs/scaling.md) uses engines two more
// ways. An engine role keeps one engine per tenant and partition of the
// Kafka ingest log, never started: Kafka is its log and the caller
// checkpoints its model, so it applies batches at once (ApplySpans,
// ApplyProfiles) and raises the per-service alerts, and assesses
// nothing. An API replica keeps one started engine per tenant whose
// model is the merge of those shards (Replace): it assesses, records the
// verdict changes and raises the alerts of new paths, exactly as the
// single process does on the model it is fed.

// ApplySpans applies a batch of spans at once, on the caller's
// goroutine, without logging it: redaction, the model and the streaming
// detections, as Consume and the worker do, but no assessment. It is for
// an engine that is never started, and is not safe for concurrent use.
func (e *Engine) ApplySpans(spans []telemetry.Span, receivedAt time.Time) {
	if len(spans) == 0 {
		return
	}
	e.applyNow(item{kind: store.BatchSpans, raw: spans, receivedAt: receivedAt})
}

// ApplyProfiles is ApplySpans for a batch of profiles.
func (e *Engine) ApplyProfiles(ps []*telemetry.ProfileBatch, receivedAt time.Time) {
	if len(ps) == 0 {
		return
	}
	e.applyNow(item{kind: store.BatchProfiles, profiles: ps, receivedAt: receivedAt})
}

// Restored tells an engine that is never started that its model was
// just restored from a checkpoint, as Start tells itself: a host a
// service called before the checkpoint is not called for the first time
// when it is called again. It is not safe for concurrent use with
// ApplySpans and ApplyProfiles.
func (e *Engine) Restored() { e.learnHosts() }

// learnHosts teaches the host detector the hosts each service of the
// model called, from when the model first saw the service.
func (e *Engine) learnHosts() {
	hosts := e.model.OutboundHosts()
	for _, s := range e.model.Snapshot().Services {
		e.w.anomalies.Learn(s.Name, s.First, hosts[s.Name])
	}
}

func (e *Engine) applyNow(it item) {
	e.redact(&it)
	e.apply(it)
	e.m.items.WithLabelValues(string(it.kind)).Add(float64(len(it.spans) + len(it.profiles)))
	// What apply notes for the next assessment: there is none.
	w := &e.w
	clear(w.dirty)
	clear(w.spanServices)
	clear(w.topoServices)
	w.pending, w.newService = model.Changes{}, false
}

// UseFindings makes fs the findings whose functions an engine that is
// never started watches (first executions). It is not safe for
// concurrent use with ApplySpans and ApplyProfiles.
func (e *Engine) UseFindings(fs []findings.Finding) {
	e.setFindings(fs)
	e.w.dirtyAll = false
}

// Replace replaces the model of a running engine with state (a
// model.MarshalBinary or model.MergeStates), re-assesses every finding on
// it, records the verdict changes and raises the sensitive-path alerts
// of the edges and stores it adds, before it returns.
func (e *Engine) Replace(ctx context.Context, state []byte) error {
	var err error
	if cerr := e.call(ctx, func(wctx context.Context) {
		var ch model.Changes
		if ch, err = e.model.Replace(state); err != nil {
			return
		}
		e.topology(ch, e.now())
		e.w.dirtyAll = true
		e.assess(wctx)
	}); cerr != nil {
		return cerr
	}
	return err
}
