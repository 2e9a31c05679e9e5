// Package tenant keeps one isolated unit of state per tenant of evident
// serve (docs/security.md, "Tenants"): a Registry creates the unit of a
// tenant (its engine, alert router and store view) when the tenant is
// first written to, bounded by Config.MaxTenants, and limits each
// tenant's ingest with its own token bucket. A read creates no tenant
// (Registry.Lookup): anyone who may read must not use up MaxTenants.
//
// The tenant of a request is decided by the listener's guard
// (auth.TenantFromContext); Route sends each batch to its tenant's unit,
// so no tenant's telemetry reaches another's model.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/store"
)

// Config bounds the tenants and their ingest.
type Config struct {
	// MaxTenants is the most tenants with a unit at once; a request of a
	// tenant beyond it is refused. Each unit holds a runtime model in
	// memory.
	MaxTenants int `yaml:"max_tenants"`
	// IngestRate is the records (spans and profiles) per second each
	// tenant may send, on average; zero does not limit.
	IngestRate float64 `yaml:"ingest_rate"`
	// IngestBurst is the most records a tenant may send at once, above
	// the rate; a batch larger than it is always refused.
	IngestBurst int `yaml:"ingest_burst"`
}

// DefaultConfig allows 100 tenants and does not limit their ingest.
func DefaultConfig() Config {
	return Config{MaxTenants: 100}
}

// Validate reports a setting outside its range.
func (c Config) Validate() error {
	var errs []error
	if c.MaxTenants < 1 {
		errs = append(errs, fmt.Errorf("tenants max_tenants %d is under 1", c.MaxTenants))
	}
	if c.IngestRate < 0 {
		errs = append(errs, fmt.Errorf("tenants ingest_rate %v is negative", c.IngestRate))
	}
	if c.IngestRate > 0 && c.IngestBurst < 1 {
		errs = append(errs, fmt.Errorf("tenants ingest_burst %d is under 1 with an ingest_rate", c.IngestBurst))
	}
	return errors.Join(errs...)
}

// ErrTooManyTenants is returned for a tenant beyond Config.MaxTenants.
var ErrTooManyTenants = errors.New("too many tenants")

// Factory builds the unit of a tenant; the Registry starts it.
type Factory[U pipeline.Component] func(ctx context.Context, tenant string) (U, error)

// Stored reports whether the store holds state of tenant (a unit built
// for it would restore some), for Registry.Lookup.
type Stored func(ctx context.Context, tenant string) (bool, error)

// entry is a tenant's unit and its ingest limiter.
type entry[U pipeline.Component] struct {
	unit U
	lim  *rate.Limiter // nil: no limit
}

// Registry holds the unit of each tenant seen so far. It is a
// pipeline.Component: Start creates the default tenant's unit, Shutdown
// stops every unit; it is safe for concurrent use.
type Registry[U pipeline.Component] struct {
	cfg     Config
	factory Factory[U]
	stored  Stored
	log     *slog.Logger
	now     func() time.Time

	refused  *prometheus.CounterVec
	accepted *prometheus.CounterVec
	tenants  prometheus.GaugeFunc

	// create serialises the building of units, so two first requests of
	// a tenant make one unit, without holding mu: the requests of the
	// other tenants go on while a new one restores its state.
	create sync.Mutex
	// mu guards units and stopped.
	mu      sync.Mutex
	units   map[string]*entry[U]
	stopped bool
}

var _ pipeline.Component = (*Registry[pipeline.Component])(nil)

// New returns a registry that builds units with factory and asks stored
// (required) whether a tenant read without a unit has state to restore.
// reg, when set, gets the metrics; log defaults to discarding.
func New[U pipeline.Component](cfg Config, factory Factory[U], stored Stored, log *slog.Logger, reg prometheus.Registerer) (*Registry[U], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if factory == nil || stored == nil {
		return nil, errors.New("tenants: a factory and a stored function are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry[U]{cfg: cfg, factory: factory, stored: stored, log: log, now: time.Now, units: map[string]*entry[U]{}}
	r.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_tenant_ingest_refused_records_total",
		Help: "Records refused because their tenant was over its ingest rate, by tenant.",
	}, []string{"tenant"})
	r.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_tenant_ingest_records_total",
		Help: "Records admitted for ingest, by tenant.",
	}, []string{"tenant"})
	r.tenants = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "evident_tenants",
		Help: "Tenants with a unit in memory.",
	}, func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(len(r.units))
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{r.refused, r.accepted, r.tenants} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register tenant metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Start creates and starts the default tenant's unit, so a deployment
// without tenants is restored before its receivers start, as before.
func (r *Registry[U]) Start(ctx context.Context) error {
	_, err := r.Get(ctx, store.DefaultTenant)
	return err
}

// Get returns the unit of tenant for a write, building and starting it
// the first time (which restores its state from the store). A tenant ID
// that fails store.ValidateTenant is store.ErrInvalid; a new tenant
// beyond MaxTenants is ErrTooManyTenants.
func (r *Registry[U]) Get(ctx context.Context, tenant string) (U, error) {
	e, err := r.entry(ctx, tenant)
	if err != nil {
		var zero U
		return zero, err
	}
	return e.unit, nil
}

