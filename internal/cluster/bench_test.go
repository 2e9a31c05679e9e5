package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
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
				p, err := kafka.NewProducer(kcfg, slog.New(slog.DiscardHandler), nil)
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
					a, err := NewApplier(cfg, ApplierDeps{
						Store: &timedStore{Store: pg, cp: &cpTime, join: &joinTime},
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
						Logger: slog.New(slog.DiscardHandler),
					})
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
					if err := pool.QueryRow(ctx, `SELECT COALESCE(SUM(next), 0) FROM shard_offsets`).Scan(&n); err != nil {
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
