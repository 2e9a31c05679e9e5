package otlp

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/ingest"
)

// metrics are the shared receiver families, labelled receiver="otlp".
type metrics struct{ *ingest.Metrics }

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	for _, transport := range []string{"grpc", "http"} {
		for _, signal := range []string{"traces", "profiles"} {
			m.Init("otlp", transport, signal)
		}
	}
	return &metrics{m}, nil
}

func (m *metrics) observe(transport, signal string, start time.Time) {
	m.Duration.WithLabelValues("otlp", transport, signal).Observe(time.Since(start).Seconds())
}

func (m *metrics) refusedRequest(transport, signal, reason string) {
	m.RefusedRequests.WithLabelValues("otlp", transport, signal, reason).Inc()
}
