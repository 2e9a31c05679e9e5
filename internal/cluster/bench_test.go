package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/ingest/kafka"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/telemetry"
)

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// traffic is one request batch of the benchmark: every service serves
// a request and calls the next service, perService spans each.
func traffic(batch, services, perService int) []telemetry.Span {
	out := make([]telemetry.Span, 0, services*perService)
	id := func(svc, i, side int) [8]byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(batch)<<32|uint64(svc)<<16|uint64(i)<<1|uint64(side))
		return b
	}
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC).Add(time.Duration(batch) * time.Millisecond)
	for s := range services {
		name := fmt.Sprintf("svc-%02d", s)
		for i := 0; i < perService; i += 2 {
			// A SERVER span caused by the previous service's CLIENT span,
			// and a CLIENT span to the next service.
			out = append(out,
				telemetry.Span{Service: name, Kind: telemetry.SpanKindServer, Name: "GET /items/{id}", SpanID: id(s, i, 0), ParentSpanID: id((s+services-1)%services, i, 1),
					Start: start, End: start.Add(time.Millisecond), Attrs: telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/items/{id}", ClientAddress: "10.0.0.1"}},
				telemetry.Span{Service: name, Kind: telemetry.SpanKindClient, Name: "GET", SpanID: id(s, i, 1), ParentSpanID: id(s, i, 0),
					Start: start, End: start.Add(time.Millisecond), Attrs: telemetry.Attrs{HTTPMethod: "GET", ServerAddress: fmt.Sprintf("svc-%02d.internal", (s+1)%services)}},
			)
		}
	}
	return out
}

// BenchmarkEngines applies a backlog of the ingest log with 1, 2 and 4
// engines (Reader and Applier each, in this process) on kfake and the
// test's PostgreSQL, and reports spans per second and per CPU-second of
// this process (kfake and the producer excluded: the backlog is written
// first; PostgreSQL is another process). Run it with -benchtime=1x.
func BenchmarkEngines(b *testing.B) {
	const (
		partitions = 8
		services   = 16
		perService = 64
		batches    = 200
	)
	for _, engines := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("engines=%d", engines), func(b *testing.B) {
			for range b.N {
				ctx := context.Background()
				kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "evident-ingest"))
				if err != nil {
					b.Fatal(err)
				}
				kcfg := kafka.DefaultConfig()
				kcfg.Brokers, kcfg.ReplicationFactor, kcfg.Partitions = kc.ListenAddrs(), 1, partitions
				p, err := kafka.NewProducer(kcfg, nil, slog.New(slog.DiscardHandler), nil)
				if err != nil {
					b.Fatal(err)
				}
				total := 0
				for i := range batches {
					sp := traffic(i, services, perService)
					total += len(sp)
					if err := p.Traces().Consume(ctx, sp); err != nil {
						b.Fatal(err)
					}
				}
				p.Shutdown(ctx)
				pcfg := postgres.DefaultConfig()
				pcfg.DSN = server.DSN(b)
				pg, err := postgres.Open(ctx, pcfg)
				if err != nil {
					b.Fatal(err)
				}
				// Progress is read beside the store.
				pool, err := pgxpool.New(ctx, pcfg.DSN)
				if err != nil {
					b.Fatal(err)
				}
				cfg := DefaultConfig()
				cfg.CheckpointInterval = time.Second
				var readers []*kafka.Reader
				var applyTime, checkTime, cpTime, joinTime atomic.Int64
				b.ResetTimer()
				cpu0, wall0 := cpuTime(), time.Now()
				for range engines {
					deps := shardDeps(pg)
					deps.Store = &timedStore{Store: pg, cp: &cpTime, join: &joinTime}
					a, err := NewApplier(cfg, deps)
					if err != nil {
						b.Fatal(err)
					}
					r, err := kafka.NewReader(kcfg, &timed{Applier: a, apply: &applyTime, check: &checkTime}, cfg.CheckpointInterval, slog.New(slog.DiscardHandler), nil)
					if err != nil {
						b.Fatal(err)
					}
					if err := r.Start(ctx); err != nil {
						b.Fatal(err)
					}
					readers = append(readers, r)
				}
				// Done when every record is in a checkpoint.
				records := int64(batches * services)
				for {
					var n int64
					if err := pool.QueryRow(ctx, `SELECT COALESCE(SUM(GREATEST(next, 0)), 0) FROM shard_offsets`).Scan(&n); err != nil {
						b.Fatal(err)
					}
					if n >= records {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				cpu, wall := cpuTime()-cpu0, time.Since(wall0)
				b.StopTimer()
				b.ReportMetric(float64(total)/cpu.Seconds(), "spans/cpu-s")
				b.ReportMetric(float64(total)/wall.Seconds(), "spans/s")
				b.ReportMetric(time.Duration(applyTime.Load()).Seconds(), "apply-s")
				b.ReportMetric(time.Duration(checkTime.Load()).Seconds(), "checkpoint-s")
				b.ReportMetric(time.Duration(cpTime.Load()).Seconds(), "store-checkpoint-s")
				b.ReportMetric(time.Duration(joinTime.Load()).Seconds(), "store-join-s")
				for _, r := range readers {
					r.Shutdown(ctx)
				}
				pool.Close()
				pg.Close()
				kc.Close()
			}
		})
	}
}

