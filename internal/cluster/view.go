package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/store"
)

// ViewDeps are what a View works with.
type ViewDeps struct {
	// Versions returns, for each tenant that has shards, a text that
	// changes whenever what Read returns for the tenant changes.
	Versions func(ctx context.Context) (map[string]string, error)
	// Read returns the states of a tenant's shards and the joins of the
	// calls between them, read together.
	Read func(ctx context.Context, tenant string) ([][]byte, model.Joins, error)
	// Engine returns the running engine of a tenant's merged view.
	Engine func(ctx context.Context, tenant string) (*engine.Engine, error)
	// FindingsVersions returns, per tenant, a number that changes
	// whenever the tenant's stored findings change (an upload through
	// any API replica).
	FindingsVersions func(ctx context.Context) (map[string]int64, error)
	// Engines returns the engines of the tenants this replica holds in
	// memory, with or without shards, by tenant: each reloads its
	// findings when its tenant's version changed.
	Engines func() map[string]*engine.Engine
	// Lead tries to make this replica the one that records verdict
	// history and raises topology alerts, and reports whether it is.
	Lead func(ctx context.Context) (bool, error)
	// Leader is set to what Lead reports; it calls Lead again before
	// each verdict change and topology alert it lets through.
	Leader *Leader
	// SeedAlerts makes the alert deduplication of the tenants in memory
	// (the routers their engines' topology alerts go to) know the alerts
	// stored so far (alert.Router.Seed). It is called when this replica
	// becomes the leader, before it lets an alert through: the leader
	// before it raised, and stored after this replica's routers read the
	// store, the alerts of views this replica may build only now, and
	// would raise again. An error leaves the replica not leading until
	// the next Sync.
	SeedAlerts func(ctx context.Context) error
	Logger     *slog.Logger
}

// View rebuilds, every ViewInterval, the merged model of each tenant whose
// shards or joins changed from the shards the engines checkpointed, and
// hands it to the tenant's engine, which assesses it as the single
// process does. It is a pipeline.Component.
type View struct {
	cfg  Config
	deps ViewDeps
	log  *slog.Logger
	loop pipeline.Loop
	// mu serialises the reloads of findings, and guards versions: the
	// FindingsVersions the engines have reloaded, nil before the first
	// Sync, which reloads them all (findings stored after an engine
	// loaded them at its start and before the first versions were read
	// would be missed otherwise).
	mu       sync.Mutex
	versions map[string]int64
	// buildMu serialises the rebuilds, and guards built: per tenant, the
	// Versions its engine's view was last built at. A version is read
	// before the shards it is of, so a view built from newer shards than
	// its version is built again at the next Sync, never missed.
	buildMu sync.Mutex
	built   map[string]string
}

var _ pipeline.Component = (*View)(nil)

// NewView returns a view; it does nothing until Start.
func NewView(cfg Config, deps ViewDeps) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Versions == nil || deps.Read == nil || deps.Engine == nil || deps.FindingsVersions == nil || deps.Engines == nil || deps.Lead == nil || deps.Leader == nil || deps.SeedAlerts == nil {
		return nil, fmt.Errorf("%w: every ViewDeps function and the Leader are required", ErrInvalidConfig)
	}
	v := &View{cfg: cfg, deps: deps, log: deps.Logger, built: make(map[string]string)}
	if v.log == nil {
		v.log = slog.Default()
	}
	deps.Leader.mu.Lock()
	deps.Leader.take, deps.Leader.seed, deps.Leader.log = deps.Lead, deps.SeedAlerts, v.log
	deps.Leader.mu.Unlock()
	return v, nil
}

// Start rebuilds the views once, then every ViewInterval. It is safe to
// call twice.
func (v *View) Start(ctx context.Context) error {
	return v.loop.Start(ctx, func() error {
		if err := v.Sync(ctx); err != nil {
			v.log.Warn("build the merged views", "err", err)
		}
		return nil
	}, v.run)
}

// Shutdown stops the loop; it is safe to call twice and without Start.
func (v *View) Shutdown(ctx context.Context) error { return v.loop.Stop(ctx) }

func (v *View) run(ctx context.Context) {
	t := time.NewTicker(v.cfg.ViewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := v.Sync(ctx); err != nil && ctx.Err() == nil {
				v.log.Warn("build the merged views", "err", err)
			}
		}
	}
}

// Sync reloads the findings of every tenant in memory when another
// replica changed them, and rebuilds now the view of every tenant whose
// shards or joins changed since its view was built. A tenant that fails
// (a shard that does not decode, a tenant beyond max_tenants) stops no
// other's: its error is returned with the others', and it is tried again
// at the next Sync.
func (v *View) Sync(ctx context.Context) error {
	if _, err := v.deps.Leader.renew(ctx); err != nil {
		return err
	}
	findingsErr := v.reloadFindings(ctx)
	versions, err := v.deps.Versions(ctx)
	if err != nil {
		return errors.Join(findingsErr, err)
	}
	v.buildMu.Lock()
	defer v.buildMu.Unlock()
	errs := []error{findingsErr}
	for _, t := range slices.Sorted(maps.Keys(versions)) {
		if built, ok := v.built[t]; ok && built == versions[t] {
			continue
		}
		if err := v.build(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
			continue
		}
		v.built[t] = versions[t]
	}
	return errors.Join(errs...)
}

