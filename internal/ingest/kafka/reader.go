package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evidentsec/evident/internal/pipeline"
)

// Applier applies the records an engine reads from the log.
type Applier interface {
	// Apply applies recs, in log order within each partition, and
	// returns once they are applied and checkpointed: the Reader commits
	// their offsets after it returns nil, and a record whose offset is
	// not committed is read again, by this engine or, after a
	// rebalance, by another. So Apply must be idempotent for a record
	// read again: it keeps the Offsets it applied in the same checkpoint
	// as the state they changed, and skips what they cover. An error
	// means nothing of recs may be counted as applied; the Reader pauses
	// and calls Apply again with the same records. recs belong to the
	// Applier after the call. Apply is called from one goroutine.
	Apply(ctx context.Context, recs []Record) error
}

// Offsets are, per partition of the log, the offset after the last
// record applied. An applier keeps them with its state (in the engine's
// checkpoint, in the shared store) so that a batch read again after a
// crash or a rebalance, before its offsets were committed, is not
// counted twice. The zero value is empty and ready to use; it is not
// safe for concurrent use.
type Offsets map[int32]int64

// Fresh returns the records of recs that o does not cover, in order.
func (o Offsets) Fresh(recs []Record) []Record {
	var fresh []Record
	for _, r := range recs {
		if next, ok := o[r.Partition]; !ok || r.Offset >= next {
			fresh = append(fresh, r)
		}
	}
	return fresh
}

// Advance records recs as applied.
func (o Offsets) Advance(recs []Record) {
	for _, r := range recs {
		if r.Offset >= o[r.Partition] {
			o[r.Partition] = r.Offset + 1
		}
	}
}

// Reader is an engine's member of the consumer group of the log: it
// reads the records of the partitions the group gives it, hands them to
// its Applier in batches, and commits their offsets only after the batch
// is applied. Partitions move between engines only between two batches
// (a rebalance waits for the batch in hand), and the state of a moved
// partition is in the shared store. Create it with NewReader; it is a
// pipeline.Component.
type Reader struct {
	cfg     Config
	cl      *kgo.Client
	applier Applier
	log     *slog.Logger
	m       *prometheus.CounterVec
	loop    pipeline.Loop
	once    sync.Once
}

var _ pipeline.Component = (*Reader)(nil)

// NewReader returns a reader of cfg.Topic in cfg.Group that applies with
// a. It joins the group on Start.
func NewReader(cfg Config, a Applier, logger *slog.Logger, reg prometheus.Registerer) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errors.New("create kafka reader: no applier")
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Reader{cfg: cfg, applier: a, log: logger, m: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_kafka_read_records_total",
		Help: "Records read from the ingest log, by outcome (applied, malformed).",
	}, []string{"outcome"})}
	if reg != nil {
		if err := reg.Register(r.m); err != nil {
			return nil, fmt.Errorf("register kafka reader metrics: %w", err)
		}
	}
	return r, nil
}

// Start joins the group and starts reading. It is safe to call twice.
func (r *Reader) Start(ctx context.Context) error {
	return r.loop.Start(ctx, func() error {
		opts, err := clientOpts(r.cfg, r.log)
		if err != nil {
			return err
		}
		opts = append(opts,
			kgo.ConsumeTopics(r.cfg.Topic),
			kgo.ConsumerGroup(r.cfg.Group),
			// Offsets are committed by hand after a batch is applied, and
			// a rebalance waits until then.
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		if r.cl, err = kgo.NewClient(opts...); err != nil {
			return fmt.Errorf("create kafka reader: %w", err)
		}
		return nil
	}, r.run)
}

// Shutdown stops reading, without committing the batch in hand (it is
// read again), and leaves the group. It is safe to call twice and
// without Start.
func (r *Reader) Shutdown(ctx context.Context) error {
	err := r.loop.Stop(ctx)
	r.once.Do(func() {
		if r.cl != nil {
			// A poll blocks rebalances until AllowRebalance; leaving the
			// group on Close is one.
			r.cl.AllowRebalance()
			r.cl.Close()
		}
	})
	return err
}

// run polls, applies and commits until ctx is done.
func (r *Reader) run(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := r.cl.PollRecords(ctx, r.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			r.log.Warn("kafka fetch failed", "topic", topic, "partition", p, "err", err)
		})
		raw := fetches.Records()
		if len(raw) > 0 && !r.apply(ctx, raw) {
			return
		}
		r.cl.AllowRebalance()
	}
}

// apply decodes raw, applies it until the applier takes it or ctx is
// done, and commits it; it reports whether it got that far.
func (r *Reader) apply(ctx context.Context, raw []*kgo.Record) bool {
	recs := make([]Record, 0, len(raw))
	for _, kr := range raw {
		rec, err := decode(kr)
		if err != nil {
			// A bad record is skipped (and committed with the others):
			// reading it again would not make it better.
			r.m.WithLabelValues("malformed").Inc()
			r.log.Warn("skip a malformed record of the ingest log", "err", err)
			continue
		}
		recs = append(recs, rec)
	}
	for len(recs) > 0 {
		err := r.applier.Apply(ctx, recs)
		if err == nil {
			r.m.WithLabelValues("applied").Add(float64(len(recs)))
			break
		}
		if ctx.Err() != nil {
			return false
		}
		// The store is down: pause consumption and try the same records
		// again, without committing.
		r.log.Warn("apply records of the ingest log", "records", len(recs), "err", err, "retry_in", r.cfg.ApplyBackoff)
		t := time.NewTimer(r.cfg.ApplyBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	if err := r.cl.CommitRecords(ctx, raw...); err != nil {
		// The records are read again, by this engine or another, and the
		// applier's Offsets skip them.
		r.log.Warn("commit offsets of the ingest log", "records", len(raw), "err", err)
	}
	return true
}
