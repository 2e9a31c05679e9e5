package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/ingest/kafka"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/pipeline"
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

// flaky is the store with checkpoints that fail while down is set, and
// that commit but fail, as when the connection drops before the commit's
// acknowledgement, while ackLost is; Checkpointed fails while askDown
// is.
type flaky struct {
	*postgres.Store
	down, ackLost, askDown atomic.Bool
}

func (f *flaky) Checkpointed(ctx context.Context, parts []postgres.Partition) ([]int32, error) {
	if f.askDown.Load() {
		return nil, errors.New("store unavailable")
	}
	return f.Store.Checkpointed(ctx, parts)
}

func (f *flaky) CheckpointPartitions(ctx context.Context, parts []postgres.Partition) ([]int32, error) {
	if f.down.Load() {
		return nil, errors.New("store unavailable")
	}
	stale, err := f.Store.CheckpointPartitions(ctx, parts)
	if err == nil && f.ackLost.Load() {
		return nil, errors.New("unexpected EOF")
	}
	return stale, err
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
		SeedAlerts: skipSeedTenant,
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
	pg := openStore(t)
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
	upload(t, pg, store.DefaultTenant)
	if _, err := second.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if reads.Load() == before {
		t.Error("the findings were not reloaded after an upload")
	}
	// A stale checkpoint drops the partition: another engine claimed it.
	if _, _, _, err := pg.ClaimPartition(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := second.Apply(ctx, []kafka.Record{record(0, 2, span("gateway", telemetry.SpanKindServer, 6, 0, telemetry.Attrs{}))}); err != nil {
		t.Fatal(err)
	}
	if offs, err := second.Checkpoint(ctx); err != nil || len(offs) != 1 {
		t.Errorf("Checkpoint after another engine moved partition 0 on = %v, %v; want partition 1 only", offs, err)
	}
}

// TestCheckpointAckLost: a checkpoint that committed though the store's
// answer was lost hands its calls to the join once: a callee waiting for
// its caller does not wait in the shard too, to be joined there when the
// caller comes while the store's copy expires as unlinked.
func TestCheckpointAckLost(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	st := &flaky{Store: pg}
	var reads atomic.Int32
	a := newApplier(t, st, &reads)
	if _, err := a.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []kafka.Record{record(0, 0, span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"}))}); err != nil {
		t.Fatal(err)
	}
	st.ackLost.Store(true)
	offs, err := a.Checkpoint(ctx)
	st.ackLost.Store(false)
	if err != nil || offs[0] != 1 {
		t.Errorf("Checkpoint whose answer was lost = %v, %v; want partition 0 at 1 (it committed)", offs, err)
	}
	// The caller, in the same partition.
	if err := a.Apply(ctx, []kafka.Record{record(0, 1, span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders.internal"}))}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// The callee waits from when the engine received it.
	if _, _, err := pg.Join(ctx, time.Now().Add(3*time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	snap := merged(t, pg)
	if got, want := snap.Service("orders").Spans, (model.SpanCounts{All: 1, Server: 1, Linked: 1}); got != want {
		t.Errorf("orders' spans = %+v, want %+v", got, want)
	}
	if e := snap.Service("gateway").Edges; len(e) != 1 || e[0].Calls != 1 {
		t.Errorf("gateway's edges = %+v, want one call to orders", e)
	}
}

// TestCheckpointInDoubt: a checkpoint that committed though the store's
// answer was lost, and the store then down, so that the engine could not
// ask whether it committed, hands its calls to the join once, however
// long the store stays down: handed over again more than two join
// windows later, when the store no longer remembers the first, a callee
// counted twice.
func TestCheckpointInDoubt(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	st := &flaky{Store: pg}
	var reads atomic.Int32
	a := newApplier(t, st, &reads)
	if _, err := a.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []kafka.Record{record(0, 0, span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"}))}); err != nil {
		t.Fatal(err)
	}
	st.ackLost.Store(true)
	st.askDown.Store(true)
	if _, err := a.Checkpoint(ctx); err == nil {
		t.Error("Checkpoint that could not tell whether it committed succeeded")
	}
	st.ackLost.Store(false)
	// The callee's caller never comes: the store's copy expires, and the
	// store forgets it two windows after it began to wait.
	now := time.Now()
	for _, at := range []time.Duration{2 * time.Minute, 4 * time.Minute} {
		if _, _, err := pg.Join(ctx, now.Add(at), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	st.askDown.Store(false)
	if err := a.Apply(ctx, []kafka.Record{record(0, 1, span("gateway", telemetry.SpanKindServer, 4, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/"}))}); err != nil {
		t.Fatal(err)
	}
	if offs, err := a.Checkpoint(ctx); err != nil || offs[0] != 2 {
		t.Fatalf("Checkpoint after the store came back = %v, %v; want partition 0 at 2", offs, err)
	}
	if _, _, err := pg.Join(ctx, now.Add(6*time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, want := merged(t, pg).Service("orders").Spans, (model.SpanCounts{All: 1, Server: 1, Unlinked: 1}); got != want {
		t.Errorf("orders' spans = %+v, want %+v", got, want)
	}
}

// TestCheckpointAfterDoubt: once a checkpoint in doubt is found to have
// committed, a checkpoint that fails is not taken for committed because
// the store holds that one's offset of a partition with no record
// since: the calls of another partition it took wait again, and the
// partition is kept.
func TestCheckpointAfterDoubt(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	st := &flaky{Store: pg}
	var reads atomic.Int32
	a := newApplier(t, st, &reads)
	if _, err := a.Assign(ctx, []int32{0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []kafka.Record{record(0, 0, span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"}))}); err != nil {
		t.Fatal(err)
	}
	st.ackLost.Store(true)
	st.askDown.Store(true)
	if _, err := a.Checkpoint(ctx); err == nil {
		t.Fatal("Checkpoint that could not tell whether it committed succeeded")
	}
	st.ackLost.Store(false)
	st.askDown.Store(false)
	// billing's callee waits for a caller in partition 1; the store is
	// down for the checkpoint that hands it over.
	if err := a.Apply(ctx, []kafka.Record{record(1, 0, span("billing", telemetry.SpanKindServer, 5, 9, telemetry.Attrs{HTTPMethod: "POST", HTTPRoute: "/pay"}))}); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	if offs, err := a.Checkpoint(ctx); err == nil {
		t.Errorf("Checkpoint with the store down = %v, nil; want an error", offs)
	}
	st.down.Store(false)
	offs, err := a.Checkpoint(ctx)
	if err != nil || offs[0] != 1 || offs[1] != 1 {
		t.Errorf("Checkpoint = %v, %v; want both partitions at 1", offs, err)
	}
	if b := merged(t, pg).Service("billing"); b == nil || b.Spans.Pending != 1 {
		t.Errorf("billing = %+v, want its SERVER span waiting in the store", b)
	}
}

// TestCheckpointInDoubtNotCommitted: a checkpoint that failed while the
// store could not say whether it committed, and had not, puts its calls
// back once the store can say: billing's callee, taken for the hand-over,
// waits in the store after the next checkpoint, not lost.
func TestCheckpointInDoubtNotCommitted(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	st := &flaky{Store: pg}
	var reads atomic.Int32
	a := newApplier(t, st, &reads)
	if _, err := a.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []kafka.Record{record(0, 0, span("billing", telemetry.SpanKindServer, 5, 9, telemetry.Attrs{HTTPMethod: "POST", HTTPRoute: "/pay"}))}); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	st.askDown.Store(true)
	if offs, err := a.Checkpoint(ctx); err == nil {
		t.Fatalf("Checkpoint with the store down = %v, nil; want an error", offs)
	}
	st.down.Store(false)
	st.askDown.Store(false)
	if offs, err := a.Checkpoint(ctx); err != nil || offs[0] != 1 {
		t.Fatalf("Checkpoint after the store came back = %v, %v; want partition 0 at 1", offs, err)
	}
	if b := merged(t, pg).Service("billing"); b == nil || b.Spans.Pending != 1 {
		t.Errorf("billing = %+v, want its SERVER span waiting in the store", b)
	}
}

// TestWaitEndsWithoutRecords: a merged view judges a consumed
// destination's wait for its producers (model.Store.Waiting) at the
// latest time its shards' states were written. A shard whose last state
// said the destination waits writes its state again at a checkpoint
// once the wait has ended, though no record came since, and so does one
// restored by another engine; before, once the records stopped, no
// state was written and the consumer waited for ever.
func TestWaitEndsWithoutRecords(t *testing.T) {
	receive := span("worker", telemetry.SpanKindClient, 3, 2,
		telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: "receive"})
	tests := []struct {
		name     string
		after    time.Duration // the checkpoint with no record since, after the first
		reassign bool          // another engine has the partition by then
		down     bool          // the store fails that checkpoint, and is back for the next
		want     bool
	}{
		{"within the window", 10 * time.Second, false, false, true},
		{"an hour after", time.Hour, false, false, false},
		{"an hour after, restored by another engine", time.Hour, true, false, false},
		{"an hour after, the store down then", time.Hour, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			pg := openStore(t)
			st := &flaky{Store: pg}
			var clock atomic.Int64
			clock.Store(t0.UnixNano())
			now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
			newApplier := func() *Applier {
				a, err := NewApplier(DefaultConfig(), ApplierDeps{
					Store: st,
					NewShard: func(string) (Shard, error) {
						m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
						m.SetClock(now)
						e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: pg, Model: m, Now: now})
						return Shard{Engine: e, Model: m}, err
					},
					Findings:   func(context.Context, string) ([]findings.Finding, error) { return nil, nil },
					SeedAlerts: skipSeedTenant,
					Now:        now,
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Assign(ctx, []int32{0}); err != nil {
					t.Fatal(err)
				}
				return a
			}
			a := newApplier()
			if err := a.Apply(ctx, []kafka.Record{record(0, 0, receive)}); err != nil {
				t.Fatal(err)
			}
			clock.Add(int64(5 * time.Second))
			if _, err := a.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			waiting := func() bool {
				c := merged(t, pg).Service("worker").Consumes
				if len(c) != 1 {
					t.Fatalf("worker consumes %+v, want kafka://orders", c)
				}
				return c[0].Waiting
			}
			if !waiting() {
				t.Fatal("kafka://orders does not wait for its producers 5 s after its first span")
			}
			if tt.reassign {
				a.Revoke(ctx, []int32{0}, false)
				a = newApplier()
			}
			clock.Add(int64(tt.after))
			if tt.down {
				st.down.Store(true)
				if _, err := a.Checkpoint(ctx); err == nil {
					t.Fatal("Checkpoint with the store down succeeded")
				}
				st.down.Store(false)
			}
			if _, err := a.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			if got := waiting(); got != tt.want {
				t.Errorf("kafka://orders waiting = %v %v after its first span, no record since; want %v", got, tt.after+5*time.Second, tt.want)
			}
		})
	}
}

// TestApplierReloadsFindings: findings stored after a new engine loaded
// a tenant's and before its first look at the findings version are
// reloaded at that look, not taken as already loaded; and a reload that
// failed is tried again at the next look.
func TestApplierReloadsFindings(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	st := &flaky{Store: pg}
	var (
		reads atomic.Int32
		fail  atomic.Bool
	)
	ccfg := DefaultConfig()
	ccfg.FindingsInterval = time.Nanosecond
	a, err := NewApplier(ccfg, ApplierDeps{
		Store: st,
		NewShard: func(tenant string) (Shard, error) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: pg, Model: m})
			return Shard{Engine: e, Model: m}, err
		},
		Findings: func(context.Context, string) ([]findings.Finding, error) {
			if fail.Load() {
				return nil, errors.New("store unavailable")
			}
			reads.Add(1)
			return nil, nil
		},
		SeedAlerts: skipSeedTenant,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []kafka.Record{record(0, 0, span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{}))}); err != nil {
		t.Fatal(err)
	}
	if got := reads.Load(); got != 1 {
		t.Fatalf("findings read %d times for the first shard, want 1", got)
	}
	upload(t, pg, store.DefaultTenant)
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reads.Load(); got != 2 {
		t.Errorf("findings read %d times after an upload before the first check, want 2 (reloaded)", got)
	}
	// An upload of another tenant, of which this engine has no shard.
	upload(t, pg, "other")
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reads.Load(); got != 2 {
		t.Errorf("findings read %d times after an upload of another tenant, want 2 (not reloaded)", got)
	}

	upload(t, pg, store.DefaultTenant)
	fail.Store(true)
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	fail.Store(false)
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reads.Load(); got != 3 {
		t.Errorf("findings read %d times after a failed reload and another check, want 3 (reloaded again)", got)
	}
}

// upload replaces the findings of tenant by one of its gateway, as an
// upload through an API replica does.
func upload(t *testing.T, pg *postgres.Store, tenant string) {
	t.Helper()
	st, err := pg.ForTenant(tenant)
	if err != nil {
		t.Fatal(err)
	}
	f := findings.Finding{Service: "gateway", Package: findings.Package{PURL: "pkg:golang/example.com/lib@v1.0.0", Ecosystem: "Go", Name: "example.com/lib", Version: "v1.0.0"},
		Vulnerability: findings.Vulnerability{ID: "GO-2026-0001"}}
	if err := st.PutFindings(t.Context(), store.FindingsUpdate{Time: t0, Actor: "test", Source: "test", Findings: []findings.Finding{f}}); err != nil {
		t.Fatal(err)
	}
}

// findingsReads is an engine.Store that counts the reads of findings.
type findingsReads struct {
	engine.Store
	n atomic.Int32
}

func (r *findingsReads) Findings(ctx context.Context) ([]findings.Finding, error) {
	r.n.Add(1)
	return r.Store.Findings(ctx)
}

// TestViewReloadsChangedTenants: an API replica's view reloads the
// findings of every tenant it holds at its first Sync, and after that of
// the tenants whose findings an upload changed, not the others'.
func TestViewReloadsChangedTenants(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	tenants := []string{store.DefaultTenant, "other"}
	reads := map[string]*findingsReads{}
	engines := map[string]*engine.Engine{}
	for _, tenant := range tenants {
		st, err := pg.ForTenant(tenant)
		if err != nil {
			t.Fatal(err)
		}
		reads[tenant] = &findingsReads{Store: st}
		m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
		e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: reads[tenant], Model: m})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Shutdown(context.Background()) })
		engines[tenant] = e
	}
	v, err := NewView(DefaultConfig(), ViewDeps{
		Versions: func(context.Context) (map[string]string, error) { return nil, nil },
		Read:     func(ctx context.Context, _ string) ([][]byte, model.Joins, error) { return pg.View(ctx) },
		Engine: func(context.Context, string) (*engine.Engine, error) {
			return nil, errors.New("no shards in this test")
		},
		FindingsVersions: pg.FindingsVersions,
		Engines:          func() map[string]*engine.Engine { return engines },
		Lead:             func(context.Context) (bool, error) { return false, nil },
		Leader:           &Leader{},
		SeedAlerts:       skipSeed,
	})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int32{}
	step := func(what string, want map[string]int32) {
		t.Helper()
		if err := v.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for _, tenant := range tenants {
			n := reads[tenant].n.Load()
			if got := n - last[tenant]; got != want[tenant] {
				t.Errorf("%s: tenant %s's findings read %d times, want %d", what, tenant, got, want[tenant])
			}
			last[tenant] = n
		}
	}
	for _, tenant := range tenants {
		last[tenant] = reads[tenant].n.Load() // the engines' starts
	}
	step("first Sync", map[string]int32{store.DefaultTenant: 1, "other": 1})
	step("Sync without an upload", map[string]int32{})
	upload(t, pg, "other")
	step("Sync after an upload of tenant other", map[string]int32{"other": 1})
	upload(t, pg, store.DefaultTenant)
	upload(t, pg, "other")
	step("Sync after an upload of both", map[string]int32{store.DefaultTenant: 1, "other": 1})
}

// TestViewRebuildsChangedTenants: an API replica rebuilds the merged view
// of the tenants whose shards or joins changed since it last built it,
// and of no other: a Sync with nothing new reads no shard, a checkpoint
// rebuilds its tenant's view, and so does a join that only expires that
// tenant's calls.
func TestViewRebuildsChangedTenants(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	var findingsReads atomic.Int32
	a := newApplier(t, &flaky{Store: pg}, &findingsReads)
	if _, err := a.Assign(ctx, []int32{0, 1}); err != nil {
		t.Fatal(err)
	}
	apply := func(recs ...kafka.Record) {
		t.Helper()
		if err := a.Apply(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ofOther := func(r kafka.Record) kafka.Record {
		r.Tenant = "other"
		return r
	}
	rebuilt := map[string]int{}
	v, engines := tenantView(t, pg, func(tenant string) { rebuilt[tenant]++ })
	step := func(what string, want map[string]int) {
		t.Helper()
		if err := v.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, rebuilt, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: views rebuilt (-want +got):\n%s", what, diff)
		}
		clear(rebuilt)
	}
	services := func(tenant string) []string {
		t.Helper()
		var names []string
		for _, s := range engines[tenant].Snapshot().Services {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		return names
	}

	// Tenant default's call is joined at the checkpoint; tenant other's
	// service calls a host no traced service serves, and waits.
	apply(record(0, 0, span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders.internal"})),
		record(1, 0, span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"})),
		ofOther(record(1, 1, span("billing", telemetry.SpanKindClient, 4, 1, telemetry.Attrs{ServerAddress: "untraced.example.com"}))))
	step("first Sync", map[string]int{store.DefaultTenant: 1, "other": 1})
	step("Sync with nothing new", nil)
	apply(ofOther(record(1, 2, span("ledger", telemetry.SpanKindServer, 5, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/ledger"}))))
	step("Sync after a checkpoint of tenant other", map[string]int{"other": 1})
	if got, want := services("other"), []string{"billing", "ledger"}; !slices.Equal(got, want) {
		t.Errorf("tenant other's services after the rebuild = %v, want %v", got, want)
	}
	if _, expired, err := pg.Join(ctx, time.Now().Add(time.Hour), time.Minute); err != nil || expired == 0 {
		t.Fatalf("expiring Join = %d expired, %v; want billing's call", expired, err)
	}
	step("Sync after a join that expired tenant other's call", map[string]int{"other": 1})
	step("Sync with nothing new, again", nil)
	if got, want := services(store.DefaultTenant), []string{"gateway", "orders"}; !slices.Equal(got, want) {
		t.Errorf("tenant default's services = %v, want %v", got, want)
	}

	// A tenant whose shard does not decode stops no other tenant's
	// rebuild, and is tried again at each Sync until it does.
	_, owner, _, err := pg.ClaimPartition(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.CheckpointPartition(ctx, 2, owner, 1, []postgres.Shard{{Tenant: "bad", State: []byte("not a model state")}}); err != nil {
		t.Fatal(err)
	}
	apply(ofOther(record(1, 3, span("audit", telemetry.SpanKindServer, 6, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/audit"}))))
	for _, what := range []string{"Sync after a bad shard of tenant bad and a checkpoint of tenant other", "the next Sync"} {
		err := v.Sync(ctx)
		if err == nil || !strings.Contains(err.Error(), "tenant bad: merge state 0:") {
			t.Errorf("%s = %v, want tenant bad's shard refused", what, err)
		}
		want := map[string]int{"bad": 1}
		if what != "the next Sync" {
			want["other"] = 1
		}
		if diff := cmp.Diff(want, rebuilt); diff != "" {
			t.Errorf("%s: views rebuilt (-want +got):\n%s", what, diff)
		}
		clear(rebuilt)
	}
	if got, want := services("other"), []string{"audit", "billing", "ledger"}; !slices.Equal(got, want) {
		t.Errorf("tenant other's services after tenant bad failed = %v, want %v", got, want)
	}
}

// tenantView is an API replica's View of pg's tenants, which makes each
// tenant's engine at its first rebuild, as serve's tenant registry does.
// The replica never leads: it writes no verdict change. onRead, when not
// nil, is called with each tenant whose shards are read.
func tenantView(tb testing.TB, pg *postgres.Store, onRead func(tenant string)) (*View, map[string]*engine.Engine) {
	tb.Helper()
	engines := map[string]*engine.Engine{}
	var leader Leader
	v, err := NewView(DefaultConfig(), ViewDeps{
		Versions: pg.ViewVersions,
		Read: func(ctx context.Context, tenant string) ([][]byte, model.Joins, error) {
			if onRead != nil {
				onRead(tenant)
			}
			st, err := pg.ForTenant(tenant)
			if err != nil {
				return nil, model.Joins{}, err
			}
			return st.View(ctx)
		},
		Engine: func(ctx context.Context, tenant string) (*engine.Engine, error) {
			if e, ok := engines[tenant]; ok {
				return e, nil
			}
			st, err := pg.ForTenant(tenant)
			if err != nil {
				return nil, err
			}
			e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: leader.Store(st), Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				return nil, err
			}
			if err := e.Start(ctx); err != nil {
				return nil, err
			}
			tb.Cleanup(func() { e.Shutdown(context.Background()) })
			engines[tenant] = e
			return e, nil
		},
		FindingsVersions: pg.FindingsVersions,
		Engines:          func() map[string]*engine.Engine { return engines },
		Lead:             func(context.Context) (bool, error) { return false, nil },
		Leader:           &leader,
		SeedAlerts:       skipSeed,
		Logger:           slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v, engines
}

// TestReloadChanged: the findings of the tenants whose version changed
// are reloaded, every tenant's at the first look; a tenant whose reload
// fails keeps the version seen before (or none), so that it is tried
// again at the next look, and stops no other tenant's reload.
func TestReloadChanged(t *testing.T) {
	tests := []struct {
		name      string
		seen, now map[string]int64
		fail      string
		reloaded  []string
		next      map[string]int64
		wantErr   string
	}{
		{"first look", nil, map[string]int64{"a": 1}, "", []string{"a", "b"}, map[string]int64{"a": 1}, ""},
		{"no change", map[string]int64{"a": 1}, map[string]int64{"a": 1}, "", nil, map[string]int64{"a": 1}, ""},
		{"one changed", map[string]int64{"a": 1, "b": 1}, map[string]int64{"a": 2, "b": 1}, "", []string{"a"}, map[string]int64{"a": 2, "b": 1}, ""},
		{"a new version", map[string]int64{"a": 1}, map[string]int64{"a": 1, "b": 1}, "", []string{"b"}, map[string]int64{"a": 1, "b": 1}, ""},
		{"a failure keeps the version seen", map[string]int64{"a": 1, "b": 1}, map[string]int64{"a": 2, "b": 2}, "a", []string{"a", "b"},
			map[string]int64{"a": 1, "b": 2}, "tenant a: down"},
		{"a failure at the first look", nil, map[string]int64{"a": 1, "b": 1}, "b", []string{"a", "b"},
			map[string]int64{"a": 1}, "tenant b: down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reloaded []string
			next, err := reloadChanged(tt.seen, tt.now, slices.Values([]string{"a", "b"}), func(tenant string) error {
				reloaded = append(reloaded, tenant)
				if tenant == tt.fail {
					return errors.New("down")
				}
				return nil
			})
			if !slices.Equal(reloaded, tt.reloaded) {
				t.Errorf("reloaded %v, want %v", reloaded, tt.reloaded)
			}
			if diff := cmp.Diff(tt.next, next); diff != "" {
				t.Errorf("versions kept (-want +got):\n%s", diff)
			}
			if got := fmt.Sprint(err); tt.wantErr != "" && got != tt.wantErr || tt.wantErr == "" && err != nil {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
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

// TestLeader runs two API replicas on one database: only the one that
// holds the lead lock records verdict changes and raises topology
// alerts. When the leader's lock connection is terminated, the other
// replica takes the lock at its next Sync; the old leader's next verdict
// change finds the lock lost, steps down and writes nothing, and the new
// leader writes it, once.
func TestLeader(t *testing.T) {
	ctx := t.Context()
	cfg := postgres.DefaultConfig()
	cfg.DSN = server.DSN(t)
	type replica struct {
		pg     *postgres.Store
		view   *View
		leader *Leader
		st     engine.Store
		alerts *recorder
		al     engine.Alerter
	}
	newReplica := func() *replica {
		pg, err := postgres.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		r := &replica{pg: pg, leader: &Leader{}, alerts: &recorder{}}
		r.view, err = NewView(DefaultConfig(), ViewDeps{
			Versions: pg.ViewVersions,
			Read:     func(ctx context.Context, _ string) ([][]byte, model.Joins, error) { return pg.View(ctx) },
			Engine: func(context.Context, string) (*engine.Engine, error) {
				return nil, errors.New("no shards in this test")
			},
			FindingsVersions: pg.FindingsVersions,
			Engines:          func() map[string]*engine.Engine { return nil },
			Lead:             func(ctx context.Context) (bool, error) { return pg.TryLock(ctx, "evident lead ") },
			Leader:           r.leader,
			SeedAlerts:       skipSeed,
		})
		if err != nil {
			t.Fatal(err)
		}
		r.st, r.al = r.leader.Store(pg), r.leader.Alerter(r.alerts)
		return r
	}
	sync := func(r *replica) {
		t.Helper()
		if err := r.view.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	change := func(n int, to assess.Verdict) []store.VerdictChange {
		return []store.VerdictChange{{Time: t0.Add(time.Duration(n) * time.Second), Service: "gateway", VulnID: "GO-1",
			PURL: "pkg:golang/example.com/lib@v1.0.0", From: "not_observed", To: to}}
	}
	a, b := newReplica(), newReplica()
	sync(a)
	sync(b)
	if !a.leader.Is() || b.leader.Is() {
		t.Fatalf("leads: first %v, second %v; want the first only", a.leader.Is(), b.leader.Is())
	}
	// Both assess the same view and see the same change: the leader
	// records it, the other drops it.
	for _, r := range []*replica{a, b} {
		if err := r.st.AppendVerdicts(ctx, change(1, "loaded")); err != nil {
			t.Fatal(err)
		}
		r.al.Fire(detect.Alert{Kind: detect.KindSensitivePath})
	}
	if len(a.alerts.alerts) != 1 || len(b.alerts.alerts) != 0 {
		t.Fatalf("alerts fired: leader %d, other %d; want 1 and 0", len(a.alerts.alerts), len(b.alerts.alerts))
	}

	terminateLead(t, cfg.DSN)

	// The other replica takes the free lock at its next Sync. The old
	// leader believes it leads until its next action, which checks the
	// lock, finds it lost and taken, steps down and writes nothing.
	sync(b)
	if !b.leader.Is() || !a.leader.Is() {
		t.Fatalf("leads: first %v, second %v; want both (the first does not know yet)", a.leader.Is(), b.leader.Is())
	}
	if err := a.st.AppendVerdicts(ctx, change(2, "executed")); err != nil {
		t.Fatal(err)
	}
	a.al.Fire(detect.Alert{Kind: detect.KindSensitivePath})
	if a.leader.Is() || len(a.alerts.alerts) != 1 {
		t.Fatalf("after losing its lock the replica leads %v and fired %d alerts; want false and 1", a.leader.Is(), len(a.alerts.alerts))
	}
	sync(a)
	if a.leader.Is() || !b.leader.Is() {
		t.Fatalf("leads: first %v, second %v; want the second only", a.leader.Is(), b.leader.Is())
	}
	for _, r := range []*replica{a, b} {
		if err := r.st.AppendVerdicts(ctx, change(2, "executed")); err != nil {
			t.Fatal(err)
		}
		r.al.Fire(detect.Alert{Kind: detect.KindSensitivePath})
	}
	if len(a.alerts.alerts) != 1 || len(b.alerts.alerts) != 1 {
		t.Fatalf("alerts fired: old leader %d, new %d; want 1 and 1", len(a.alerts.alerts), len(b.alerts.alerts))
	}
	got, err := a.pg.VerdictHistory(ctx, "gateway", "GO-1", 10)
	if err != nil {
		t.Fatal(err)
	}
	var tos []assess.Verdict
	for _, c := range got {
		tos = append(tos, c.To)
	}
	if want := []assess.Verdict{"executed", "loaded"}; !slices.Equal(tos, want) {
		t.Errorf("verdict history %v, want %v (newest first, each change once)", tos, want)
	}
}

// terminateLead terminates, from a connection of its own, the connection
// that holds the lead lock of the schema of dsn: its replica lost it.
func terminateLead(t *testing.T, dsn string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var killed int
	if err := conn.QueryRow(t.Context(), `WITH holder AS MATERIALIZED (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
			AND (classid::bigint << 32 | objid::bigint) = hashtextextended('evident lead ' || current_schema(), 0))
		SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM holder`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d lock connections, want 1", killed)
	}
}

// storeSink is the alert sink that keeps alerts in the store, and the
// history a router is seeded from, as serve's: the dedupe key and the
// observation in their columns, read back by FiredAlerts.
type storeSink struct{ st *postgres.Store }

func (s storeSink) Name() string { return "store" }

func (s storeSink) Send(ctx context.Context, a alert.Alert) error {
	return s.st.PutAlert(ctx, store.Alert{ID: a.ID, Kind: string(a.Kind), Severity: string(a.Severity), Service: a.Service,
		Summary: a.Summary, Details: json.RawMessage(`{}`), Time: a.Time, ReceivedAt: a.ReceivedAt,
		DedupeKey: a.DedupeKey, Observed: a.Observed})
}

func (s storeSink) Fired(ctx context.Context, since time.Time, limit int) ([]alert.Fired, error) {
	stored, err := s.st.FiredAlerts(ctx, since, limit)
	if err != nil {
		return nil, err
	}
	fired := make([]alert.Fired, 0, len(stored))
	for _, f := range stored {
		fired = append(fired, alert.Fired{DedupeKey: f.DedupeKey, Time: f.Time, Observed: f.Observed})
	}
	return fired, nil
}

// delivered is an alert sink that keeps the dedupe keys of the alerts it
// is sent.
type delivered struct {
	mu   sync.Mutex
	keys []string
}

func (d *delivered) Name() string { return "pager" }

func (d *delivered) Send(_ context.Context, a alert.Alert) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys = append(d.keys, a.DedupeKey)
	return nil
}

func (d *delivered) Keys() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.keys)
}

// startRouter starts a router over the store sink of pg and pager, seeded
// from the store as serve seeds it when a tenant starts.
func startRouter(t *testing.T, pg *postgres.Store, pager *delivered) *alert.Router {
	t.Helper()
	r, err := alert.NewRouter(alert.DefaultConfig(), []alert.Sink{storeSink{pg}, pager}, alert.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Seed(t.Context(), storeSink{pg}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r
}

// goParse is GO-2022-1059 (CVE-2022-32149, golang.org/x/text/language
// before v0.3.8: a denial of service in ParseAcceptLanguage) in service.
func goParse(service string) findings.Finding {
	return findings.Finding{
		Service:       service,
		Package:       findings.Package{PURL: "pkg:golang/golang.org/x/text@v0.3.7", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"},
		Vulnerability: findings.Vulnerability{ID: "GO-2022-1059"},
		Severity:      findings.Severity{Level: "high"},
		Symbols:       []string{"golang.org/x/text/language.Parse"},
	}
}

// profileRecord is the record at offset of partition 0 of a profile of
// service starting at start, in which the functions of frames ran.
func profileRecord(offset int64, service string, start time.Time, frames ...attribution.Frame) kafka.Record {
	locs := make([][]attribution.Frame, len(frames))
	ids := make([]int32, len(frames))
	for i, f := range frames {
		locs[i], ids[i] = []attribution.Frame{f}, int32(i)
	}
	return kafka.Record{Tenant: store.DefaultTenant, Service: service, Partition: 0, Offset: offset, Time: start,
		Profiles: []*telemetry.ProfileBatch{{
			Service: service, SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: start, Duration: 10 * time.Second,
			Locations: locs, Samples: []telemetry.Sample{{Locations: ids, Count: 5, Value: 50_000_000}},
		}}}
}

var (
	parseFrame  = attribution.Frame{Function: "golang.org/x/text/language.Parse", File: "/home/u/go/pkg/mod/golang.org/x/text@v0.3.7/language/parse.go"}
	handleFrame = attribution.Frame{Function: "main.handle", File: "/src/shop/main.go"}
)

// TestRebalanceFiresOnce: engine A applies a record in which a
// vulnerable function of shop runs for the first time, fires and stores
// the alert, and stops before it checkpoints the record (it died, or its
// checkpoint failed). Engine B, whose router read the store when it
// started, before that, is assigned the partition and applies the record
// again, and the next, in which the function runs in billing, which A
// never applied. B delivers billing's alert and not shop's again: its
// router reads the store again when a partition is assigned, for the
// tenants of its checkpointed shards, and for a tenant the checkpoint
// has no shard of when its first record comes.
func TestRebalanceFiresOnce(t *testing.T) {
	const shop, billing = "first_execution|shop|GO-2022-1059|pkg:golang/golang.org/x/text@v0.3.7", "first_execution|billing|GO-2022-1059|pkg:golang/golang.org/x/text@v0.3.7"
	recs := []kafka.Record{
		profileRecord(0, "shop", t0, handleFrame),
		profileRecord(1, "shop", t0.Add(time.Minute), parseFrame, handleFrame),
		profileRecord(2, "billing", t0.Add(2*time.Minute), parseFrame, handleFrame),
	}
	tests := []struct {
		name string
		// checkpointed is how many of recs A checkpointed.
		checkpointed int
	}{
		{"shard checkpointed before the record", 1},
		{"no checkpoint of the partition", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			pg := openStore(t)
			newEngine := func(r *alert.Router) *Applier {
				t.Helper()
				a, err := NewApplier(DefaultConfig(), ApplierDeps{
					Store: pg,
					NewShard: func(string) (Shard, error) {
						m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
						e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: pg, Model: m, Alerter: r, Logger: slog.New(slog.DiscardHandler)})
						return Shard{Engine: e, Model: m}, err
					},
					Findings: func(context.Context, string) ([]findings.Finding, error) {
						return []findings.Finding{goParse("shop"), goParse("billing")}, nil
					},
					SeedAlerts: func(ctx context.Context, _ string) error { return r.Seed(ctx, storeSink{pg}) },
					Logger:     slog.New(slog.DiscardHandler),
				})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			pagerA, pagerB := &delivered{}, &delivered{}
			routerA, routerB := startRouter(t, pg, pagerA), startRouter(t, pg, pagerB)
			a, b := newEngine(routerA), newEngine(routerB)

			if _, err := a.Assign(ctx, []int32{0}); err != nil {
				t.Fatal(err)
			}
			for i, rec := range recs[:2] {
				if i == tt.checkpointed {
					if _, err := a.Checkpoint(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if err := a.Apply(ctx, []kafka.Record{rec}); err != nil {
					t.Fatal(err)
				}
			}
			// A's router delivers and stores the alert; A stops.
			if err := routerA.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if got := pagerA.Keys(); !slices.Equal(got, []string{shop}) {
				t.Fatalf("A delivered %q, want shop's alert", got)
			}

			if _, err := b.Assign(ctx, []int32{0}); err != nil {
				t.Fatal(err)
			}
			if err := b.Apply(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if err := routerB.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if got := pagerB.Keys(); !slices.Equal(got, []string{billing}) {
				t.Errorf("B delivered %q, want billing's alert alone", got)
			}
		})
	}
}

// TestLeaderFiresOnce: the leading API replica raises a topology alert
// and stores it, and loses its lock; the replica that takes the lead,
// whose router read the store when it started, before that, builds the
// same view and raises the alert again, and another. It delivers the
// other alone: its routers read the store again when it takes the lead.
func TestLeaderFiresOnce(t *testing.T) {
	ctx := t.Context()
	cfg := postgres.DefaultConfig()
	cfg.DSN = server.DSN(t)
	type replica struct {
		view  *View
		lead  *Leader
		r     *alert.Router
		pager *delivered
	}
	newReplica := func() *replica {
		pg, err := postgres.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		rp := &replica{lead: &Leader{}, pager: &delivered{}}
		rp.r = startRouter(t, pg, rp.pager)
		rp.view, err = NewView(DefaultConfig(), ViewDeps{
			Versions: pg.ViewVersions,
			Read:     func(ctx context.Context, _ string) ([][]byte, model.Joins, error) { return pg.View(ctx) },
			Engine: func(context.Context, string) (*engine.Engine, error) {
				return nil, errors.New("no shards in this test")
			},
			FindingsVersions: pg.FindingsVersions,
			Engines:          func() map[string]*engine.Engine { return nil },
			Lead:             func(ctx context.Context) (bool, error) { return pg.TryLock(ctx, "evident lead ") },
			Leader:           rp.lead,
			SeedAlerts:       func(ctx context.Context) error { return rp.r.Seed(ctx, storeSink{pg}) },
			Logger:           slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		return rp
	}
	sensitive := func(store string, observed time.Time) detect.Alert {
		return detect.Alert{Kind: detect.KindSensitivePath, Service: "gateway", Severity: detect.High,
			DedupeKey: "sensitive_path|gateway|" + store, Observed: observed}
	}
	a, b := newReplica(), newReplica()
	for _, rp := range []*replica{a, b} {
		if err := rp.view.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !a.lead.Is() || b.lead.Is() {
		t.Fatalf("leads: first %v, second %v; want the first only", a.lead.Is(), b.lead.Is())
	}
	a.lead.Alerter(a.r).Fire(sensitive("postgresql://payments", t0))
	if err := a.r.Shutdown(ctx); err != nil { // delivered and stored
		t.Fatal(err)
	}
	terminateLead(t, cfg.DSN)
	if err := b.view.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.lead.Is() {
		t.Fatal("the second replica does not lead after the first lost its lock")
	}
	b.lead.Alerter(b.r).Fire(sensitive("postgresql://payments", t0))
	b.lead.Alerter(b.r).Fire(sensitive("s3://secrets", t0.Add(time.Minute)))
	if err := b.r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := a.pager.Keys(), []string{"sensitive_path|gateway|postgresql://payments"}; !slices.Equal(got, want) {
		t.Errorf("the first leader delivered %q, want %q", got, want)
	}
	if got, want := b.pager.Keys(), []string{"sensitive_path|gateway|s3://secrets"}; !slices.Equal(got, want) {
		t.Errorf("the new leader delivered %q, want %q", got, want)
	}
}

// TestFirstExecutionOnce: an engine applies a profile in which a
// vulnerable function runs for the first time and dies before its
// checkpoint; the engine that takes the partition over applies the
// record again and fires the alert again, later. The two alerts have one
// ID, and the store keeps one.
func TestFirstExecutionOnce(t *testing.T) {
	ctx := t.Context()
	pg := openStore(t)
	rec := profileRecord(0, "shop", t0, parseFrame, handleFrame)
	// engine runs one engine process: its alert router and applier; it
	// applies rec and stops without a checkpoint.
	engineRun := func() {
		t.Helper()
		r, err := alert.NewRouter(alert.DefaultConfig(), []alert.Sink{storeSink{pg}}, alert.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		a, err := NewApplier(DefaultConfig(), ApplierDeps{
			Store: pg,
			NewShard: func(tenant string) (Shard, error) {
				m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
				e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: pg, Model: m, Alerter: r})
				return Shard{Engine: e, Model: m}, err
			},
			Findings: func(context.Context, string) ([]findings.Finding, error) {
				return []findings.Finding{goParse("shop")}, nil
			},
			SeedAlerts: skipSeedTenant, // the store deduplicates by ID here
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Assign(ctx, []int32{0}); err != nil {
			t.Fatal(err)
		}
		if err := a.Apply(ctx, []kafka.Record{rec}); err != nil {
			t.Fatal(err)
		}
		if err := r.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	engineRun()
	engineRun()
	got, err := pg.Alerts(ctx, store.AlertQuery{Kind: string(detect.KindFirstExecution)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("first-execution alerts stored = %+v, want 1", got)
	}
}

// openStore opens the test server's store, closed at the test's end.
func openStore(t testing.TB) *postgres.Store {
	t.Helper()
	cfg := postgres.DefaultConfig()
	cfg.DSN = server.DSN(t)
	pg, err := postgres.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return pg
}

// TestApplierRefusesTenant: a shard the engine cannot make for a record's
// tenant until it is changed (NewShard's error is pipeline.Permanent: a
// tenant beyond max_tenants) is a *kafka.StopError naming the record, on
// which the reader stops that partition alone; any other error is
// retried as it is.
func TestApplierRefusesTenant(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantStop bool
	}{
		{"permanent", pipeline.Permanent(errors.New("too many tenants")), true},
		{"passing", errors.New("store unavailable"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			st := &flaky{Store: openStore(t)}
			var reads atomic.Int32
			a := newApplier(t, st, &reads)
			newShard := a.deps.NewShard
			a.deps.NewShard = func(tenant string) (Shard, error) {
				if tenant == "beyond" {
					return Shard{}, tc.err
				}
				return newShard(tenant)
			}
			if _, err := a.Assign(ctx, []int32{0, 1}); err != nil {
				t.Fatal(err)
			}
			bad := record(0, 1, span("cart", telemetry.SpanKindServer, 4, 0, telemetry.Attrs{}))
			bad.Tenant = "beyond"
			err := a.Apply(ctx, []kafka.Record{record(0, 0, span("cart", telemetry.SpanKindServer, 3, 0, telemetry.Attrs{})), bad})
			var se *kafka.StopError
			if got := errors.As(err, &se); got != tc.wantStop {
				t.Fatalf("Apply = %v; a *kafka.StopError: %v, want %v", err, got, tc.wantStop)
			}
			if se != nil && (se.Partition != 0 || se.Offset != 1 || !errors.Is(err, tc.err)) {
				t.Errorf("Apply = %+v, want partition 0 offset 1 wrapping %v", se, tc.err)
			}
			// What came before the refused record is applied, once.
			offs, err := a.Checkpoint(ctx)
			if err != nil || offs[0] != 1 {
				t.Errorf("Checkpoint = %v, %v; want partition 0 at 1", offs, err)
			}
		})
	}
}

// TestAssignRefusesPartition: a partition whose stored shards the engine
// cannot restore until it is changed (a tenant beyond max_tenants, a
// state that does not decode) is refused alone, in a *kafka.RefusedError
// beside the offsets of the partitions restored; any other error fails
// the assignment, which the group retries.
func TestAssignRefusesPartition(t *testing.T) {
	for _, tc := range []struct {
		name string
		// err is what the new engine's NewShard returns for tenant
		// "beyond"; nil is a shard.
		err error
		// state is the stored state of beyond's shard; nil is a real one.
		state   []byte
		refused bool
	}{
		{name: "tenant beyond max_tenants", err: pipeline.Permanent(errors.New("too many tenants")), refused: true},
		{name: "state that does not decode", state: []byte("not a model"), refused: true},
		{name: "passing", err: errors.New("store unavailable")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := postgres.DefaultConfig()
			cfg.DSN = server.DSN(t)
			pg, err := postgres.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pg.Close()
			st := &flaky{Store: pg}
			var reads atomic.Int32
			before := newApplier(t, st, &reads)
			if _, err := before.Assign(ctx, []int32{0, 1}); err != nil {
				t.Fatal(err)
			}
			bad := record(0, 0, span("cart", telemetry.SpanKindServer, 4, 0, telemetry.Attrs{}))
			bad.Tenant = "beyond"
			if err := before.Apply(ctx, []kafka.Record{bad, record(1, 0, span("orders", telemetry.SpanKindServer, 3, 0, telemetry.Attrs{}))}); err != nil {
				t.Fatal(err)
			}
			if _, err := before.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			before.Revoke(ctx, []int32{0, 1}, false)
			if tc.state != nil {
				conn, err := pgx.Connect(ctx, cfg.DSN)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				if tag, err := conn.Exec(ctx, `UPDATE shards SET state = $1 WHERE tenant = 'beyond'`, tc.state); err != nil || tag.RowsAffected() != 1 {
					t.Fatalf("damage the stored shard: %v, %v", tag, err)
				}
			}

			a := newApplier(t, st, &reads)
			newShard := a.deps.NewShard
			a.deps.NewShard = func(tenant string) (Shard, error) {
				if tenant == "beyond" && tc.err != nil {
					return Shard{}, tc.err
				}
				return newShard(tenant)
			}
			offs, err := a.Assign(ctx, []int32{0, 1})
			var re *kafka.RefusedError
			if got := errors.As(err, &re); got != tc.refused {
				t.Fatalf("Assign = %v, %v; a *kafka.RefusedError: %v, want %v", offs, err, got, tc.refused)
			}
			if !tc.refused {
				return
			}
			if len(re.Partitions) != 1 || re.Partitions[0] == nil {
				t.Fatalf("refused %v, want partition 0 alone", re.Partitions)
			}
			if !strings.Contains(err.Error(), "partition 0") || !strings.Contains(err.Error(), "beyond") {
				t.Errorf("error %q names neither the partition nor the tenant", err)
			}
			if diff := cmp.Diff(offs, kafka.Offsets{1: 1}); diff != "" {
				t.Errorf("offsets (-got +want):\n%s", diff)
			}
			// The refused partition is not held: records of it are not
			// applied, and no checkpoint covers it.
			if err := a.Apply(ctx, []kafka.Record{record(0, 1, span("cart", telemetry.SpanKindServer, 5, 0, telemetry.Attrs{}))}); err != nil {
				t.Fatal(err)
			}
			if got, err := a.Checkpoint(ctx); err != nil || !cmp.Equal(got, kafka.Offsets{1: 1}) {
				t.Errorf("Checkpoint = %v, %v; want partition 1 at 1 alone", got, err)
			}
		})
	}
}

// TestNewHostAfterAssign: an engine given a partition restores its shards
// from the checkpoint; a host a service called before it is not called
// for the first time when the service calls it again, past the host
// detector's warm-up, as Start teaches a single engine's detector
// (engine.TestNewHostAfterRestart). A host never called still is.
func TestNewHostAfterAssign(t *testing.T) {
	for _, tc := range []struct {
		name, later string
		want        []string
	}{
		{"known host", "rare.example.com", nil},
		{"new host", "new.example.com", []string{"cart called new.example.com for the first time"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			st := &flaky{Store: openStore(t)}
			rec := &recorder{}
			newApplier := func() *Applier {
				a, err := NewApplier(DefaultConfig(), ApplierDeps{
					Store: st,
					NewShard: func(string) (Shard, error) {
						m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
						e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: st.Store, Model: m, Alerter: rec})
						return Shard{Engine: e, Model: m}, err
					},
					Findings:   func(context.Context, string) ([]findings.Finding, error) { return nil, nil },
					SeedAlerts: skipSeedTenant,
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := a.Assign(ctx, []int32{0}); err != nil {
					t.Fatal(err)
				}
				return a
			}
			call := func(a *Applier, off int64, host string, at time.Time) {
				t.Helper()
				sp := span("cart", telemetry.SpanKindClient, byte(off+1), 0, telemetry.Attrs{ServerAddress: host})
				sp.Start, sp.End = at, at.Add(time.Millisecond)
				r := record(0, off, sp)
				r.Time = at
				if err := a.Apply(ctx, []kafka.Record{r}); err != nil {
					t.Fatal(err)
				}
			}
			before := newApplier()
			call(before, 0, "api.stripe.com", t0)
			call(before, 1, "rare.example.com", t0.Add(time.Minute))
			if _, err := before.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			before.Revoke(ctx, []int32{0}, false)

			after := newApplier()
			call(after, 2, "api.stripe.com", t0.Add(time.Hour))
			call(after, 3, tc.later, t0.Add(time.Hour+10*time.Minute))
			var got []string
			for _, a := range rec.alerts {
				if a.Kind == detect.KindNewHost {
					got = append(got, a.Summary)
				}
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("new-host alerts (-got +want):\n%s", diff)
			}
		})
	}
}

// skipSeedTenant and skipSeed are the SeedAlerts of an engine and of an
// API replica whose alerts are not deduplicated across processes.
func skipSeedTenant(context.Context, string) error { return nil }

func skipSeed(context.Context) error { return nil }
