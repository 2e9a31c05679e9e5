package engine

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/store"
)

type metrics struct {
	batches       *prometheus.CounterVec
	items         *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	reassessed    prometheus.Counter
	assessSeconds prometheus.Histogram
	checkpoints   prometheus.Counter
	redacted      *prometheus.CounterVec
	// alertsOf holds the children of alerts made so far, by kind;
	// lastKind and lastAlerts the last one counted (alerts come in runs
	// of a kind).
	alertsOf   map[detect.Kind]prometheus.Counter
	lastKind   detect.Kind
	lastAlerts prometheus.Counter
}

// newMetrics creates the engine's metrics and registers them with reg
// when it is not nil; the gauges of the findings read the view and
// exposure of e at each scrape.
func newMetrics(reg prometheus.Registerer, depth func() float64, e *Engine) (*metrics, error) {
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
	// The series of every signal, result and kind exist at 0 from the
	// start, so that a rate is 0 before the first batch, not "no data".
	for _, signal := range []store.BatchKind{store.BatchSpans, store.BatchProfiles} {
		s := string(signal)
		for _, result := range []string{"accepted", "refused", "failed"} {
			m.batches.WithLabelValues(s, result)
		}
		m.items.WithLabelValues(s)
		m.redacted.WithLabelValues(s)
	}
	for _, k := range detect.Kinds {
		m.alerts.WithLabelValues(string(k))
	}
	if reg == nil {
		return m, nil
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "evident_engine_queue_depth",
		Help: "Batches accepted and waiting for the engine's worker.",
	}, depth)
	var errs []error
	for _, c := range []prometheus.Collector{m.batches, m.items, m.alerts, m.reassessed, m.assessSeconds, m.checkpoints, m.redacted, queue, viewCollector{e}} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

// The gauges of the current view: what a security dashboard shows.
var (
	findingsDesc = prometheus.NewDesc("evident_findings",
		"Findings of the current assessment, by service, priority tier, runtime verdict and exposure of the service.",
		[]string{"service", "tier", "verdict", "exposure"}, nil)
	knownExploitedDesc = prometheus.NewDesc("evident_findings_known_exploited",
		"Findings of the current assessment whose vulnerability is in CISA's KEV catalog, by service and runtime verdict.",
		[]string{"service", "verdict"}, nil)
	backlogDesc = prometheus.NewDesc("evident_backlog_reduction_ratio",
		"Share of the findings that runtime evidence clears from the backlog (the summary's backlog_reduction).", nil, nil)
	decidedDesc = prometheus.NewDesc("evident_findings_decided_ratio",
		"Share of the findings whose verdict runtime evidence decided (executed, loaded or not_observed: every verdict but unknown).", nil, nil)
	serviceDesc = prometheus.NewDesc("evident_service_info",
		"1 for each service of the runtime model, labelled with its exposure.", []string{"service", "exposure"}, nil)
	mergedDesc = prometheus.NewDesc("evident_service_merged_namespaces",
		"Number of service.namespace values of the services of one service.name that the runtime model merged into one (their telemetry and findings mixed); only for names seen in two or more.",
		[]string{"service"}, nil)
	viewTimeDesc = prometheus.NewDesc("evident_assessment_timestamp_seconds",
		"Unix time at which the current assessment was made.", nil, nil)
)

// viewCollector makes the gauges of the engine's current view at each
// scrape, so they never lag the view nor keep a finding that is gone.
type viewCollector struct{ e *Engine }

// Describe sends the gauges' descriptions.
func (c viewCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{findingsDesc, knownExploitedDesc, backlogDesc, decidedDesc, serviceDesc, mergedDesc, viewTimeDesc} {
		ch <- d
	}
}

// Collect counts the findings of the current view.
func (c viewCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.e.View()
	if v == nil {
		return // New failed after registering
	}
	type key struct{ service, tier, verdict, exposure string }
	type kevKey struct{ service, verdict string }
	counts, kev := map[key]int{}, map[kevKey]int{}
	for _, a := range v.Assessments {
		verdict := string(a.Reachability.Verdict)
		counts[key{a.Finding.Service, a.Priority.Tier, verdict, string(a.Exposure.Level)}]++
		// Counted from 0, so a dashboard shows 0 where none is known
		// exploited rather than nothing; without a KEV catalog not at
		// all, since a 0 would read as "none is exploited" (Prometheus
		// leaves out what is unknown).
		if c.e.kev {
			k, n := kevKey{a.Finding.Service, verdict}, 0
			if a.KnownExploited {
				n = 1
			}
			kev[k] += n
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(findingsDesc, prometheus.GaugeValue, float64(n), k.service, k.tier, k.verdict, k.exposure)
	}
	for k, n := range kev {
		ch <- prometheus.MustNewConstMetric(knownExploitedDesc, prometheus.GaugeValue, float64(n), k.service, k.verdict)
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, v.Summary.BacklogReduction)
	ch <- prometheus.MustNewConstMetric(decidedDesc, prometheus.GaugeValue, v.Summary.DecidedShare)
	for name, exp := range v.Exposure {
		ch <- prometheus.MustNewConstMetric(serviceDesc, prometheus.GaugeValue, 1, name, string(exp.Level))
	}
	if v.Snapshot != nil {
		for _, svc := range v.Snapshot.Services {
			if len(svc.Namespaces) > 1 {
				ch <- prometheus.MustNewConstMetric(mergedDesc, prometheus.GaugeValue, float64(len(svc.Namespaces)), svc.Name)
			}
		}
	}
	if !v.At.IsZero() {
		ch <- prometheus.MustNewConstMetric(viewTimeDesc, prometheus.GaugeValue, float64(v.At.UnixNano())/1e9)
	}
}

// alert counts an alert of kind k. Only the worker counts alerts, and a
// kind's counter is resolved once, on its first alert.
func (m *metrics) alert(k detect.Kind) {
	if k != m.lastKind || m.lastAlerts == nil {
		c, ok := m.alertsOf[k]
		if !ok {
			if m.alertsOf == nil {
				m.alertsOf = map[detect.Kind]prometheus.Counter{}
			}
			c = m.alerts.WithLabelValues(string(k))
			m.alertsOf[k] = c
		}
		m.lastKind, m.lastAlerts = k, c
	}
	m.lastAlerts.Inc()
}
