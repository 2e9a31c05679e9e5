package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/ingest/kafka"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store/postgres"
)

// Store is what an engine needs of the shared store; *postgres.Store
// has it.
type Store interface {
	LoadPartition(ctx context.Context, partition int32) (next int64, states map[string][]byte, err error)
	CheckpointPartition(ctx context.Context, partition int32, next int64, shards []postgres.Shard) error
	Join(ctx context.Context, now time.Time, window time.Duration) (joined, expired int64, err error)
	FindingsVersion(ctx context.Context) (int64, error)
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
	// tenant, with its model empty.
	NewShard func(tenant string) (Shard, error)
	// Findings returns the stored findings of tenant.
	Findings func(ctx context.Context, tenant string) ([]findings.Finding, error)
	Logger   *slog.Logger
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
	// findings are the tenants' findings as of version, loaded for the
	// tenants with a shard; checked is when the version was last read.
	findings map[string][]findings.Finding
	version  int64
	checked  time.Time
}

type partition struct {
	// next is the offset after the last record applied; -1 before any.
	next   int64
	dirty  bool
	shards map[string]*shardState
}

type shardState struct {
	Shard
	dirty bool
}

var _ kafka.Applier = (*Applier)(nil)

// NewApplier returns an applier with no partitions.
func NewApplier(cfg Config, deps ApplierDeps) (*Applier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.NewShard == nil || deps.Findings == nil {
		return nil, fmt.Errorf("%w: ApplierDeps.Store, NewShard and Findings are required", ErrInvalidConfig)
	}
	a := &Applier{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now, parts: map[int32]*partition{}, findings: map[string][]findings.Finding{}, version: -1}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Assign restores the shards of partitions from the store; see
// kafka.Applier.
func (a *Applier) Assign(ctx context.Context, partitions []int32) (kafka.Offsets, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	offs := kafka.Offsets{}
	for _, p := range partitions {
		next, states, err := a.deps.Store.LoadPartition(ctx, p)
		if err != nil {
			return nil, err
		}
		part := &partition{next: next, shards: map[string]*shardState{}}
		for tenant, state := range states {
			sh, err := a.newShard(ctx, tenant)
			if err != nil {
				return nil, err
			}
			if err := sh.Model.UnmarshalBinary(state); err != nil {
				return nil, fmt.Errorf("restore the shard of tenant %s in partition %d: %w", tenant, p, err)
			}
			part.shards[tenant] = sh
		}
		a.parts[p] = part
		if next >= 0 {
			offs[p] = next
		}
		a.log.Info("partition assigned", "partition", p, "from", next, "tenants", len(states))
	}
	return offs, nil
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
// last, joins the calls they handed over, and picks up new findings; see
// kafka.Applier.
func (a *Applier) Checkpoint(ctx context.Context) (kafka.Offsets, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	offs := kafka.Offsets{}
	wrote := false
	for p, part := range a.parts {
		if part.dirty {
			if err := a.checkpoint(ctx, p, part); err != nil {
				return nil, err
			}
			wrote = true
		}
		if a.parts[p] != nil && part.next >= 0 {
			offs[p] = part.next
		}
	}
	if wrote {
		if joined, expired, err := a.deps.Store.Join(ctx, a.now(), a.cfg.JoinWindow); err != nil {
			// The calls wait in the store for the next join.
			a.log.Warn("join the calls between shards", "err", err)
		} else if joined > 0 || expired > 0 {
			a.log.Debug("joined the calls between shards", "joined", joined, "expired", expired)
		}
	}
	if err := a.refreshFindings(ctx); err != nil {
		a.log.Warn("reload the findings", "err", err)
	}
	return offs, nil
}

// checkpoint writes the dirty shards of p with their pending calls; a.mu
// is held. A stale checkpoint drops the partition: another engine has it.
func (a *Applier) checkpoint(ctx context.Context, p int32, part *partition) error {
	var shards []postgres.Shard
	var taken []*shardState
	for tenant, sh := range part.shards {
		if !sh.dirty {
			continue
		}
		state, err := sh.Model.MarshalBinary()
		if err != nil {
			return fmt.Errorf("checkpoint the shard of tenant %s in partition %d: %w", tenant, p, err)
		}
		shards = append(shards, postgres.Shard{Tenant: tenant, State: state, Pending: sh.Model.TakePending()})
		taken = append(taken, sh)
	}
	err := a.deps.Store.CheckpointPartition(ctx, p, part.next, shards)
	if errors.Is(err, postgres.ErrStaleCheckpoint) {
		a.log.Warn("partition moved on without this engine: dropped", "partition", p, "err", err)
		delete(a.parts, p)
		return nil
	}
	if err != nil {
		for i, sh := range taken {
			sh.Model.RestorePending(shards[i].Pending)
		}
		return err
	}
	for _, sh := range taken {
		sh.dirty = false
	}
	part.dirty = false
	return nil
}

// refreshFindings reloads the findings of the tenants with shards when
// the store's findings version changed, at most every FindingsInterval;
// a.mu is held.
func (a *Applier) refreshFindings(ctx context.Context) error {
	if a.now().Sub(a.checked) < a.cfg.FindingsInterval {
		return nil
	}
	v, err := a.deps.Store.FindingsVersion(ctx)
	if err != nil {
		return err
	}
	a.checked = a.now()
	if v == a.version {
		return nil
	}
	if a.version < 0 {
		// The findings loaded so far are as of now or later.
		a.version = v
		return nil
	}
	a.version = v
	for tenant := range a.findings {
		fs, err := a.deps.Findings(ctx, tenant)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", tenant, err)
		}
		a.findings[tenant] = fs
		for _, part := range a.parts {
			if sh := part.shards[tenant]; sh != nil {
				sh.Engine.UseFindings(fs)
			}
		}
	}
	return nil
}

// Revoke checkpoints partitions unless lost and forgets them; see
// kafka.Applier.
func (a *Applier) Revoke(ctx context.Context, partitions []int32, lost bool) kafka.Offsets {
	a.mu.Lock()
	defer a.mu.Unlock()
	offs := kafka.Offsets{}
	for _, p := range partitions {
		part := a.parts[p]
		if part == nil {
			continue
		}
		if !lost && part.dirty {
			if err := a.checkpoint(ctx, p, part); err != nil {
				// The next owner reads from the last checkpoint.
				a.log.Warn("checkpoint a revoked partition", "partition", p, "err", err)
				delete(a.parts, p)
				continue
			}
		}
		if !lost && part.next >= 0 {
			offs[p] = part.next
		}
		delete(a.parts, p)
		a.log.Info("partition revoked", "partition", p, "lost", lost)
	}
	if !lost && len(offs) > 0 {
		if _, _, err := a.deps.Store.Join(ctx, a.now(), a.cfg.JoinWindow); err != nil {
			a.log.Warn("join the calls between shards", "err", err)
		}
	}
	return offs
}
