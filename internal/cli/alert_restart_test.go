package cli

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
)

// memSink records what it is sent.
type memSink struct {
	mu   sync.Mutex
	sent []alert.Alert
}

func (m *memSink) Name() string { return "mem" }

func (m *memSink) Send(_ context.Context, a alert.Alert) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, a)
	return nil
}

func (m *memSink) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

// TestAlertDedupeSurvivesRestart fires an alert through a tenant's router
// and store sink, "restarts" (a new router over the same SQLite store,
// seeded as tenantUnit.Start seeds it) and fires again.
func TestAlertDedupeSurvivesRestart(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	const key = "exploit_payload|shop|sqli"
	tests := []struct {
		name          string
		tenant, again string // the tenants before and after the restart
		key           string // fired after the restart
		after         time.Duration
		wantDeduped   float64
		wantDelivered int
	}{
		{"within the window", store.DefaultTenant, store.DefaultTenant, key, time.Minute, 1, 0},
		{"just inside the window", "a", "a", key, 10*time.Minute - time.Second, 1, 0},
		{"after the window", store.DefaultTenant, store.DefaultTenant, key, 10 * time.Minute, 0, 1},
		{"another key", store.DefaultTenant, store.DefaultTenant, key + "2", time.Minute, 0, 1},
		{"another tenant", "a", "b", key, time.Minute, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := alert.DefaultConfig() // 10m window
			fire := func(tenantID, key string, now time.Time) (deduped float64, delivered int) {
				t.Helper()
				st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				var ts store.Store = st
				if tenantID != store.DefaultTenant {
					if ts, err = st.Tenant(tenantID); err != nil {
						t.Fatal(err)
					}
				}
				log := slog.New(slog.DiscardHandler)
				al, mem, reg := newAlertLog(ts, log), &memSink{}, prometheus.NewRegistry()
				r, err := alert.NewRouter(cfg, []alert.Sink{al, mem}, alert.Deps{Logger: log, Registerer: reg, Now: func() time.Time { return now }})
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Seed(t.Context(), al); err != nil {
					t.Fatal(err)
				}
				if err := r.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				r.Fire(detect.Alert{Kind: detect.KindExploitPayload, Severity: "high", Service: "shop", Summary: "sqli", DedupeKey: key})
				if err := r.Shutdown(t.Context()); err != nil { // delivers what is queued
					t.Fatal(err)
				}
				mfs, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				for _, mf := range mfs {
					if mf.GetName() != "evident_alerts_deduplicated_total" {
						continue
					}
					for _, m := range mf.GetMetric() {
						deduped += m.GetCounter().GetValue()
					}
				}
				return deduped, mem.count()
			}
			if d, n := fire(tt.tenant, key, t0); d != 0 || n != 1 {
				t.Fatalf("before the restart: deduplicated %v, delivered %d; want 0, 1", d, n)
			}
			gotDeduped, gotDelivered := fire(tt.again, tt.key, t0.Add(tt.after))
			if gotDeduped != tt.wantDeduped || gotDelivered != tt.wantDelivered {
				t.Errorf("after the restart: deduplicated %v, delivered %d; want %v, %d", gotDeduped, gotDelivered, tt.wantDeduped, tt.wantDelivered)
			}
		})
	}
}

// crashStore is a store whose checkpoints are lost, as a process killed
// before its next checkpoint loses them: what it logged is replayed by
// the next start.
type crashStore struct{ store.Store }

func (crashStore) Checkpoint(context.Context, int64, []byte) error { return nil }

// replayLife is one life of a tenant's engine and router over the SQLite
// store in dir, at the clock now: what tenantUnit.Start and Shutdown do,
// without a checkpoint.
type replayLife struct {
	st  *sqlite.Store
	eng *engine.Engine
	r   *alert.Router
	mem *memSink
}

