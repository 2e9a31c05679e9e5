package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evidentsec/evident/internal/pipeline"
)

// Applier keeps the state of the partitions an engine reads. Apply
// applies records in memory; Checkpoint makes what was applied durable,
// with the Offsets it covers in the same transaction, and the Reader
// commits those offsets only then. A partition given to the reader is
// restored first (Assign) and read from where its checkpoint ends, so a
// record applied but not checkpointed by an engine that died is read
// again by the next, and one checkpointed is never applied twice (an
// applier still skips, with Offsets.Fresh, what its state covers: the
// group's committed offsets may lag the checkpoint).
//
// Apply and Checkpoint are called from the Reader's goroutine, Assign and
// Revoke from the consumer group's, possibly at the same time: an
// Applier must be safe for that.
type Applier interface {
	// Assign restores the state of partitions, now this engine's, and
	// returns for each the offset to read from: the one its checkpoint
	// reached. A partition left out is read from the group's committed
	// offset, or from the start of the log. A *RefusedError names
	// partitions the Applier cannot restore until the engine is changed:
	// the Reader reads none of them while it holds them, and reads the
	// others from the Offsets returned with it. Any other error is taken
	// as passing: the group assigns again.
	Assign(ctx context.Context, partitions []int32) (Offsets, error)
	// Apply applies recs, in log order within each partition, to the
	// in-memory state. On an error some of recs may have been applied:
	// the Applier skips those when it is given them again (Offsets.Fresh).
	// A *StopError names a record the Applier cannot take until the
	// engine is changed: the Reader stops reading its partition there
	// and calls Apply again at once with the other partitions' records.
	// Any other error is taken as passing (the store is down): the
	// Reader pauses and calls Apply again with the same records. recs
	// belong to the Applier after the call.
	Apply(ctx context.Context, recs []Record) error
	// Checkpoint makes durable the state of every partition the engine
	// holds and returns the offsets it covers, which the Reader commits.
	// On an error nothing is committed; the Reader pauses consumption and
	// retries.
	Checkpoint(ctx context.Context) (Offsets, error)
	// Revoke tells that partitions are no longer this engine's: unless
	// lost (the group went on without this engine, and another may have
	// them already), it checkpoints them first and returns the offsets to
	// commit. Either way it then forgets them.
	Revoke(ctx context.Context, partitions []int32, lost bool) Offsets
}

// StopError is an Apply error for a record that retrying does not make
// applicable: the engine refuses its tenant (one beyond max_tenants, say)
// until its configuration changes. The record is not damaged, so it is
// not skipped either: the Reader stops reading its partition at it, as
// at a record of a newer format, and the records of its other partitions
// go on. Nothing of the partition from the record on is applied or
// committed until the group moves the partition (the engine restarts).
type StopError struct {
	Partition int32
	Offset    int64
	Err       error
}

func (e *StopError) Error() string {
	return fmt.Sprintf("record at partition %d offset %d: %v", e.Partition, e.Offset, e.Err)
}

func (e *StopError) Unwrap() error { return e.Err }

// RefusedError is an Assign error for partitions whose stored state the
// engine cannot restore until it is changed: a shard of a tenant beyond
// max_tenants, or one written in a form this engine does not read.
// Reading such a partition on an empty state would lose what its
// checkpoint holds, and failing the whole assignment would stall every
// partition of the engine as the group assigns again and again; so the
// Reader reads none of the refused partitions, until the group moves
// them (the engine restarts), and goes on with the others.
type RefusedError struct {
	// Partitions maps each refused partition to why.
	Partitions map[int32]error
}

func (e *RefusedError) Error() string {
	parts := slices.Sorted(maps.Keys(e.Partitions))
	msgs := make([]string, len(parts))
	for i, p := range parts {
		msgs[i] = fmt.Sprintf("partition %d: %v", p, e.Partitions[p])
	}
	return "restore partitions: " + strings.Join(msgs, "; ")
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
	every   time.Duration
	cl      *kgo.Client
	applier Applier
	log     *slog.Logger
	m       *prometheus.CounterVec
	// stopped is how many partitions the reader holds but does not
	// fetch: paused at a record of a newer format (stop) or one the
	// applier refused (refuse), or refused whole by the applier's Assign.
	stopped prometheus.Gauge
	// checkpoints counts the applier's checkpoints by result: an
	// engine's only checkpoints (serve's evident_engine_checkpoints_total
	// counts the single process's), and failing while the store is down.
	checkpoints *prometheus.CounterVec
	// lost counts the offsets of partitions this reader holds that the
	// log no longer had when it came to read them (gap).
	lost prometheus.Counter
	// expectMu guards expect: per partition held, the offset the reader
	// reads next, set by assign and advanced by apply; refused, the
	// partitions held whose state the applier could not restore; and
	// paused, how many partitions held the client does not fetch.
	expectMu sync.Mutex
	expect   map[int32]int64
	refused  map[int32]bool
	paused   int
	loop     pipeline.Loop
	once     sync.Once
}

