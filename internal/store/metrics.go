package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// commitMetrics are the group commits of a backend's telemetry log.
type commitMetrics struct {
	seconds prometheus.Histogram
	batches prometheus.Counter
}

func newCommitMetrics() *commitMetrics {
	return &commitMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "evident_store_commit_duration_seconds",
			Help: "Duration of one group commit of telemetry batches to the log, the time an acknowledgement waits for.",
			// Every bound of evident_receiver_request_duration_seconds,
			// and two below: a commit's share of an acknowledgement's p99
			// reads bucket by bucket (exponential bounds, 3.1 then 7.8
			// ms, could not tell it from the 5 ms target).
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .004, .005, .006, .0075, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evident_store_committed_batches_total",
			Help: "Telemetry batches committed to the log.",
		}),
	}
}

// observe records a group commit of n batches that began at start.
func (m *commitMetrics) observe(n int, start time.Time) {
	m.seconds.Observe(time.Since(start).Seconds())
	m.batches.Add(float64(n))
}

// Collectors is several collectors registered as one.
type Collectors []prometheus.Collector

// Describe describes every collector's metrics.
func (cs Collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

// Collect collects every collector's metrics.
func (cs Collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}
