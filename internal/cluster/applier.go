package cluster

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/ingest/kafka"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/store/postgres"
)

// Store is what an engine needs of the shared store; *postgres.Store
// has it.
type Store interface {
	ClaimPartition(ctx context.Context, partition int32) (next, owner int64, states map[string][]byte, err error)
	CheckpointPartitions(ctx context.Context, parts []postgres.Partition) (stale []int32, err error)
	Checkpointed(ctx context.Context, parts []postgres.Partition) ([]int32, error)
	Join(ctx context.Context, now time.Time, window time.Duration) (joined, expired int64, err error)
	FindingsVersions(ctx context.Context) (map[string]int64, error)
}

// Shard is the engine and model of one tenant in one partition.
type Shard struct {
	Engine *engine.Engine
	Model  *model.Model
}

// ApplierDeps are what an Applier works with.
type ApplierDeps struct {
	Store Store
	// NewShard builds the (never started) engine of a new shard of
	// tenant, with its model empty. An error made with
	// pipeline.Permanent (a tenant beyond max_tenants) is one retrying
	// does not cure: the reader stops the record's partition at it
	// (kafka.StopError) and goes on with the others; any other is
	// retried.
	NewShard func(tenant string) (Shard, error)
	// Findings returns the stored findings of tenant.
	Findings func(ctx context.Context, tenant string) ([]findings.Finding, error)
	// SeedAlerts makes the alert deduplication of tenant (the router its
	// shards' engines fire to) know the alerts stored so far
	// (alert.Router.Seed). It is called when a partition is assigned, for
	// each tenant of its shards, and for a tenant it has no shard of
	// before its first record is applied (once a tenant per Assign): the
	// records from the partition's checkpoint on may have been applied by
	// its last owner, which fired and stored their alerts after this
	// engine's router read the store, and are applied again here.
	SeedAlerts func(ctx context.Context, tenant string) error
	Logger     *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Applier is an engine's kafka.Applier: the shards of the partitions it
// holds. It is safe for the concurrent calls kafka.Applier describes.
type Applier struct {
	cfg  Config
	deps ApplierDeps
	log  *slog.Logger
	now  func() time.Time

	mu    sync.Mutex
	parts map[int32]*partition
	// findings are the tenants' findings, loaded for the tenants with a
	// shard, as of versions (the store's FindingsVersions, nil before
	// the first read); checked is when the versions were last read.
	findings map[string][]findings.Finding
	versions map[string]int64
	checked  time.Time
	// seeded are the tenants seeded (SeedAlerts) since the last Assign;
	// Apply seeds the tenant of a shard it makes unless it is one: the
	// last owner of the partition may have applied records of the tenant
	// that no checkpoint holds.
	seeded map[string]bool
	// doubt is the last checkpoint when it failed and the store could
	// not say whether it committed all the same (committed); nil
	// otherwise. Its calls wait neither in the shards nor, as far as the
	// engine knows, in the store: the next checkpoint asks again first
	// (resolveDoubt). Put back at once, and handed over again once the
	// store is back, they counted twice when it had committed and the
	// store had forgotten them since (two join windows after).
	doubt *doubtful
}

// doubtful is a checkpoint that may have committed.
type doubtful struct {
	parts []postgres.Partition
	taken []takenShard
}

// takenShard is a shard whose pending calls a checkpoint hands over, to
// be put back in its model when the checkpoint does not commit.
type takenShard struct {
	partition int32
	tenant    string
	sh        *shardState
	pend      model.Pending
}

type partition struct {
	// next is the offset after the last record applied; -1 before any.
	next int64
	// owner is the store's number of this engine's claim on the
	// partition; its checkpoints name it.
	owner int64
	// stored is the offset the store holds for the claim, as far as the
	// engine knows: what the claim read, then what the checkpoints that
	// committed wrote. A checkpoint writes only a partition past it, so
	// that the store holding its offset shows it committed (committed).
	stored int64
	dirty  bool
	shards map[string]*shardState
}

type shardState struct {
	Shard
	dirty bool
	// written is when its state was last written by this engine, zero
	// before (restored by Assign, or new).
	written time.Time
}

// waitEnded reports whether a shard of part has a state to write though
// no record was applied to it (shardState.waitEnded).
func (part *partition) waitEnded(now time.Time) bool {
	for _, sh := range part.shards {
		if sh.waitEnded(now) {
			return true
		}
	}
	return false
}

// waitEnded reports whether sh's state must be written though no record
// was applied to it since: the state last written said that a
// destination its services consume from waits for its producers, and the
// wait has ended by now. A merged view judges the wait at the latest
// time its shards' states were written (model.Model.WaitsUntil); without
// this write, once the records stop, the consumer waited for ever,
// judged neither fed from outside nor by its producers.
func (sh *shardState) waitEnded(now time.Time) bool {
	until := sh.Model.WaitsUntil()
	return !sh.dirty && until.After(sh.written) && !now.Before(until)
}

var _ kafka.Applier = (*Applier)(nil)

// NewApplier returns an applier with no partitions.
func NewApplier(cfg Config, deps ApplierDeps) (*Applier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.NewShard == nil || deps.Findings == nil || deps.SeedAlerts == nil {
		return nil, fmt.Errorf("%w: ApplierDeps.Store, NewShard, Findings and SeedAlerts are required", ErrInvalidConfig)
	}
	a := &Applier{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now, parts: map[int32]*partition{},
		findings: map[string][]findings.Finding{}, seeded: map[string]bool{}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Assign restores the shards of partitions from the store, and seeds the
// alert deduplication of their tenants; see kafka.Applier. A partition
// with a shard of a tenant NewShard refuses permanently, or a state that
// does not decode, is refused alone (kafka.RefusedError): neither comes
// right by retrying.
func (a *Applier) Assign(ctx context.Context, partitions []int32) (kafka.Offsets, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.seeded)
	offs := kafka.Offsets{}
	refused := map[int32]error{}
	for _, p := range partitions {
		next, owner, states, err := a.deps.Store.ClaimPartition(ctx, p)
		if err != nil {
			return nil, err
		}
		part := &partition{next: next, owner: owner, stored: next, shards: map[string]*shardState{}}
		for tenant, state := range states {
			sh, err := a.newShard(ctx, tenant)
			if err == nil {
				if err = sh.Model.UnmarshalBinary(state); err != nil {
					err = pipeline.Permanent(fmt.Errorf("restore the shard of tenant %s: %w", tenant, err))
				} else {
					sh.Engine.Restored()
				}
			}
			if pipeline.IsPermanent(err) {
				refused[p] = err
				break
			}
			if err != nil {
				return nil, err
			}
			part.shards[tenant] = sh
		}
		if refused[p] != nil {
			continue
		}
		a.parts[p] = part
		if next >= 0 {
			offs[p] = next
		}
		a.log.Info("partition assigned", "partition", p, "from", next, "tenants", len(states))
	}
	// After the claims: the last owner of a partition checkpoints it no
	// more, and the alerts it stored before are seen.
	for _, p := range partitions {
		if part := a.parts[p]; part != nil {
			for _, tenant := range slices.Sorted(maps.Keys(part.shards)) {
				if err := a.seed(ctx, tenant); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(refused) > 0 {
		return offs, &kafka.RefusedError{Partitions: refused}
	}
	return offs, nil
}

// seed seeds the alert deduplication of tenant, unless it was since the
// last Assign; a.mu is held.
func (a *Applier) seed(ctx context.Context, tenant string) error {
	if a.seeded[tenant] {
		return nil
	}
	if err := a.deps.SeedAlerts(ctx, tenant); err != nil {
		return fmt.Errorf("seed the alerts of tenant %s: %w", tenant, err)
	}
	a.seeded[tenant] = true
	return nil
}

// newShard builds a shard of tenant watching its findings; a.mu is held.
func (a *Applier) newShard(ctx context.Context, tenant string) (*shardState, error) {
	fs, ok := a.findings[tenant]
	if !ok {
		var err error
		if fs, err = a.deps.Findings(ctx, tenant); err != nil {
			return nil, fmt.Errorf("load the findings of tenant %s: %w", tenant, err)
		}
		a.findings[tenant] = fs
	}
	sh, err := a.deps.NewShard(tenant)
	if err != nil {
		return nil, fmt.Errorf("create a shard of tenant %s: %w", tenant, err)
	}
	sh.Engine.UseFindings(fs)
	return &shardState{Shard: sh}, nil
}

// Apply applies the records of partitions this engine holds that its
// shards do not cover yet; see kafka.Applier.
func (a *Applier) Apply(ctx context.Context, recs []kafka.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range recs {
		part := a.parts[r.Partition]
		if part == nil || r.Offset < part.next {
			continue
		}
		sh := part.shards[r.Tenant]
		if sh == nil {
			var err error
			if sh, err = a.newShard(ctx, r.Tenant); err != nil {
				// Nothing of recs from here is applied: part.next stays.
				if pipeline.IsPermanent(err) {
					return &kafka.StopError{Partition: r.Partition, Offset: r.Offset, Err: err}
				}
				return err
			}
			// The last owner may have applied records of the tenant
			// since the checkpoint, which had no shard of it.
			if err := a.seed(ctx, r.Tenant); err != nil {
				return err
			}
			part.shards[r.Tenant] = sh
		}
		at := r.Time
		if at.IsZero() {
			at = a.now()
		}
		sh.Engine.ApplySpans(r.Spans, at)
		sh.Engine.ApplyProfiles(r.Profiles, at)
		sh.dirty, part.dirty, part.next = true, true, r.Offset+1
	}
	return nil
}

// Checkpoint checkpoints every partition with records applied since the
// last, and writes again the states of shards whose destinations' wait
// for their producers ended (shardState.waitEnded), in one transaction, joins the calls they handed over, and picks
// up new findings; see kafka.Applier.
func (a *Applier) Checkpoint(ctx context.Context) (kafka.Offsets, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var dirty []int32
	now := a.now()
	for p, part := range a.parts {
		if part.dirty || part.waitEnded(now) {
			dirty = append(dirty, p)
		}
	}
	if err := a.checkpoint(ctx, dirty); err != nil {
		return nil, err
	}
	offs := kafka.Offsets{}
	for p, part := range a.parts {
		if part.next >= 0 {
			offs[p] = part.next
		}
	}
	if len(dirty) > 0 {
		a.join(ctx)
	}
	if err := a.refreshFindings(ctx); err != nil {
		a.log.Warn("reload the findings", "err", err)
	}
	return offs, nil
}

// join joins the calls the checkpoints handed over; a failure leaves them
// in the store for the next join.
func (a *Applier) join(ctx context.Context) {
	if joined, expired, err := a.deps.Store.Join(ctx, a.now(), a.cfg.JoinWindow); err != nil {
		a.log.Warn("join the calls between shards", "err", err)
	} else if joined > 0 || expired > 0 {
		a.log.Debug("joined the calls between shards", "joined", joined, "expired", expired)
	}
}

// checkpoint writes the dirty shards of partitions with their pending
// calls, and the states of shards whose destinations' wait ended
// (shardState.waitEnded), in one transaction; a.mu is held. A partition
// whose checkpoint is stale is dropped: another engine has it.
func (a *Applier) checkpoint(ctx context.Context, partitions []int32) error {
	if len(partitions) == 0 {
		return nil
	}
	if err := a.resolveDoubt(ctx); err != nil {
		return err
	}
	var (
		parts []postgres.Partition
		// moved are those of parts past the offset stored (partition.
		// stored), which tell whether the checkpoint committed: a part
		// written again at its offset, for a wait that ended, has no
		// calls to hand over and is stored whether it committed or not.
		moved []postgres.Partition
		taken []takenShard
	)
	now := a.now()
	for _, p := range partitions {
		part := a.parts[p]
		if part.next == part.stored {
			// Its states are as a checkpoint in doubt stored them: no
			// record was applied since.
			part.dirty = false
			for _, sh := range part.shards {
				sh.dirty = false
			}
		}
		cp := postgres.Partition{Partition: p, Owner: part.owner, Next: part.next}
		for tenant, sh := range part.shards {
			if !sh.dirty && !sh.waitEnded(now) {
				continue
			}
			// The calls handed over first: the state counts the spans
			// waiting in the store as pending no more.
			var pend model.Pending
			if sh.dirty {
				pend = sh.Model.TakePending()
			}
			state, err := sh.Model.MarshalBinary()
			if err != nil {
				sh.Model.RestorePending(pend)
				a.restore(taken)
				return fmt.Errorf("checkpoint the shard of tenant %s in partition %d: %w", tenant, p, err)
			}
			cp.Shards = append(cp.Shards, postgres.Shard{Tenant: tenant, State: state, Pending: pend})
			taken = append(taken, takenShard{partition: p, tenant: tenant, sh: sh, pend: pend})
		}
		switch {
		case part.dirty:
			moved = append(moved, cp)
		case len(cp.Shards) == 0:
			continue
		}
		parts = append(parts, cp)
	}
	if len(parts) == 0 {
		return nil
	}
	stale, err := a.deps.Store.CheckpointPartitions(ctx, parts)
	if err != nil {
		if len(moved) == 0 {
			// Only states written again: they are written at the next
			// checkpoint, committed or not.
			return err
		}
		var known bool
		if stale, known, err = a.committed(ctx, moved, err); !known {
			// The shards stay dirty: their states are written again.
			a.doubt = &doubtful{parts: moved, taken: taken}
			return err
		}
		if err != nil {
			a.restore(taken)
			return err
		}
	}
	for _, t := range taken {
		t.sh.dirty, t.sh.written = false, now
	}
	for _, cp := range moved {
		part := a.parts[cp.Partition]
		part.dirty, part.stored = false, cp.Next
	}
	for _, p := range stale {
		a.log.Warn("partition moved on without this engine: dropped", "partition", p)
		delete(a.parts, p)
	}
	return nil
}

// restore puts the calls of taken back in their models, those of shards
// the engine still has; a.mu is held.
func (a *Applier) restore(taken []takenShard) {
	for _, t := range taken {
		if part := a.parts[t.partition]; part != nil && part.shards[t.tenant] == t.sh {
			t.sh.Model.RestorePending(t.pend)
		}
	}
}

// committed tells whether the checkpoint of parts that failed with err
// committed all the same, the connection lost before its answer: then
// its calls wait in the store, and waiting for them in the models too
// would count a callee twice, joined in its shard and expired unlinked
// in the store. The checkpoint is one transaction, and each of parts is
// past the offset stored before it (partition.stored), so it committed
// when any of parts is stored (Checkpointed), and the others were stale; it
// returns those and a nil error, or err when none is stored. known is
// false, with an error saying so, when the store cannot say.
func (a *Applier) committed(ctx context.Context, parts []postgres.Partition, err error) (stale []int32, known bool, _ error) {
	done, cerr := a.deps.Store.Checkpointed(ctx, parts)
	if cerr != nil {
		return nil, false, fmt.Errorf("%w (and whether it committed is not known: %w)", err, cerr)
	}
	if len(done) == 0 {
		return nil, true, err
	}
	a.log.Warn("checkpoint committed though the store's answer was lost", "err", err)
	for _, p := range parts {
		if !slices.Contains(done, p.Partition) {
			stale = append(stale, p.Partition)
		}
	}
	return stale, true, nil
}

// resolveDoubt asks the store whether the checkpoint in doubt committed,
// and puts its calls back in their models if it did not; a.mu is held.
// While the store cannot say, it is an error, and no checkpoint is
// made. Of one that committed, the partitions it stored hold its offset
// (partition.stored): those no record was applied to since are not
// written again (checkpoint), and those that were stale are found stale
// at their next checkpoint.
func (a *Applier) resolveDoubt(ctx context.Context) error {
	if a.doubt == nil {
		return nil
	}
	done, err := a.deps.Store.Checkpointed(ctx, a.doubt.parts)
	if err != nil {
		return fmt.Errorf("ask whether the last checkpoint committed: %w", err)
	}
	if len(done) == 0 {
		a.restore(a.doubt.taken)
	}
	for _, cp := range a.doubt.parts {
		if part := a.parts[cp.Partition]; part != nil && part.owner == cp.Owner && slices.Contains(done, cp.Partition) {
			part.stored = cp.Next
		}
	}
	a.doubt = nil
	return nil
}

// refreshFindings reloads the findings of the tenants with shards whose
// version in the store changed, at most every FindingsInterval; a.mu is
// held.
func (a *Applier) refreshFindings(ctx context.Context) error {
	if a.now().Sub(a.checked) < a.cfg.FindingsInterval {
		return nil
	}
	vs, err := a.deps.Store.FindingsVersions(ctx)
	if err != nil {
		return err
	}
	a.checked = a.now()
	a.versions, err = reloadChanged(a.versions, vs, maps.Keys(a.findings), func(tenant string) error {
		fs, err := a.deps.Findings(ctx, tenant)
		if err != nil {
			return err
		}
		a.findings[tenant] = fs
		for _, part := range a.parts {
			if sh := part.shards[tenant]; sh != nil {
				sh.Engine.UseFindings(fs)
			}
		}
		return nil
	})
	return err
}

// reloadChanged calls reload for each of tenants whose findings version
// changed (findingsChanged) and returns the versions to keep as seen: vs,
// except that a tenant whose reload failed keeps the version seen before,
// so that it is tried again at the next look, and the failures, joined.
// One tenant's failure stops no other's reload. The first look (seen nil)
// reloads every tenant: the findings loaded so far were read before vs,
// and an upload may lie between.
func reloadChanged(seen, vs map[string]int64, tenants iter.Seq[string], reload func(tenant string) error) (map[string]int64, error) {
	next := maps.Clone(vs)
	var errs []error
	for tenant := range tenants {
		if !findingsChanged(seen, vs, tenant) {
			continue
		}
		if err := reload(tenant); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", tenant, err))
			if old, ok := seen[tenant]; ok {
				next[tenant] = old
			} else {
				// Version 0, which no stored findings have: changed at the
				// next look, as at this one.
				delete(next, tenant)
			}
		}
	}
	return next, errors.Join(errs...)
}

// findingsChanged reports whether tenant's findings version in now
// differs from the one in seen, the versions its findings were last
// loaded at; seen nil (never read) counts as a change.
func findingsChanged(seen, now map[string]int64, tenant string) bool {
	return seen == nil || now[tenant] != seen[tenant]
}

// Revoke checkpoints partitions unless lost and forgets them; see
// kafka.Applier.
func (a *Applier) Revoke(ctx context.Context, partitions []int32, lost bool) kafka.Offsets {
	a.mu.Lock()
	defer a.mu.Unlock()
	var held, dirty []int32
	for _, p := range partitions {
		if part := a.parts[p]; part != nil {
			held = append(held, p)
			if part.dirty {
				dirty = append(dirty, p)
			}
		}
	}
	offs := kafka.Offsets{}
	if !lost {
		if err := a.checkpoint(ctx, dirty); err != nil {
			// The next owner reads from the last checkpoint.
			a.log.Warn("checkpoint revoked partitions", "partitions", dirty, "err", err)
		} else {
			for _, p := range held {
				if part := a.parts[p]; part != nil && part.next >= 0 {
					offs[p] = part.next
				}
			}
			if len(dirty) > 0 {
				a.join(ctx)
			}
		}
	}
	for _, p := range held {
		delete(a.parts, p)
	}
	a.log.Info("partitions revoked", "partitions", held, "lost", lost)
	return offs
}