var _ pipeline.Component = (*Reader)(nil)

// NewReader returns a reader of cfg.Topic in cfg.Group that applies with
// a and checkpoints it every checkpoint. It joins the group on Start.
func NewReader(cfg Config, a Applier, checkpoint time.Duration, logger *slog.Logger, reg prometheus.Registerer) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if checkpoint <= 0 {
		return nil, fmt.Errorf("create kafka reader: checkpoint interval %v is not positive", checkpoint)
	}
	if a == nil {
		return nil, errors.New("create kafka reader: no applier")
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Reader{cfg: cfg, every: checkpoint, applier: a, log: logger, m: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_kafka_read_records_total",
		Help: "Records read from the ingest log, by outcome (applied, malformed, too_new, refused).",
	}, []string{"outcome"}), stopped: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "evident_kafka_partitions_stopped",
		Help: "Partitions of the ingest log this engine holds but stopped reading at a record of a format it does not know, written by a newer evident (upgrade the engine), or at a record it refuses, or whose stored state it cannot restore (see its log).",
	}), checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_kafka_checkpoints_total",
		Help: "Checkpoints of the partitions read from the ingest log to the shared store, by result (ok, error).",
	}, []string{"result"}), lost: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "evident_kafka_lost_records_total",
		Help: "Offsets of the ingest log an engine was to read next but found deleted, by the topic's retention, before it applied them.",
	}), expect: map[int32]int64{}, refused: map[int32]bool{}}
	// Every outcome and result from 0, so a rate of malformed records or
	// failed checkpoints is 0 rather than "no data".
	r.m.WithLabelValues("applied")
	r.m.WithLabelValues("malformed")
	r.m.WithLabelValues("too_new")
	r.m.WithLabelValues("refused")
	r.checkpoints.WithLabelValues("ok")
	r.checkpoints.WithLabelValues("error")
	if reg != nil {
		for _, c := range []prometheus.Collector{r.m, r.stopped, r.checkpoints, r.lost} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register kafka reader metrics: %w", err)
			}
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
			// Offsets are committed by hand once checkpointed, and a
			// rebalance waits for the batch in hand.
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AdjustFetchOffsetsFn(r.assign),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
				r.revoke(ctx, cl, revoked[r.cfg.Topic], false)
			}),
			kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
				r.revoke(ctx, cl, lost[r.cfg.Topic], true)
			}),
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

// assign restores the partitions the group gave and reads each from
// where its checkpoint ends.
func (r *Reader) assign(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := make([]int32, 0, len(offsets[r.cfg.Topic]))
	for p := range offsets[r.cfg.Topic] {
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return offsets, nil
	}
	next, err := r.applier.Assign(ctx, parts)
	var re *RefusedError
	if errors.As(err, &re) {
		r.expectMu.Lock()
		for p, perr := range re.Partitions {
			// Left out of the offsets, the client does not fetch it;
			// the group still counts it this engine's.
			delete(offsets[r.cfg.Topic], p)
			r.refused[p] = true
			r.log.Error("stop reading a partition of the ingest log whose state this engine cannot restore",
				"topic", r.cfg.Topic, "partition", p, "err", perr, "hint", refusedHint)
		}
		r.expectMu.Unlock()
		r.setStopped(-1)
		err = nil
	}
	if err != nil {
		// Joining again retries; reading from the committed offsets
		// would apply on a state that is not there.
		r.log.Warn("restore the partitions of the ingest log", "partitions", parts, "err", err)
		return nil, err
	}
	for p, n := range next {
		if _, ok := offsets[r.cfg.Topic][p]; ok {
			offsets[r.cfg.Topic][p] = kgo.NewOffset().At(n).WithEpoch(-1)
		}
	}
	r.expectMu.Lock()
	for p, o := range offsets[r.cfg.Topic] {
		// The checkpoint's offset, or the group's commit: a partition
		// read from the start of the log expects nothing.
		if at := o.EpochOffset().Offset; at >= 0 {
			r.expect[p] = at
		} else {
			delete(r.expect, p)
		}
	}
	r.expectMu.Unlock()
	return offsets, nil
}

