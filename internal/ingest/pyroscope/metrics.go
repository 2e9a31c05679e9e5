package pyroscope

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a profile or request is refused, the values of the reason label.
const (
	reasonMalformed   = "malformed"   // the profile or the request does not decode
	reasonTooLarge    = "too_large"   // the request is over MaxRequestBytes
	reasonUnsupported = "unsupported" // a format other than pprof, a wrong method
	reasonFull        = "full"        // the consumer's queue is full (retryable)
	reasonRejected    = "rejected"    // the consumer refused the data as bad (permanent)
	reasonUnavailable = "unavailable" // the consumer failed otherwise (retryable)
)

// metrics of the receiver: the families of the OTLP receiver
// (internal/ingest/otlp) with receiver="pyroscope". The definitions must
// stay identical to those, so that both receivers register into one
// registry.
type metrics struct {
	acceptedProfiles *prometheus.CounterVec
	refusedProfiles  *prometheus.CounterVec
	refusedRequests  *prometheus.CounterVec
	duration         *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		acceptedProfiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_accepted_profiles_total",
			Help: "Profiles accepted by a receiver and handed to the pipeline.",
		}, []string{"receiver", "transport"}),
		refusedProfiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_refused_profiles_total",
			Help: "Profiles a receiver decoded but did not hand on, by reason.",
		}, []string{"receiver", "transport", "reason"}),
		refusedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evident_receiver_refused_requests_total",
			Help: "Requests refused as a whole before their records could be counted, by signal and reason.",
		}, []string{"receiver", "transport", "signal", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evident_receiver_request_duration_seconds",
			Help:    "Time to read, decode and hand on one request, by signal.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"receiver", "transport", "signal"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs [4]error
	m.acceptedProfiles, errs[0] = register(reg, m.acceptedProfiles)
	m.refusedProfiles, errs[1] = register(reg, m.refusedProfiles)
	m.refusedRequests, errs[2] = register(reg, m.refusedRequests)
	m.duration, errs[3] = register(reg, m.duration)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the identical collector registered
// before: the OTLP receiver shares these families.
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

func (m *metrics) observe(transport string, start time.Time) {
	m.duration.WithLabelValues("pyroscope", transport, "profiles").Observe(time.Since(start).Seconds())
}

func (m *metrics) refusedRequest(transport, reason string) {
	m.refusedRequests.WithLabelValues("pyroscope", transport, "profiles", reason).Inc()
}
