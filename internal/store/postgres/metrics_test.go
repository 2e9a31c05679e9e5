package postgres

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/store"
)

// TestCollector appends in two tenants and checks the commit metrics and
// the pool's are gathered, once for the database.
func TestCollector(t *testing.T) {
	s, err := Open(t.Context(), newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg := prometheus.NewRegistry()
	if err := reg.Register(s.Collector()); err != nil {
		t.Fatal(err)
	}
	other, err := s.ForTenant("team-a")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, other, s} {
		if _, err := st.AppendBatch(t.Context(), store.BatchSpans, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
		if mf.GetName() == "evident_store_committed_batches_total" {
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != 3 {
				t.Errorf("committed batches = %v, want 3", got)
			}
		}
	}
	for name, want := range map[string]int{
		"evident_store_commit_duration_seconds": 1, "evident_store_committed_batches_total": 1,
		"evident_store_pool_connections": 2, "evident_store_pool_max_connections": 1,
		"evident_store_pool_acquire_waits_total": 1, "evident_store_pool_acquire_wait_seconds_total": 1,
	} {
		if series[name] != want {
			t.Errorf("%s: %d series, want %d (have %v)", name, series[name], want, series)
		}
	}
}