// revoke hands partitions back: checkpointed and committed unless lost.
func (r *Reader) revoke(ctx context.Context, cl *kgo.Client, parts []int32, lost bool) {
	if len(parts) == 0 {
		return
	}
	r.expectMu.Lock()
	for _, p := range parts {
		delete(r.expect, p)
		delete(r.refused, p)
	}
	r.expectMu.Unlock()
	if offs := r.applier.Revoke(ctx, parts, lost); len(offs) > 0 {
		cl.CommitOffsetsSync(ctx, r.commitsOf(offs), nil)
	}
	// A partition stopped at a record of a newer format stays paused in
	// the client until resumed; given back to this engine later, it is
	// read again from its checkpoint, which may be past that record by
	// then.
	cl.ResumeFetchPartitions(map[string][]int32{r.cfg.Topic: parts})
	r.setStopped(len(cl.PauseFetchPartitions(nil)[r.cfg.Topic]))
}

// commitsOf is offs as the client commits them.
func (r *Reader) commitsOf(offs Offsets) map[string]map[int32]kgo.EpochOffset {
	m := make(map[int32]kgo.EpochOffset, len(offs))
	for p, n := range offs {
		m[p] = kgo.EpochOffset{Epoch: -1, Offset: n}
	}
	return map[string]map[int32]kgo.EpochOffset{r.cfg.Topic: m}
}

// run polls and applies, and checkpoints and commits every r.every,
// until ctx is done.
func (r *Reader) run(ctx context.Context) {
	last := time.Now()
	for ctx.Err() == nil {
		// The poll ends in time for the next checkpoint, records or not.
		pctx, cancel := context.WithDeadline(ctx, last.Add(r.every))
		fetches := r.cl.PollRecords(pctx, r.cfg.MaxPollRecords)
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				r.log.Warn("kafka fetch failed", "topic", topic, "partition", p, "err", err)
			}
		})
		raw := fetches.Records()
		if len(raw) > 0 && !r.apply(ctx, raw) {
			return
		}
		if time.Since(last) >= r.every {
			if !r.checkpoint(ctx) {
				return
			}
			last = time.Now()
		}
		r.cl.AllowRebalance()
	}
}

