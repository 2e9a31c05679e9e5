package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/ingest/kafka"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/store/postgres/pgtest"
	"github.com/evidentsec/evident/internal/telemetry"
)

var server pgtest.Server

func TestMain(m *testing.M) {
	code := m.Run()
	if err := server.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop PostgreSQL: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// flaky is the store with checkpoints that fail while down is set.
type flaky struct {
	*postgres.Store
	down atomic.Bool
}

func (f *flaky) CheckpointPartitions(ctx context.Context, parts []postgres.Partition) ([]int32, error) {
	if f.down.Load() {
		return nil, errors.New("store unavailable")
	}
	return f.Store.CheckpointPartitions(ctx, parts)
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func span(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
	return telemetry.Span{Service: svc, SpanID: [8]byte{1, 0, 0, 0, 0, 0, 0, id}, ParentSpanID: [8]byte{1, 0, 0, 0, 0, 0, 0, parent},
		Kind: kind, Name: "call", Start: t0, End: t0.Add(time.Millisecond), Attrs: a}
}

// gateway's record in partition 0 calls orders, whose record is in
// partition 1.
func record(p int32, off int64, sp telemetry.Span) kafka.Record {
	return kafka.Record{Tenant: store.DefaultTenant, Service: sp.Service, Partition: p, Offset: off, Time: t0, Spans: []telemetry.Span{sp}}
}

func newApplier(t *testing.T, st *flaky, findingsRead *atomic.Int32) *Applier {
	t.Helper()
	cfg := DefaultConfig()
	cfg.FindingsInterval = time.Nanosecond
	a, err := NewApplier(cfg, ApplierDeps{
		Store: st,
		NewShard: func(tenant string) (Shard, error) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: st.Store, Model: m})
			return Shard{Engine: e, Model: m}, err
		},
		Findings: func(context.Context, string) ([]findings.Finding, error) {
			findingsRead.Add(1)
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// merged returns the tenant's merged snapshot as an API replica builds it.
func merged(t *testing.T, st *postgres.Store) *model.Snapshot {
	t.Helper()
	states, joins, err := st.View(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	state, err := model.MergeStates(joins, states...)
	if err != nil {
		t.Fatal(err)
	}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	if err := m.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	return m.Snapshot()
}

// TestApplier applies a call across two partitions, checkpoints and joins
// it, restores the partitions in another engine that is handed the same
// records again (counted once), keeps the calls of a failed checkpoint
// for the next one, and reloads findings when their version changes.
func TestApplier(t *testing.T) {
	ctx := t.Context()
	cfg := postgres.DefaultConfig()
	cfg.DSN = server.DSN(t)
	pg, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	st := &flaky{Store: pg}
	var reads atomic.Int32
	recs := []kafka.Record{
		record(0, 0, span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders.internal"})),
		record(1, 0, span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"})),
	}
	first := newApplier(t, st, &reads)
	if offs, err := first.Assign(ctx, []int32{0, 1}); err != nil || len(offs) != 0 {
		t.Fatalf("Assign of new partitions = %v, %v; want none", offs, err)
	}
	if err := first.Apply(ctx, recs); err != nil {
		t.Fatal(err)
	}
	offs, err := first.Checkpoint(ctx)
	if err != nil || offs[0] != 1 || offs[1] != 1 {
		t.Fatalf("Checkpoint = %v, %v; want both partitions at 1", offs, err)
	}
	edges := func() []model.Edge { return merged(t, pg).Service("gateway").Edges }
	if e := edges(); len(e) != 1 || e[0].To != "orders" || e[0].Calls != 1 {
		t.Fatalf("edges after the join = %+v, want gateway->orders once", e)
	}

	// Another engine restores the partitions and is handed the same
	// records again (their offsets were not committed): nothing counts
	// twice.
	first.Revoke(ctx, []int32{0, 1}, false)
	second := newApplier(t, st, &reads)
	if offs, err := second.Assign(ctx, []int32{0, 1}); err != nil || offs[0] != 1 || offs[1] != 1 {
		t.Fatalf("Assign of checkpointed partitions = %v, %v; want both at 1", offs, err)
	}
	if err := second.Apply(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// A call whose checkpoint fails waits in the model for the next one.
	st.down.Store(true)
	if err := second.Apply(ctx, []kafka.Record{record(0, 1, span("gateway", telemetry.SpanKindClient, 4, 1, telemetry.Attrs{ServerAddress: "orders.internal"}))}); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Checkpoint(ctx); err == nil {
		t.Fatal("Checkpoint with the store down succeeded")
	}
	st.down.Store(false)
	if err := second.Apply(ctx, []kafka.Record{record(1, 1, span("orders", telemetry.SpanKindServer, 5, 4, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"}))}); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if e := edges(); len(e) != 1 || e[0].Calls != 2 {
		t.Errorf("edges = %+v, want gateway->orders twice", e)
	}
	if s := merged(t, pg).Service("orders"); s.Spans.Linked != 2 || s.Spans.Server != 2 {
		t.Errorf("orders' spans = %+v, want 2 server spans, 2 linked", s.Spans)
	}

	// An upload through an API replica: the engine reloads the findings.
	before := reads.Load()
	if err := pg.PutFindings(ctx, store.FindingsUpdate{Time: t0, Actor: "test", Source: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if reads.Load() == before {
		t.Error("the findings were not reloaded after an upload")
	}
	// A stale checkpoint drops the partition: another engine has it.
	if err := pg.CheckpointPartition(ctx, 0, 100, nil); err != nil {
		t.Fatal(err)
	}
	if err := second.Apply(ctx, []kafka.Record{record(0, 2, span("gateway", telemetry.SpanKindServer, 6, 0, telemetry.Attrs{}))}); err != nil {
		t.Fatal(err)
	}
	if offs, err := second.Checkpoint(ctx); err != nil || len(offs) != 1 {
		t.Errorf("Checkpoint after another engine moved partition 0 on = %v, %v; want partition 1 only", offs, err)
	}
}

// recorder is an engine.Store that keeps the verdict changes appended,
// and an engine.Alerter that keeps the alerts fired.
type recorder struct {
	engine.Store
	changes []store.VerdictChange
	alerts  []detect.Alert
}

func (r *recorder) AppendVerdicts(_ context.Context, cs []store.VerdictChange) error {
	r.changes = append(r.changes, cs...)
	return nil
}

func (r *recorder) Fire(a detect.Alert) { r.alerts = append(r.alerts, a) }

// TestLeader: an API replica records verdict changes and raises topology
// alerts only while it leads.
func TestLeader(t *testing.T) {
	var l Leader
	r := &recorder{}
	st, al := l.Store(r), l.Alerter(r)
	change := []store.VerdictChange{{Service: "gateway", VulnID: "GO-1", From: "unknown", To: "executed"}}
	st.AppendVerdicts(t.Context(), change)
	al.Fire(detect.Alert{Kind: "new_edge"})
	if len(r.changes) != 0 || len(r.alerts) != 0 {
		t.Fatalf("a replica that does not lead recorded %v and fired %v", r.changes, r.alerts)
	}
	l.lead.Store(true)
	st.AppendVerdicts(t.Context(), change)
	al.Fire(detect.Alert{Kind: "new_edge"})
	if len(r.changes) != 1 || len(r.alerts) != 1 {
		t.Errorf("the leader recorded %v and fired %v, want one of each", r.changes, r.alerts)
	}
	// Without an alerter, nothing to fire to.
	l.Alerter(nil).Fire(detect.Alert{})
}