// Lookup returns the unit of tenant for a read, which creates no tenant:
// the unit in memory, or, when the store holds state of the tenant (it
// was created before a restart: units are built when first used), the
// unit built and restored as Get does, within MaxTenants. For a tenant
// with neither, ok is false and nothing is built: no unit, no place
// among MaxTenants, no log line; the caller answers as a new tenant's
// empty state would. Errors are Get's, and the store's.
func (r *Registry[U]) Lookup(ctx context.Context, tenant string) (u U, ok bool, err error) {
	r.mu.Lock()
	e := r.units[tenant]
	r.mu.Unlock()
	if e == nil {
		if err := store.ValidateTenant(tenant); err != nil {
			return u, false, err
		}
		held, err := r.stored(ctx, tenant)
		if err != nil {
			return u, false, fmt.Errorf("look up tenant %q: %w", tenant, err)
		}
		if !held {
			return u, false, nil
		}
		if e, err = r.entry(ctx, tenant); err != nil {
			return u, false, err
		}
	}
	return e.unit, true, nil
}

// Units returns the units in memory by tenant. A unit built after it
// returns is not among them.
func (r *Registry[U]) Units() map[string]U {
	r.mu.Lock()
	defer r.mu.Unlock()
	units := make(map[string]U, len(r.units))
	for id, e := range r.units {
		units[id] = e.unit
	}
	return units
}

func (r *Registry[U]) entry(ctx context.Context, tenant string) (*entry[U], error) {
	if e, err := r.lookup(tenant); e != nil || err != nil {
		return e, err
	}
	r.create.Lock()
	defer r.create.Unlock()
	if e, err := r.lookup(tenant); e != nil || err != nil {
		return e, err
	}
	u, err := r.factory(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("create tenant %q: %w", tenant, err)
	}
	if err := u.Start(ctx); err != nil {
		_ = u.Shutdown(ctx) // the start error is the one to report
		return nil, fmt.Errorf("start tenant %q: %w", tenant, err)
	}
	e := &entry[U]{unit: u}
	if r.cfg.IngestRate > 0 {
		e.lim = rate.NewLimiter(rate.Limit(r.cfg.IngestRate), r.cfg.IngestBurst)
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		_ = u.Shutdown(ctx) // shut down while it started: nobody else will
		return nil, fmt.Errorf("tenant %q: the registry is shut down", tenant)
	}
	r.units[tenant] = e
	n := len(r.units)
	r.mu.Unlock()
	if tenant != store.DefaultTenant {
		r.log.Info("tenant created", "tenant", tenant, "tenants", n)
	}
	return e, nil
}

// lookup returns the entry of tenant; nil and nil when a new one may be
// created.
func (r *Registry[U]) lookup(tenant string) (*entry[U], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.units[tenant]; ok {
		return e, nil
	}
	if r.stopped {
		return nil, fmt.Errorf("tenant %q: the registry is shut down", tenant)
	}
	if err := store.ValidateTenant(tenant); err != nil {
		return nil, err
	}
	if len(r.units) >= r.cfg.MaxTenants {
		return nil, fmt.Errorf("%w: tenant %q would be one more than max_tenants %d", ErrTooManyTenants, tenant, r.cfg.MaxTenants)
	}
	return nil, nil
}

// Shutdown stops every unit, waiting for each until ctx ends.
func (r *Registry[U]) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopped = true
	units := maps.Clone(r.units)
	r.mu.Unlock()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(units)) {
		if err := units[id].unit.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// admit takes n records from the tenant's bucket, or refuses them with
// a *pipeline.FullError that says when the bucket will hold them; a batch
// larger than the burst can never be admitted and is refused for good.
func (r *Registry[U]) admit(tenant string, e *entry[U], n int) error {
	if e.lim == nil || n == 0 {
		r.accepted.WithLabelValues(tenant).Add(float64(n))
		return nil
	}
	now := r.now()
	res := e.lim.ReserveN(now, n)
	if !res.OK() {
		r.refused.WithLabelValues(tenant).Add(float64(n))
		return pipeline.Permanent(fmt.Errorf("tenant %q: a batch of %d records is larger than the ingest burst of %d", tenant, n, e.lim.Burst()))
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		r.refused.WithLabelValues(tenant).Add(float64(n))
		return &pipeline.FullError{RetryAfter: d, Reason: fmt.Sprintf("tenant %q is over its ingest rate of %v records/s", tenant, e.lim.Limit())}
	}
	r.accepted.WithLabelValues(tenant).Add(float64(n))
	return nil
}

// Route returns a consumer that sends each batch to the consumer of its
// tenant's unit (pick), the tenant being the one the listener's guard
// decided for the request (auth.TenantFromContext), after the tenant's
// ingest limit admitted its size records.
func Route[U pipeline.Component, D any](r *Registry[U], pick func(U) pipeline.Consumer[D], size func(D) int) pipeline.Consumer[D] {
	return pipeline.ConsumerFunc[D](func(ctx context.Context, data D) error {
		tenant := auth.TenantFromContext(ctx)
		e, err := r.entry(ctx, tenant)
		if err != nil {
			if errors.Is(err, ErrTooManyTenants) || errors.Is(err, store.ErrInvalid) {
				return pipeline.Permanent(err)
			}
			return err
		}
		if err := r.admit(tenant, e, size(data)); err != nil {
			return err
		}
		return pick(e.unit).Consume(ctx, data)
	})
}
