package pyroscope

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/ingest"
)

// metrics are the shared receiver families, labelled receiver="pyroscope".
type metrics struct{ *ingest.Metrics }

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	for _, transport := range []string{"http", "connect"} {
		m.Init("pyroscope", transport, "profiles")
	}
	return &metrics{m}, nil
}

func (m *metrics) observe(transport string, start time.Time) {
	m.Duration.WithLabelValues("pyroscope", transport, "profiles").Observe(time.Since(start).Seconds())
}

func (m *metrics) refusedRequest(transport, reason string) {
	m.RefusedRequests.WithLabelValues("pyroscope", transport, "profiles", reason).Inc()
}