// timed is an Applier that adds up the time of its calls.
type timed struct {
	*Applier
	apply, check *atomic.Int64
}

func (t *timed) Apply(ctx context.Context, recs []kafka.Record) error {
	start := time.Now()
	defer func() { t.apply.Add(int64(time.Since(start))) }()
	return t.Applier.Apply(ctx, recs)
}

func (t *timed) Checkpoint(ctx context.Context) (kafka.Offsets, error) {
	start := time.Now()
	defer func() { t.check.Add(int64(time.Since(start))) }()
	return t.Applier.Checkpoint(ctx)
}

// timedStore is a Store that adds up the time of its writes.
type timedStore struct {
	*postgres.Store
	cp, join *atomic.Int64
}

func (t *timedStore) CheckpointPartitions(ctx context.Context, parts []postgres.Partition) ([]int32, error) {
	start := time.Now()
	defer func() { t.cp.Add(int64(time.Since(start))) }()
	return t.Store.CheckpointPartitions(ctx, parts)
}

func (t *timedStore) Join(ctx context.Context, now time.Time, window time.Duration) (int64, int64, error) {
	start := time.Now()
	defer func() { t.join.Add(int64(time.Since(start))) }()
	return t.Store.Join(ctx, now, window)
}

// receipts is an Applier that measures, for every record, the time from
// its receipt (the receiver's write) to the end of the checkpoint that
// holds it: from then on the API replicas see it.
type receipts struct {
	*Applier
	mu      sync.Mutex
	pending []time.Time
	lat     []time.Duration
}

func (r *receipts) Apply(ctx context.Context, recs []kafka.Record) error {
	if err := r.Applier.Apply(ctx, recs); err != nil {
		return err
	}
	r.mu.Lock()
	for _, rec := range recs {
		r.pending = append(r.pending, rec.Time)
	}
	r.mu.Unlock()
	return nil
}

func (r *receipts) Checkpoint(ctx context.Context) (kafka.Offsets, error) {
	offs, err := r.Applier.Checkpoint(ctx)
	if err == nil {
		now := time.Now()
		r.mu.Lock()
		for _, t := range r.pending {
			r.lat = append(r.lat, now.Sub(t))
		}
		r.pending = r.pending[:0]
		r.mu.Unlock()
	}
	return offs, err
}

// shardDeps are the ApplierDeps of the benchmarks' engines on pg: each
// shard an engine of its own, watching the tenant's stored findings.
func shardDeps(pg *postgres.Store) ApplierDeps {
	return ApplierDeps{
		Store: pg,
		NewShard: func(string) (Shard, error) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: pg, Model: m, Logger: slog.New(slog.DiscardHandler)})
			return Shard{Engine: e, Model: m}, err
		},
		Findings: func(ctx context.Context, tenant string) ([]findings.Finding, error) {
			st, err := pg.ForTenant(tenant)
			if err != nil {
				return nil, err
			}
			return st.Findings(ctx)
		},
		SeedAlerts: skipSeedTenant,
		Logger:     slog.New(slog.DiscardHandler),
	}
}

// steady is the scaled-out path of the latency benchmarks: kfake with 8
// partitions, the test's PostgreSQL and 2 engines (Reader and Applier
// each, the Applier measuring receipts) with the default intervals.
type steady struct {
	kc      *kfake.Cluster
	pg      *postgres.Store
	rs      []*receipts
	readers []*kafka.Reader
	p       *kafka.Producer
}

const steadyPartitions = 8

