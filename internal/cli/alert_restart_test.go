package cli

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
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