func startReplayLife(t *testing.T, dir string, now time.Time) *replayLife {
	t.Helper()
	st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	clock := func() time.Time { return now }
	l := &replayLife{st: st, mem: &memSink{}}
	al := newAlertLog(st, log)
	if l.r, err = alert.NewRouter(alert.DefaultConfig(), []alert.Sink{al, l.mem}, alert.Deps{Logger: log, Now: clock}); err != nil {
		t.Fatal(err)
	}
	ecfg := engine.DefaultConfig()
	ecfg.AssessInterval, ecfg.CheckpointInterval, ecfg.RefreshInterval = 5*time.Millisecond, time.Hour, 0
	ecfg.Anomaly.HostWarmUp = 0
	acfg := assess.DefaultConfig()
	acfg.Sensitivity = []assess.SensitivityRule{{Store: "postgresql://shop/*", Labels: []string{"pii"}}}
	if l.eng, err = engine.New(ecfg, engine.Deps{
		Store: crashStore{st}, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
		Assess: acfg, Alerter: l.r, Logger: log, Now: clock,
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.r.Seed(t.Context(), al); err != nil {
		t.Fatal(err)
	}
	if err := l.eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := l.r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return l
}

// stop drains the engine (no checkpoint) and the router, and closes the
// store.
func (l *replayLife) stop(t *testing.T) {
	t.Helper()
	if err := l.eng.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := l.r.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := l.st.Close(); err != nil {
		t.Fatal(err)
	}
}

func (l *replayLife) kinds() map[detect.Kind]int {
	l.mem.mu.Lock()
	defer l.mem.mu.Unlock()
	n := map[detect.Kind]int{}
	for _, a := range l.mem.sent {
		n[a.Kind]++
	}
	return n
}

// TestReplayedAlertsNotSentAgain: an engine applies telemetry that
// raises every kind of alert bound to telemetry, and a repeat of its
// exploit, its router delivers them (the repeat deduplicated), then the
// router dies and one more batch is logged and applied without its
// alert reaching a sink, and the process crashes (no checkpoint). An
// hour later, well past the dedupe window, the next start replays the
// log: only the alert that never reached a sink is delivered, and the
// store holds each alert once.
func TestReplayedAlertsNotSentAgain(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	sp := func(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
		return telemetry.Span{Service: svc, Kind: kind, SpanID: [8]byte{7: id}, ParentSpanID: [8]byte{7: parent},
			TraceID: [16]byte{15: id}, Name: "op", Start: t0, End: t0.Add(time.Millisecond), Attrs: a}
	}
	spans := []telemetry.Span{
		sp("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders/{id}", URLPath: "/orders/7", URLQuery: "id=1%27%20OR%201=1--"}),
		sp("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders"}),
		sp("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o/{id}"}),
		sp("orders", telemetry.SpanKindClient, 4, 3, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "customers"}),
		sp("orders", telemetry.SpanKindClient, 5, 3, telemetry.Attrs{ServerAddress: "api.stripe.com", HTTPMethod: "POST"}),
	}
	prof := &telemetry.ProfileBatch{
		Service: "orders", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 10 * time.Second,
		Locations: [][]attribution.Frame{
			{{Function: "golang.org/x/text/language.Parse", File: "/home/u/go/pkg/mod/golang.org/x/text@v0.3.7/language/parse.go"}},
			{{Function: "main.handle", File: "/src/orders/main.go"}},
		},
		Samples: []telemetry.Sample{{Locations: []int32{0, 1}, Count: 5, Value: 50_000_000}},
	}
	finding := findings.Finding{
		Service:       "orders",
		Package:       findings.Package{PURL: "pkg:golang/golang.org/x/text@v0.3.7", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"},
		Vulnerability: findings.Vulnerability{ID: "GO-2022-1059"},
		Severity:      findings.Severity{Level: "high"},
		Symbols:       []string{"golang.org/x/text/language.Parse"},
	}
	// A scanner repeating the exploit two minutes later: a duplicate
	// within the window before the crash, and after it.
	repeat := []telemetry.Span{spans[0]}
	repeat[0].SpanID[0], repeat[0].Start, repeat[0].End = 1, t0.Add(2*time.Minute), t0.Add(2*time.Minute+time.Millisecond)
	// The batch whose alert never reaches a sink: an exploit on another
	// endpoint, logged and applied after the router died, as a crash
	// can leave a batch logged whose alert no sink got.
	late := []telemetry.Span{sp("gateway", telemetry.SpanKindServer, 9, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/search", URLPath: "/search", URLQuery: "q=1%27%20OR%201=1--"})}
	late[0].Start, late[0].End = t0.Add(time.Minute), t0.Add(time.Minute+time.Millisecond)

	before := map[detect.Kind]int{detect.KindFirstExecution: 1, detect.KindSensitivePath: 1, detect.KindExploitPayload: 1, detect.KindNewHost: 2}
	l := startReplayLife(t, dir, t0)
	if err := l.eng.SetFindings(t.Context(), store.FindingsUpdate{Findings: []findings.Finding{finding}, Actor: "test", Time: t0}); err != nil {
		t.Fatal(err)
	}
	if err := l.eng.TracesConsumer().Consume(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	if err := l.eng.ProfilesConsumer().Consume(t.Context(), []*telemetry.ProfileBatch{prof}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !cmp.Equal(l.kinds(), before); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("before the crash, delivered %v, want %v", l.kinds(), before)
		}
	}
	if err := l.eng.TracesConsumer().Consume(t.Context(), repeat); err != nil {
		t.Fatal(err)
	}
	if err := l.r.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := l.eng.TracesConsumer().Consume(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	l.stop(t)

	l = startReplayLife(t, dir, t0.Add(time.Hour))
	l.stop(t)
	if got, want := l.kinds(), map[detect.Kind]int{detect.KindExploitPayload: 1}; !cmp.Equal(got, want) {
		t.Errorf("after the restart, delivered %v, want %v (the alert that never reached a sink)", got, want)
	}
	st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored, err := st.Alerts(t.Context(), store.AlertQuery{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, a := range stored {
		got[a.Kind]++
	}
	want := map[string]int{"first_execution": 1, "exposed_to_sensitive_store": 1, "exploit_payload": 2, "new_outbound_host": 2}
	if !cmp.Equal(got, want) {
		t.Errorf("stored alerts by kind = %v, want %v", got, want)
	}
}