// startSteady stores fs as the default tenant's findings, starts the
// engines and returns once the group has settled: both engines hold
// partitions, and every partition is held.
func startSteady(b *testing.B, cfg Config, fs []findings.Finding) *steady {
	b.Helper()
	ctx := context.Background()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(steadyPartitions, "evident-ingest"))
	if err != nil {
		b.Fatal(err)
	}
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers, kcfg.ReplicationFactor, kcfg.Partitions = kc.ListenAddrs(), 1, steadyPartitions
	pcfg := postgres.DefaultConfig()
	pcfg.DSN = server.DSN(b)
	pg, err := postgres.Open(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	if len(fs) > 0 {
		if err := pg.PutFindings(ctx, store.FindingsUpdate{Findings: fs, Source: "benchmark", Actor: "benchmark", Time: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	s := &steady{kc: kc, pg: pg}
	for range 2 {
		a, err := NewApplier(cfg, shardDeps(pg))
		if err != nil {
			b.Fatal(err)
		}
		r := &receipts{Applier: a}
		rd, err := kafka.NewReader(kcfg, r, cfg.CheckpointInterval, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := rd.Start(ctx); err != nil {
			b.Fatal(err)
		}
		s.rs, s.readers = append(s.rs, r), append(s.readers, rd)
	}
	for settled := false; !settled; time.Sleep(100 * time.Millisecond) {
		n := 0
		settled = true
		for _, r := range s.rs {
			r.Applier.mu.Lock()
			n += len(r.Applier.parts)
			settled = settled && len(r.Applier.parts) > 0
			r.Applier.mu.Unlock()
		}
		settled = settled && n == steadyPartitions
	}
	if s.p, err = kafka.NewProducer(kcfg, nil, slog.New(slog.DiscardHandler), nil); err != nil {
		b.Fatal(err)
	}
	return s
}

// run writes a request batch of 16 services, 16 spans each, every 50 ms
// (5,120 spans a second) for duration, and calls each(i) after batch i.
func (s *steady) run(b *testing.B, duration time.Duration, each func(i int)) {
	b.Helper()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	end := time.Now().Add(duration)
	for i := 0; time.Now().Before(end); i++ {
		<-t.C
		if err := s.p.Traces().Consume(context.Background(), traffic(i, 16, 16)); err != nil {
			b.Fatal(err)
		}
		if each != nil {
			each(i)
		}
	}
}

// checkpointLatencies returns the sorted receipt-to-checkpoint latencies
// of every record checkpointed so far.
func (s *steady) checkpointLatencies() []time.Duration {
	var lat []time.Duration
	for _, r := range s.rs {
		r.mu.Lock()
		lat = append(lat, r.lat...)
		r.mu.Unlock()
	}
	slices.Sort(lat)
	return lat
}

func (s *steady) close() {
	ctx := context.Background()
	s.p.Shutdown(ctx)
	for _, rd := range s.readers {
		rd.Shutdown(ctx)
	}
	s.pg.Close()
	s.kc.Close()
}

// BenchmarkReceiptToCheckpoint writes the benchmark's traffic at a steady
// rate for 20 s through a producer into 2 engines with the default
// checkpoint interval (5 s), and reports the p50 and p99 of the time from
// a record's receipt to the end of the checkpoint that holds it. An API
// replica sees it at most view_interval (2 s) later
// (BenchmarkReceiptToVerdict measures that). Run it with -benchtime=1x.
func BenchmarkReceiptToCheckpoint(b *testing.B) {
	for range b.N {
		cfg := DefaultConfig()
		s := startSteady(b, cfg, nil)
		s.run(b, 20*time.Second, nil)
		// The last records reach a checkpoint within an interval.
		time.Sleep(cfg.CheckpointInterval + time.Second)
		lat := s.checkpointLatencies()
		if len(lat) == 0 {
			b.Fatal("no record reached a checkpoint")
		}
		b.ReportMetric(lat[len(lat)/2].Seconds(), "p50-s")
		b.ReportMetric(lat[len(lat)*99/100].Seconds(), "p99-s")
		b.ReportMetric(float64(len(lat)), "records")
		s.close()
	}
}

// BenchmarkViewSync is an API replica's Sync over 100 tenants, each with
// one shard of 10 services, when nothing changed since the last Sync
// ("unchanged") and when one tenant's shard did ("one changed"): a
// tenant's shards are read, merged and handed to its engine only when
// its shards or joins changed (ViewVersions).
func BenchmarkViewSync(b *testing.B) {
	ctx := b.Context()
	pg := openStore(b)
	const tenants = 100
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	m.AddSpans(traffic(0, 10, 20))
	state, err := m.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	_, owner, _, err := pg.ClaimPartition(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	next := int64(0)
	checkpoint := func(names ...string) {
		b.Helper()
		var shards []postgres.Shard
		for _, n := range names {
			shards = append(shards, postgres.Shard{Tenant: n, State: state})
		}
		next++
		if err := pg.CheckpointPartition(ctx, 0, owner, next, shards); err != nil {
			b.Fatal(err)
		}
	}
	var names []string
	for i := range tenants {
		names = append(names, fmt.Sprintf("tenant-%03d", i))
	}
	checkpoint(names...)
	v, _ := tenantView(b, pg, nil)
	if err := v.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	for _, changed := range []bool{false, true} {
		name := "unchanged"
		if changed {
			name = "one changed"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if changed {
					b.StopTimer()
					checkpoint(names[i%tenants])
					b.StartTimer()
				}
				if err := v.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
