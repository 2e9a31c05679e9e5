// Package ingest holds what the receivers of telemetry share; each
// protocol lives in a subpackage (otlp, pyroscope).
package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a record or request is refused, the values of the reason label.
const (
	ReasonMalformed   = "malformed"   // the record or the request does not decode
	ReasonTooLarge    = "too_large"   // the request is over the size limit
	ReasonUnsupported = "unsupported" // unknown content type, encoding or format, wrong method
	ReasonFull        = "full"        // the consumer's queue is full (retryable)
	ReasonRejected    = "rejected"    // the consumer refused the data as bad (permanent)
	ReasonUnavailable = "unavailable" // the consumer failed otherwise (retryable)
	ReasonMemory      = "memory"      // memory above the soft limit, or the buffered bytes at theirs (retryable)
	ReasonTimeout     = "timeout"     // the body did not arrive within read_timeout (or a gRPC call's deadline)
)

// Metrics are the metric families of every receiver, told apart by the
// receiver label, so that all receivers register into one registry.
type Metrics struct {
	AcceptedSpans    *prometheus.CounterVec   // receiver, transport
	RefusedSpans     *prometheus.CounterVec   // receiver, transport, reason
	AcceptedProfiles *prometheus.CounterVec   // receiver, transport
	RefusedProfiles  *prometheus.CounterVec   // receiver, transport, reason
	RefusedRequests  *prometheus.CounterVec   // receiver, transport, signal, reason
	Duration         *prometheus.HistogramVec // receiver, transport, signal
}

// NewMetrics makes the families and registers them with reg, reusing the
// ones another receiver registered there before. A nil reg registers
// nothing.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		AcceptedSpans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_accepted_spans_total",
			Help: "Spans accepted by a receiver and handed to the pipeline.",
		}, []string{"receiver", "transport"}),
		RefusedSpans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_refused_spans_total",
			Help: "Spans a receiver decoded but did not hand on, by reason.",
		}, []string{"receiver", "transport", "reason"}),
		AcceptedProfiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_accepted_profiles_total",
			Help: "Profiles accepted by a receiver and handed to the pipeline.",
		}, []string{"receiver", "transport"}),
		RefusedProfiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_refused_profiles_total",
			Help: "Profiles a receiver decoded but did not hand on, by reason.",
		}, []string{"receiver", "transport", "reason"}),
		RefusedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_refused_requests_total",
			Help: "Requests refused as a whole before their records could be counted, by signal and reason.",
		}, []string{"receiver", "transport", "signal", "reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "evident_receiver_request_duration_seconds",
			Help: "Time to read, decode and hand on one request, by signal.",
			// Finer between 2.5 and 10 ms, where an acknowledgement after
			// the log's sync falls and the p99 target (5 ms) lies.
			Buckets: []float64{.0005, .001, .0025, .004, .005, .006, .0075, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"receiver", "transport", "signal"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs [6]error
	m.AcceptedSpans, errs[0] = register(reg, m.AcceptedSpans)
	m.RefusedSpans, errs[1] = register(reg, m.RefusedSpans)
	m.AcceptedProfiles, errs[2] = register(reg, m.AcceptedProfiles)
	m.RefusedProfiles, errs[3] = register(reg, m.RefusedProfiles)
	m.RefusedRequests, errs[4] = register(reg, m.RefusedRequests)
	m.Duration, errs[5] = register(reg, m.Duration)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return m, nil
}

// BodyTimeout is what the receivers answer a request whose body did not
// arrive within read_timeout (ReasonTimeout).
func BodyTimeout(readTimeout time.Duration) string {
	return fmt.Sprintf("the body did not arrive within read_timeout %s", readTimeout)
}

// Reasons lists every reason a record or request is refused.
var Reasons = []string{ReasonMalformed, ReasonTooLarge, ReasonUnsupported, ReasonFull, ReasonRejected, ReasonUnavailable, ReasonMemory, ReasonTimeout}

// Init makes the series of a receiver's transport and signal ("traces"
// or "profiles") exist at 0: the accepted records, the refusals for
// every reason and the request durations. A dashboard's ingest rate is
// then 0 until the first request, not "no data".
func (m *Metrics) Init(receiver, transport, signal string) {
	accepted, refused := m.AcceptedSpans, m.RefusedSpans
	if signal == "profiles" {
		accepted, refused = m.AcceptedProfiles, m.RefusedProfiles
	}
	accepted.WithLabelValues(receiver, transport)
	m.Duration.WithLabelValues(receiver, transport, signal)
	for _, r := range Reasons {
		refused.WithLabelValues(receiver, transport, r)
		m.RefusedRequests.WithLabelValues(receiver, transport, signal, r)
	}
}

// register registers c, or returns the identical collector registered
// before by another receiver.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
