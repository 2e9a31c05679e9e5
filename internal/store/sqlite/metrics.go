package sqlite

import (
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the store's own: the group commits of the telemetry log.
type metrics struct {
	commitSeconds prometheus.Histogram
	batches       prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evident_store_commit_duration_seconds",
			Help:    "Duration of one group commit of telemetry batches to the log, the time an acknowledgement waits for.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 10),
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evident_store_committed_batches_total",
			Help: "Telemetry batches committed to the log.",
		}),
	}
}

// observeCommit records a group commit of n batches that began at start.
func (m *metrics) observeCommit(n int, start time.Time) {
	m.commitSeconds.Observe(time.Since(start).Seconds())
	m.batches.Add(float64(n))
}

var sizeDesc = prometheus.NewDesc("evident_store_size_bytes",
	"Size of the store's files: the database, and its write-ahead log (wal) until the next checkpoint.", []string{"file"}, nil)

// Collector returns the metrics of the database under every tenant's
// store: the group commits of the telemetry log, the size of its files
// (read at each scrape), and the connection pools' statistics as
// database/sql reports them (go_sql_*, db_name "evident_write" and
// "evident_read"). The caller registers it once per database.
func (s *Store) Collector() prometheus.Collector {
	cs := []prometheus.Collector{s.m.commitSeconds, s.m.batches, sizeCollector{s.path}, collectors.NewDBStatsCollector(s.write, "evident_write")}
	if s.read != nil {
		cs = append(cs, collectors.NewDBStatsCollector(s.read, "evident_read"))
	}
	return multiCollector(cs)
}

// sizeCollector reports the size of the database file and its WAL.
type sizeCollector struct{ path string }

func (c sizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sizeDesc }

func (c sizeCollector) Collect(ch chan<- prometheus.Metric) {
	for file, path := range map[string]string{"database": c.path, "wal": c.path + "-wal"} {
		if fi, err := os.Stat(path); err == nil {
			ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(fi.Size()), file)
		}
	}
}

// multiCollector is several collectors registered as one.
type multiCollector []prometheus.Collector

func (m multiCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m {
		c.Describe(ch)
	}
}

func (m multiCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m {
		c.Collect(ch)
	}
}
