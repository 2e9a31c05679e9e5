package sqlite

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/store"
)

// TestCollector: the store's metrics count the committed batches of
// every tenant, and show its files and connection pools.
func TestCollector(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir(), DefaultConfig())
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
	if got := gatheredValue(t, reg, "evident_store_committed_batches_total"); got != 3 {
		t.Errorf("committed batches = %v, want 3", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "evident_store_size_bytes" && m.GetLabel()[0].GetValue() == "log" {
				var onDisk int64
				for _, name := range segmentFiles(t, s.dir) {
					fi, err := os.Stat(filepath.Join(s.dir, name))
					if err != nil {
						t.Fatal(err)
					}
					onDisk += fi.Size()
				}
				if got := m.GetGauge().GetValue(); got != float64(onDisk) || onDisk == 0 {
					t.Errorf("log size %v, want the segments' %d bytes", got, onDisk)
				}
			}
		}
	}
	for name, want := range map[string]int{
		"evident_store_commit_duration_seconds": 1, "evident_store_committed_batches_total": 1,
		"evident_store_size_bytes": 3, "go_sql_open_connections": 2,
	} {
		if got[name] != want {
			t.Errorf("%s: %d series, want %d (have %v)", name, got[name], want, got)
		}
	}
}

// gatheredValue is the value of the counter name, of one series, in reg.
func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}
