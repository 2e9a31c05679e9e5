package alert

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/detect"
)

// The reasons of evident_alerts_deduplicated_total.
const (
	dedupeWindow   = "window"
	dedupeObserved = "observed"
)

type metrics struct {
	fired        *prometheus.CounterVec // kind
	deduplicated *prometheus.CounterVec // kind, reason
	dropped      *prometheus.CounterVec // kind, sink, reason
	sent         *prometheus.CounterVec // kind, sink
	retries      *prometheus.CounterVec // sink
	sendSeconds  *prometheus.HistogramVec
	latency      *prometheus.HistogramVec
	// dedupedOf, occurredOf and latencyOf are deduplicated (for each
	// reason) and latency by kind: every alert fired, a duplicate or
	// not, is counted in latency, but for one of an occurrence that
	// fired before (deduplicated as observed, or that would be).
	dedupedOf, occurredOf byKind[prometheus.Counter]
	latencyOf             byKind[prometheus.Observer]
}

// byKind holds the children of a metric vector by kind, each made when
// first used, as WithLabelValues makes it (a kind never counted has no
// series), and then found by the kind's place in detect.Kinds, without
// hashing and checking label values. A kind that is not one of
// detect.Kinds is resolved each time. It is safe for concurrent use.
type byKind[T any] struct {
	with  func(kind string) T
	slots []atomic.Pointer[T] // by index in detect.Kinds
}

func newByKind[T any](with func(kind string) T) byKind[T] {
	return byKind[T]{with: with, slots: make([]atomic.Pointer[T], len(detect.Kinds))}
}

func (b *byKind[T]) of(kind string) T {
	for i, k := range detect.Kinds {
		if string(k) != kind {
			continue
		}
		if p := b.slots[i].Load(); p != nil {
			return *p
		}
		c := b.with(kind) // the same child if two callers race here
		b.slots[i].Store(&c)
		return c
	}
	return b.with(kind)
}

func newMetrics(reg prometheus.Registerer, sinks []*sinkQueue) (*metrics, error) {
	m := &metrics{
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_alerts_fired_total", Help: "Alerts routed to the sinks after deduplication and rate limiting, by kind.",
		}, []string{"kind"}),
		deduplicated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_alerts_deduplicated_total",
			Help: "Alerts dropped as duplicates, by kind and reason: window (its key fired less than dedupe_window ago), observed (an alert of its key was fired for telemetry observed less than dedupe_window from its own: the same telemetry applied again after a restart).",
		}, []string{"kind", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_alerts_dropped_total",
			Help: "Alerts not delivered, by kind, sink (empty before fan-out) and reason (rate_limited, queue_full, failed, shutdown).",
		}, []string{"kind", "sink", "reason"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_alerts_sent_total", Help: "Alerts delivered, by kind and sink.",
		}, []string{"kind", "sink"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_alert_sink_retries_total", Help: "Delivery attempts retried, by sink.",
		}, []string{"sink"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "evident_alert_sink_send_duration_seconds", Help: "Duration of one delivery attempt, by sink.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"sink"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evident_alert_latency_seconds",
			Help:    "Time from the receipt of the telemetry that triggered an alert to its hand-off to the router, by kind; not for an alert of an occurrence that fired before.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"kind"}),
	}
	m.dedupedOf = newByKind(func(kind string) prometheus.Counter { return m.deduplicated.WithLabelValues(kind, dedupeWindow) })
	m.occurredOf = newByKind(func(kind string) prometheus.Counter { return m.deduplicated.WithLabelValues(kind, dedupeObserved) })
	m.latencyOf = newByKind(func(kind string) prometheus.Observer { return m.latency.WithLabelValues(kind) })
	// Every kind, sink and reason is counted from 0, so that a dashboard
	// shows 0 for a kind that never fired, or a sink that never failed,
	// rather than nothing.
	for _, s := range sinks {
		m.sendSeconds.WithLabelValues(s.sink.Name())
		m.retries.WithLabelValues(s.sink.Name())
	}
	for _, k := range detect.Kinds {
		kind := string(k)
		m.fired.WithLabelValues(kind)
		m.deduplicated.WithLabelValues(kind, dedupeWindow)
		m.deduplicated.WithLabelValues(kind, dedupeObserved)
		m.latency.WithLabelValues(kind)
		// Before the fan-out, an alert is dropped for the key's rate or
		// a router shutting down; after it, for a sink's.
		for _, reason := range []string{"rate_limited", "shutdown"} {
			m.dropped.WithLabelValues(kind, "", reason)
		}
		for _, s := range sinks {
			m.sent.WithLabelValues(kind, s.sink.Name())
			for _, reason := range []string{"rate_limited", "queue_full", "failed", "shutdown"} {
				m.dropped.WithLabelValues(kind, s.sink.Name(), reason)
			}
		}
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.fired, m.deduplicated, m.dropped, m.sent, m.retries, m.sendSeconds, m.latency} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
