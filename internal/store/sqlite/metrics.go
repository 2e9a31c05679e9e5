package sqlite

import (
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/evidentsec/evident/internal/store"
)

var sizeDesc = prometheus.NewDesc("evident_store_size_bytes",
	"Size of the store's files: the database, its write-ahead log (wal) until the next checkpoint, and the telemetry log's segments (log).", []string{"file"}, nil)

// Collector returns the metrics of the database under every tenant's
// store: the group commits of the telemetry log, the size of its files
// (read at each scrape), and the connection pools' statistics as
// database/sql reports them (go_sql_*, db_name "evident_write" and
// "evident_read"). The caller registers it once per database.
func (s *Store) Collector() prometheus.Collector {
	cs := store.Collectors{s.calls.CommitCollector(), sizeCollector{s.path, s.log}, collectors.NewDBStatsCollector(s.write, "evident_write")}
	if s.read != nil {
		cs = append(cs, collectors.NewDBStatsCollector(s.read, "evident_read"))
	}
	return cs
}

// sizeCollector reports the size of the database file, its WAL and the
// telemetry log's segments (their committed bytes, as of the last commit
// or checkpoint).
type sizeCollector struct {
	path string
	log  *batchLog
}

func (c sizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sizeDesc }

func (c sizeCollector) Collect(ch chan<- prometheus.Metric) {
	for file, path := range map[string]string{"database": c.path, "wal": c.path + "-wal"} {
		if fi, err := os.Stat(path); err == nil {
			ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(fi.Size()), file)
		}
	}
	ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(c.log.size()), "log")
}
