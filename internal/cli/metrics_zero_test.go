package cli

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsFromZero is docs/metrics.md's promise: a series with a
// known, small set of label values exists at 0 from the start, so that a
// dashboard's rate is 0 before the first event rather than "no data". It
// scrapes a serve that has seen no telemetry.
func TestMetricsFromZero(t *testing.T) {
	cfg := serveTestConfig(t)
	cfg.Serve.Alerts.JSONLines = []jsonLinesSink{{Name: "file", Path: filepath.Join(t.TempDir(), "alerts.jsonl")}}
	srv := startTestServerConfig(t, t.TempDir(), cfg, serveFlags{vulns: []string{filepath.Join(shop, "recorded", "osv")}})
	t.Cleanup(func() { shutdown(t, srv) })
	mfs := scrapeFamilies(t, srv.apiURL()+"/metrics")

	tests := []struct {
		name   string
		labels map[string]string // those the series must have, of all it has
	}{
		{"evident_receiver_accepted_spans_total", map[string]string{"receiver": "otlp", "transport": "grpc"}},
		{"evident_receiver_accepted_spans_total", map[string]string{"receiver": "otlp", "transport": "http"}},
		{"evident_receiver_accepted_profiles_total", map[string]string{"receiver": "otlp", "transport": "grpc"}},
		{"evident_receiver_accepted_profiles_total", map[string]string{"receiver": "otlp", "transport": "http"}},
		{"evident_receiver_accepted_profiles_total", map[string]string{"receiver": "pyroscope", "transport": "http"}},
		{"evident_receiver_accepted_profiles_total", map[string]string{"receiver": "pyroscope", "transport": "connect"}},
		{"evident_receiver_refused_spans_total", map[string]string{"receiver": "otlp", "transport": "http", "reason": "full"}},
		{"evident_receiver_refused_requests_total", map[string]string{"receiver": "pyroscope", "transport": "http", "signal": "profiles", "reason": "too_large"}},
		{"evident_receiver_request_duration_seconds", map[string]string{"receiver": "otlp", "transport": "http", "signal": "traces"}},
		{"evident_engine_batches_total", map[string]string{"tenant": "default", "signal": "spans", "result": "accepted"}},
		{"evident_engine_batches_total", map[string]string{"tenant": "default", "signal": "profiles", "result": "refused"}},
		{"evident_engine_items_total", map[string]string{"tenant": "default", "signal": "spans"}},
		{"evident_engine_items_total", map[string]string{"tenant": "default", "signal": "profiles"}},
		{"evident_engine_redacted_batches_total", map[string]string{"tenant": "default", "signal": "spans"}},
		{"evident_engine_detections_total", map[string]string{"tenant": "default", "kind": "first_execution"}},
		{"evident_engine_checkpoints_total", map[string]string{"tenant": "default"}},
		{"evident_engine_reassessed_findings_total", map[string]string{"tenant": "default"}},
		{"evident_alerts_fired_total", map[string]string{"tenant": "default", "kind": "exploit_payload"}},
		{"evident_alerts_deduplicated_total", map[string]string{"tenant": "default", "kind": "exploit_payload", "reason": "observed"}},
		{"evident_alerts_sent_total", map[string]string{"tenant": "default", "kind": "exploit_payload", "sink": "file"}},
		{"evident_alerts_dropped_total", map[string]string{"tenant": "default", "kind": "exploit_payload", "sink": "", "reason": "rate_limited"}},
		{"evident_alerts_dropped_total", map[string]string{"tenant": "default", "kind": "exploit_payload", "sink": "file", "reason": "failed"}},
		{"evident_alert_sink_retries_total", map[string]string{"tenant": "default", "sink": "file"}},
		{"evident_alert_latency_seconds", map[string]string{"tenant": "default", "kind": "first_execution"}},
		{"evident_auth_requests_total", map[string]string{"listener": "otlp-http", "result": "ok"}},
		{"evident_auth_requests_total", map[string]string{"listener": "pyroscope", "result": "bad_credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+labelString(tt.labels), func(t *testing.T) {
			mf, ok := mfs[tt.name]
			if !ok {
				t.Fatalf("no family %s before any traffic", tt.name)
			}
			for _, m := range mf.GetMetric() {
				if !hasLabels(m, tt.labels) {
					continue
				}
				if v := value(m); v != 0 {
					t.Errorf("%s%s = %v before any traffic, want 0", tt.name, labelString(tt.labels), v)
				}
				return
			}
			t.Errorf("no series %s%s before any traffic", tt.name, labelString(tt.labels))
		})
	}
}

// scrapeFamilies returns the metric families /metrics exposes, by name.
func scrapeFamilies(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v { // an empty value may be no label at all
			return false
		}
	}
	return true
}

// value is a counter's value or a histogram's count.
func value(m *dto.Metric) float64 {
	if h := m.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return m.GetCounter().GetValue()
}

func labelString(labels map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"tenant", "receiver", "listener", "transport", "signal", "kind", "sink", "result", "reason"} {
		if v, ok := labels[k]; ok {
			b.WriteString("," + k + "=" + v)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "{" + b.String()[1:] + "}"
}
