package engine

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	batches       *prometheus.CounterVec
	items         *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	reassessed    prometheus.Counter
	assessSeconds prometheus.Histogram
	checkpoints   prometheus.Counter
	redacted      *prometheus.CounterVec
}

// newMetrics creates the engine's metrics and registers them with reg
// when it is not nil.
func newMetrics(reg prometheus.Registerer, depth func() float64) (*metrics, error) {
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_engine_batches_total",
			Help: "Telemetry batches offered to the engine, by signal and result (accepted, refused: queue full or not running, failed: not logged).",
		}, []string{"signal", "result"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_engine_items_total",
			Help: "Spans and profiles accepted by the engine, by signal.",
		}, []string{"signal"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_engine_detections_total",
			Help: "Alerts raised by the detections, before deduplication, by kind.",
		}, []string{"kind"}),
		reassessed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evident_engine_reassessed_findings_total",
			Help: "Findings re-assessed because a batch could have changed them.",
		}),
		assessSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evident_engine_assess_duration_seconds",
			Help:    "Duration of one coalesced re-assessment, snapshot included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evident_engine_checkpoints_total",
			Help: "Checkpoints of the runtime model written.",
		}),
		redacted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_engine_redacted_batches_total",
			Help: "Accepted batches in which redaction masked at least one value, by signal.",
		}, []string{"signal"}),
	}
	if reg == nil {
		return m, nil
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "evident_engine_queue_depth",
		Help: "Batches accepted and waiting for the engine's worker.",
	}, depth)
	var errs []error
	for _, c := range []prometheus.Collector{m.batches, m.items, m.alerts, m.reassessed, m.assessSeconds, m.checkpoints, m.redacted, queue} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