// checkpoint checkpoints the applier until it succeeds or ctx is done,
// pausing consumption meanwhile, and commits what it covers; it reports
// whether it got that far.
func (r *Reader) checkpoint(ctx context.Context) bool {
	for {
		offs, err := r.applier.Checkpoint(ctx)
		if err == nil {
			r.checkpoints.WithLabelValues("ok").Inc()
			if len(offs) > 0 {
				r.cl.CommitOffsets(ctx, r.commitsOf(offs), func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
					if err != nil && ctx.Err() == nil {
						// The committed offsets only show progress: an
						// engine resumes from its checkpoint.
						r.log.Warn("commit offsets of the ingest log", "err", err)
					}
				})
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.checkpoints.WithLabelValues("error").Inc()
		r.log.Warn("checkpoint the ingest log's partitions", "err", err, "retry_in", r.cfg.ApplyBackoff)
		// Partitions may move meanwhile: the next owner reads what was
		// not checkpointed again.
		r.cl.AllowRebalance()
		if !r.sleep(ctx) {
			return false
		}
	}
}

func (r *Reader) sleep(ctx context.Context) bool {
	t := time.NewTimer(r.cfg.ApplyBackoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// apply decodes raw and applies it until the applier takes it or ctx is
// done; it reports whether it got that far.
func (r *Reader) apply(ctx context.Context, raw []*kgo.Record) bool {
	recs := make([]Record, 0, len(raw))
	var stopped map[int32]bool
	for _, kr := range raw {
		if stopped[kr.Partition] {
			continue
		}
		r.gap(kr)
		rec, err := decode(kr)
		if errors.Is(err, errNewerFormat) {
			// Not damage: a newer receiver wrote it. Skipped, it would
			// be committed with the records after it and lost for good;
			// so nothing of its partition from it on is applied, and
			// the partition's checkpoint and committed offset stay
			// before it for an engine that knows the format.
			if stopped == nil {
				stopped = map[int32]bool{}
			}
			stopped[kr.Partition] = true
			r.stop(kr, err)
			continue
		}
		if err != nil {
			// A damaged record (a known format that does not decode, or
			// headers no evident writes) is skipped, and committed with
			// the others: reading it again would not make it better.
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
		var se *StopError
		if errors.As(err, &se) && slices.ContainsFunc(recs, func(rec Record) bool {
			return rec.Partition == se.Partition && rec.Offset == se.Offset
		}) {
			// One record the engine cannot take holds up its partition
			// alone: the others' records are applied now.
			r.refuse(raw, se)
			recs = slices.DeleteFunc(recs, func(rec Record) bool {
				if rec.Partition != se.Partition {
					return false
				}
				if rec.Offset < se.Offset {
					r.m.WithLabelValues("applied").Inc()
				}
				return true
			})
			continue
		}
		r.log.Warn("apply records of the ingest log", "records", len(recs), "err", err, "retry_in", r.cfg.ApplyBackoff)
		// Partitions may move meanwhile, as while a checkpoint fails.
		r.cl.AllowRebalance()
		if !r.sleep(ctx) {
			return false
		}
	}
	return true
}

// setStopped sets the stopped gauge to the partitions refused and the
// paused ones, paused if it is not negative, else as last set.
func (r *Reader) setStopped(paused int) {
	r.expectMu.Lock()
	defer r.expectMu.Unlock()
	if paused >= 0 {
		r.paused = paused
	}
	r.stopped.Set(float64(r.paused + len(r.refused)))
}

// refusedHint says what to do about a partition stopped at a record the
// engine refused, or refused whole.
const refusedHint = "fix what the error names (serve.tenants.max_tenants for a tenant beyond it) and restart this engine: nothing of the partition from here on is applied or committed, and the engine that takes the partition reads it from here, before the topic's retention deletes it"

// refuse stops fetching the partition of se, a record of raw the applier
// refused, as stop does for a record of a newer format.
func (r *Reader) refuse(raw []*kgo.Record, se *StopError) {
	r.m.WithLabelValues("refused").Inc()
	topic := r.cfg.Topic
	for _, kr := range raw {
		if kr.Partition == se.Partition && kr.Offset == se.Offset {
			topic = kr.Topic
		}
	}
	paused := r.cl.PauseFetchPartitions(map[string][]int32{topic: {se.Partition}})
	r.setStopped(len(paused[r.cfg.Topic]))
	r.log.Error("stop reading a partition of the ingest log at a record this engine refuses",
		"topic", topic, "partition", se.Partition, "offset", se.Offset, "err", se.Err, "hint", refusedHint)
}

// gap reports the offsets before kr that the reader was to read next
// and the log no longer holds: the topic's retention deleted them before
// an engine applied them (one was down or behind for longer), and the
// client went on from the start of the log. Nothing can bring them back;
// they are lost, loudly.
func (r *Reader) gap(kr *kgo.Record) {
	r.expectMu.Lock()
	want, ok := r.expect[kr.Partition]
	r.expect[kr.Partition] = kr.Offset + 1
	r.expectMu.Unlock()
	if !ok || kr.Offset <= want {
		return
	}
	r.lost.Add(float64(kr.Offset - want))
	r.log.Error("records of the ingest log were deleted before this engine applied them",
		"topic", kr.Topic, "partition", kr.Partition, "from", want, "to", kr.Offset, "records", kr.Offset-want,
		"hint", "the topic's retention must exceed the longest time an engine may be down or behind (docs/scaling.md)")
}

// newerFormatHint says what to do about a partition stopped at a record
// of a newer format.
const newerFormatHint = "upgrade this engine: nothing of the partition from this record on is applied or committed, and an engine that knows the format reads it from here when it takes the partition (the engines are upgraded before the receivers, docs/deploy.md), before the topic's retention deletes it"

// stop stops fetching the partition of kr, a record of a newer format:
// the rest of the partition waits in the log, and the partition stays
// with this engine, stopped, until the group moves it.
func (r *Reader) stop(kr *kgo.Record, err error) {
	r.m.WithLabelValues("too_new").Inc()
	paused := r.cl.PauseFetchPartitions(map[string][]int32{kr.Topic: {kr.Partition}})
	r.setStopped(len(paused[r.cfg.Topic]))
	r.log.Error("stop reading a partition of the ingest log at a record of a newer format",
		"topic", kr.Topic, "partition", kr.Partition, "offset", kr.Offset, "format", header(kr, headerFormat), "err", err, "hint", newerFormatHint)
}
