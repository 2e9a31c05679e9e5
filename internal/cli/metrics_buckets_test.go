package cli

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/store"
)

// TestCommitBucketsHoldAckBuckets: the group commit's duration histogram
// has every bound the receivers' request duration has, so that how much
// of an acknowledgement's p99 the log's commit is reads bucket by bucket.
func TestCommitBucketsHoldAckBuckets(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Duration.WithLabelValues("otlp", "grpc", "traces").Observe(0.001)
	var calls store.Calls
	calls.StartCommits(func(group []*store.Pending) ([]int64, error) { return make([]int64, len(group)), nil })
	defer calls.Close(func() error { return nil })
	if err := reg.Register(calls.CommitCollector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	bounds := map[string][]float64{}
	for _, mf := range mfs {
		// Each has one series here.
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			bounds[mf.GetName()] = append(bounds[mf.GetName()], b.GetUpperBound())
		}
	}
	ack, commit := bounds["evident_receiver_request_duration_seconds"], bounds["evident_store_commit_duration_seconds"]
	if len(ack) == 0 || len(commit) == 0 {
		t.Fatalf("buckets: ack %v, commit %v", ack, commit)
	}
	for _, b := range ack {
		if !slices.Contains(commit, b) {
			t.Errorf("the commit histogram has no bound %g of the ack histogram's %v: %v", b, ack, commit)
		}
	}
}
