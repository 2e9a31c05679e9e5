package alert

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/telemetry"
)

// recordSink keeps what it is sent.
type recordSink struct {
	mu  sync.Mutex
	got []Alert
}

func (s *recordSink) Name() string { return "record" }

func (s *recordSink) Send(_ context.Context, a Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, a)
	return nil
}

// attackSpans are n spans of a scanner sending one payload to three
// endpoints of two services, over and over.
func attackSpans(n int) []telemetry.Span {
	var out []telemetry.Span
	for i := range n {
		out = append(out, telemetry.Span{
			Service: []string{"shop", "cart"}[i%2], Kind: telemetry.SpanKindServer, Name: "GET",
			TraceID: [16]byte{byte(i)}, SpanID: [8]byte{byte(i)},
			Attrs: telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: fmt.Sprintf("/r/%d", i%3), URLQuery: "id=1%27%20OR%201=1--&q=../../etc/passwd"},
		})
	}
	return out
}

// Series of TestFirePending.
const (
	deduped     = `evident_alerts_deduplicated_total{kind="exploit_payload",reason="window"}`
	rateLimited = `reason="rate_limited"`
)

// TestFirePending checks that a router given pending alerts delivers the
// alerts it delivers when given them built, with the same metrics:
// duplicates within the window, no window, the rate limit, and alerts
// fired after shutdown.
func TestFirePending(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*Config)
		spans  int
		every  time.Duration // the clock's step per span
		stopAt int           // shut the routers down before this span; 0: never
		// want are series the case must have counted.
		want []string
	}{
		{name: "dedupe window", spans: 200, every: 10 * time.Second, want: []string{deduped}},
		{name: "no dedupe", cfg: func(c *Config) { c.DedupeWindow = 0 }, spans: 60, every: time.Second, want: []string{rateLimited}},
		{name: "short window", cfg: func(c *Config) { c.DedupeWindow = 30 * time.Second }, spans: 200, every: 2 * time.Second, want: []string{deduped, rateLimited}},
		{name: "rate limited", cfg: func(c *Config) { c.DedupeWindow, c.KeyBurst = time.Second, 2 }, spans: 100, every: 3 * time.Second, want: []string{rateLimited}},
		{name: "after shutdown", spans: 100, every: time.Minute, stopAt: 50, want: []string{deduped, `reason="shutdown"`}},
	}
	rules, err := detect.CompileRules(detect.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SinkBurst = 10_000
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			now := t0
			type side struct {
				r    *Router
				reg  *prometheus.Registry
				sink *recordSink
			}
			var sides [2]side // built, pending
			for i := range sides {
				s := &sides[i]
				s.reg, s.sink = prometheus.NewRegistry(), &recordSink{}
				if s.r, err = NewRouter(cfg, []Sink{s.sink}, Deps{Registerer: s.reg, Now: func() time.Time { return now }}); err != nil {
					t.Fatal(err)
				}
				if err := s.r.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			stop := func() {
				for _, s := range sides {
					if err := s.r.Shutdown(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			sc := rules.NewScanner(nil)
			spans := attackSpans(tt.spans)
			for i := range spans {
				if i == tt.stopAt && tt.stopAt > 0 {
					stop()
				}
				now = now.Add(tt.every)
				sc.Exploits(&spans[i], now.Add(-5*time.Millisecond), now, func(p *detect.Pending) {
					sides[0].r.Fire(p.Alert())
					sides[1].r.FirePending(p)
				})
			}
			stop()
			built, pending := sides[0], sides[1]
			if len(built.sink.got) == 0 {
				t.Fatal("nothing delivered")
			}
			if diff := cmp.Diff(pending.sink.got, built.sink.got); diff != "" {
				t.Errorf("delivered (-pending +built):\n%s", diff)
			}
			got := metricsText(t, pending.reg)
			if diff := cmp.Diff(got, metricsText(t, built.reg)); diff != "" {
				t.Errorf("metrics (-pending +built):\n%s", diff)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("nothing counted as %s:\n%s", w, got)
				}
			}
		})
	}
}

// metricsText is what reg exposes, less the sinks' send durations,
// which are wall time.
func metricsText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if mf.GetName() == "evident_alert_sink_send_duration_seconds" {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestFirePendingDuplicate checks that a duplicate pending alert is
// counted and dropped without being built: building one allocates (its
// summary, evidence and ids), dropping it does not.
func TestFirePendingDuplicate(t *testing.T) {
	rules, err := detect.CompileRules(detect.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, testConfig(), nil, &recordSink{})
	sc := rules.NewScanner(nil)
	sp := attackSpans(1)[0]
	fire := func() { sc.Exploits(&sp, t0, t0, r.FirePending) }
	rules0 := 0
	sc.Exploits(&sp, t0, t0, func(p *detect.Pending) {
		rules0++
		r.FirePending(p)
	})
	if allocs := testing.AllocsPerRun(100, fire); allocs != 0 {
		t.Errorf("a duplicate: %v allocations, want 0", allocs)
	}
	// Each rule that fires on the span is fired once, then counted as a
	// duplicate on every call after the first (AllocsPerRun makes 101).
	kind := string(detect.KindExploitPayload)
	if got, want := testutil.ToFloat64(r.m.deduplicated.WithLabelValues(kind, dedupeWindow)), float64(rules0*101); got != want {
		t.Errorf("deduplicated = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(r.m.fired.WithLabelValues(kind)); got != float64(rules0) {
		t.Errorf("fired = %v, want %d", got, rules0)
	}
}
