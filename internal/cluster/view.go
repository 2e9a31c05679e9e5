package cluster

import (
	"context"
	"fmt"
	"log/slog"
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
	// Tenants returns the tenants that have shards.
	Tenants func(ctx context.Context) ([]string, error)
	// Read returns the states of a tenant's shards and the joins of the
	// calls between them, read together.
	Read func(ctx context.Context, tenant string) ([][]byte, model.Joins, error)
	// Engine returns the running engine of a tenant's merged view.
	Engine func(ctx context.Context, tenant string) (*engine.Engine, error)
	// Lead tries to make this replica the one that records verdict
	// history and raises topology alerts, and reports whether it is.
	Lead func(ctx context.Context) (bool, error)
	// Leader is set to what Lead reports.
	Leader *Leader
	Logger *slog.Logger
}

// View rebuilds, every ViewInterval, each tenant's merged model from the
// shards the engines checkpointed and hands it to the tenant's engine,
// which assesses it as the single process does. It is a
// pipeline.Component.
type View struct {
	cfg  Config
	deps ViewDeps
	log  *slog.Logger
	loop pipeline.Loop
}

var _ pipeline.Component = (*View)(nil)

// NewView returns a view; it does nothing until Start.
func NewView(cfg Config, deps ViewDeps) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Tenants == nil || deps.Read == nil || deps.Engine == nil || deps.Lead == nil || deps.Leader == nil {
		return nil, fmt.Errorf("%w: every ViewDeps function and the Leader are required", ErrInvalidConfig)
	}
	v := &View{cfg: cfg, deps: deps, log: deps.Logger}
	if v.log == nil {
		v.log = slog.Default()
	}
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

// Sync rebuilds every tenant's view now.
func (v *View) Sync(ctx context.Context) error {
	lead, err := v.deps.Lead(ctx)
	if err != nil {
		return err
	}
	v.deps.Leader.lead.Store(lead)
	tenants, err := v.deps.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		states, joins, err := v.deps.Read(ctx, t)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t, err)
		}
		merged, err := model.MergeStates(joins, states...)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t, err)
		}
		eng, err := v.deps.Engine(ctx, t)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t, err)
		}
		if err := eng.Replace(ctx, merged); err != nil {
			return fmt.Errorf("tenant %s: %w", t, err)
		}
	}
	return nil
}

// Leader says whether this API replica is the one that records verdict
// history and raises topology alerts; the others assess the same view
// and keep quiet. The zero value is not the leader.
type Leader struct {
	lead atomic.Bool
}

// Is reports whether this replica leads.
func (l *Leader) Is() bool { return l.lead.Load() }

// Store returns st recording verdict changes only while l leads.
func (l *Leader) Store(st engine.Store) engine.Store { return leaderStore{st, l} }

// Alerter returns a firing alerts only while l leads.
func (l *Leader) Alerter(a engine.Alerter) engine.Alerter { return leaderAlerter{a, l} }

type leaderStore struct {
	engine.Store
	l *Leader
}

func (s leaderStore) AppendVerdicts(ctx context.Context, changes []store.VerdictChange) error {
	if !s.l.Is() {
		return nil
	}
	return s.Store.AppendVerdicts(ctx, changes)
}

type leaderAlerter struct {
	engine.Alerter
	l *Leader
}

func (a leaderAlerter) Fire(al detect.Alert) {
	if a.Alerter != nil && a.l.Is() {
		a.Alerter.Fire(al)
	}
}
