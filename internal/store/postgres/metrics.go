package postgres

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/store"
)

var (
	connsDesc = prometheus.NewDesc("evident_store_pool_connections",
		"Connections of the PostgreSQL store's pool, by state: acquired (in use) or idle.", []string{"state"}, nil)
	maxConnsDesc = prometheus.NewDesc("evident_store_pool_max_connections",
		"The most connections the PostgreSQL store's pool opens (max_conns).", nil, nil)
	acquireWaitsDesc = prometheus.NewDesc("evident_store_pool_acquire_waits_total",
		"Calls that waited for a connection because the pool was at max_conns.", nil, nil)
	acquireWaitDesc = prometheus.NewDesc("evident_store_pool_acquire_wait_seconds_total",
		"Time calls spent waiting for a connection of the pool.", nil, nil)
)

// Collector returns the metrics of the database under every tenant's
// store: the group commits of the telemetry log and the connection
// pool's statistics (read at each scrape). The caller registers it once
// per database.
func (s *Store) Collector() prometheus.Collector {
	return store.Collectors{s.calls.CommitCollector(), poolCollector{s.db}}
}

// poolCollector reports pgxpool's statistics.
type poolCollector struct{ db *db }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connsDesc
	ch <- maxConnsDesc
	ch <- acquireWaitsDesc
	ch <- acquireWaitDesc
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.db.pool.Stat()
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(maxConnsDesc, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(acquireWaitsDesc, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(acquireWaitDesc, prometheus.CounterValue, st.AcquireDuration().Seconds())
}