// build reads a tenant's shards and joins, merges them and hands the
// result to its engine.
func (v *View) build(ctx context.Context, tenant string) error {
	states, joins, err := v.deps.Read(ctx, tenant)
	if err != nil {
		return err
	}
	merged, err := model.MergeStates(joins, states...)
	if err != nil {
		return err
	}
	eng, err := v.deps.Engine(ctx, tenant)
	if err != nil {
		return err
	}
	return eng.Replace(ctx, merged)
}

// RestoreFromView returns st for the engine of a tenant's merged view on
// an API replica: its checkpoint is the merged view of the tenant's
// shards, read (ViewDeps.Read of the tenant) when the engine starts, and
// its log is empty (Kafka is the deployment's log). So the engine starts
// from the state the deployment holds, as the single process starts from
// its checkpoint: its first assessment is where it starts from, and what
// was decided before it started records no verdict change and raises no
// topology alert again when this replica leads.
func RestoreFromView(st engine.Store, read func(ctx context.Context) ([][]byte, model.Joins, error)) engine.Store {
	return viewStore{Store: st, read: read}
}

type viewStore struct {
	engine.Store
	read func(ctx context.Context) ([][]byte, model.Joins, error)
}

func (s viewStore) LoadCheckpoint(ctx context.Context) (int64, []byte, error) {
	states, joins, err := s.read(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("read the shards: %w", err)
	}
	if len(states) == 0 {
		return 0, nil, nil
	}
	merged, err := model.MergeStates(joins, states...)
	if err != nil {
		return 0, nil, fmt.Errorf("merge the shards: %w", err)
	}
	return 0, merged, nil
}

func (viewStore) Batches(context.Context, int64, func(int64, store.BatchKind, []byte) error) error {
	return nil
}

// reloadFindings hands the stored findings to each engine in memory
// whose tenant's version changed since the last reload. The versions are
// read first: findings stored after them are seen now or at the next
// Sync, and an engine built later loads them at its start.
func (v *View) reloadFindings(ctx context.Context) error {
	vs, err := v.deps.FindingsVersions(ctx)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	engines := v.deps.Engines()
	v.versions, err = reloadChanged(v.versions, vs, maps.Keys(engines), func(tenant string) error {
		return engines[tenant].ReloadFindings(ctx)
	})
	if err != nil {
		return fmt.Errorf("reload the findings: %w", err)
	}
	return nil
}

// Leader says whether this API replica is the one that records verdict
// history and raises topology alerts; the others assess the same view
// and keep quiet. Before each of those actions the leader checks that it
// still holds its lock (ViewDeps.Lead): one whose lock was lost steps
// down and writes nothing, so two replicas never both write, and the
// next Sync tries to take the lock again. The zero value is not the
// leader.
type Leader struct {
	lead atomic.Bool
	// mu serializes the checks; take, seed and log are set once by
	// NewView.
	mu   sync.Mutex
	take func(ctx context.Context) (bool, error)
	seed func(ctx context.Context) error
	log  *slog.Logger
}

// Is reports whether this replica leads, as of its last check.
func (l *Leader) Is() bool { return l.lead.Load() }

// set records what taking the lock reported.
func (l *Leader) set(lead bool) {
	if was := l.lead.Swap(lead); was != lead && l.log != nil {
		if lead {
			l.log.Info("this replica leads: it records verdict changes and raises topology alerts")
		} else {
			l.log.Warn("this replica no longer leads")
		}
	}
}

// renew takes the lock, or checks that this replica still holds it, and
// records the outcome: an error steps down.
func (l *Leader) renew(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.take == nil {
		return false, nil
	}
	lead, err := l.take(ctx)
	if lead && err == nil && !l.Is() {
		// Before the first alert it lets through, under mu: confirm
		// waits for it.
		if err = l.seed(ctx); err != nil {
			err = fmt.Errorf("seed the alerts the leader before raised: %w", err)
		}
	}
	l.set(lead && err == nil)
	return l.Is(), err
}

// confirm reports whether this replica leads and still holds its lock,
// stepping down when it does not.
func (l *Leader) confirm(ctx context.Context) bool {
	if !l.Is() {
		return false
	}
	lead, err := l.renew(ctx)
	if err != nil && l.log != nil {
		l.log.Warn("check the lead lock", "err", err)
	}
	return lead
}

// Store returns st recording verdict changes only while l leads.
func (l *Leader) Store(st engine.Store) engine.Store { return leaderStore{st, l} }

// Alerter returns a firing alerts only while l leads.
func (l *Leader) Alerter(a engine.Alerter) engine.Alerter { return leaderAlerter{a, l} }

type leaderStore struct {
	engine.Store
	l *Leader
}

func (s leaderStore) AppendVerdicts(ctx context.Context, changes []store.VerdictChange) error {
	if len(changes) == 0 || !s.l.confirm(ctx) {
		return nil
	}
	return s.Store.AppendVerdicts(ctx, changes)
}

type leaderAlerter struct {
	engine.Alerter
	l *Leader
}

// confirmTimeout bounds the check of the lead lock before an alert,
// which Fire has no context for.
const confirmTimeout = 5 * time.Second

func (a leaderAlerter) Fire(al detect.Alert) {
	if a.Alerter == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
	defer cancel()
	if a.l.confirm(ctx) {
		a.Alerter.Fire(al)
	}
}
