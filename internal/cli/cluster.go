package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/cluster"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/ingest/kafka"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	tenantpkg "github.com/evidentsec/evident/internal/tenant"
)

// The roles of evident serve (--role): all is the single process; the
// others are the parts of the scaled-out deployment (docs/scaling.md).
const (
	roleAll      = "all"
	roleReceiver = "receiver"
	roleEngine   = "engine"
	roleAPI      = "api"
)

// clusterConfig is the configuration file's cluster section: the Kafka
// ingest log between receivers and engines, and the engines' and API
// replicas' settings. Only the roles other than all read it.
type clusterConfig struct {
	// Kafka is the ingest log; its brokers have no default, so that a
	// receiver or engine without them is refused rather than sent to
	// localhost.
	Kafka          kafka.Config `yaml:"kafka"`
	cluster.Config `yaml:",inline"`
}

func defaultClusterConfig() clusterConfig {
	k := kafka.DefaultConfig()
	k.Brokers = nil
	return clusterConfig{Kafka: k, Config: cluster.DefaultConfig()}
}

// validateRole reports a role evident serve does not know and what the
// role needs that cfg does not give: every role but all shares its state
// through PostgreSQL, receivers and engines meet in Kafka, and a receiver
// needs something to receive.
func validateRole(role string, cfg fileConfig) error {
	sc, cc := cfg.Serve, cfg.Cluster
	switch role {
	case roleAll:
		return nil
	case roleReceiver, roleEngine, roleAPI:
	default:
		return fmt.Errorf("--role %q is not one of %s, %s, %s, %s", role, roleAll, roleReceiver, roleEngine, roleAPI)
	}
	var errs []error
	if sc.Store.Backend != backendPostgres {
		errs = append(errs, fmt.Errorf("--role %s needs serve.store.backend %q (the state every replica shares), not %q", role, backendPostgres, sc.Store.Backend))
	}
	if role == roleReceiver || role == roleEngine {
		if len(cc.Kafka.Brokers) == 0 {
			errs = append(errs, fmt.Errorf("--role %s needs cluster.kafka.brokers (the ingest log between receivers and engines)", role))
		} else if err := cc.Kafka.Validate(); err != nil {
			errs = append(errs, eachPrefixed("cluster kafka", err))
		}
	}
	if role == roleEngine || role == roleAPI {
		if err := cc.Config.Validate(); err != nil {
			errs = append(errs, eachPrefixed("cluster", err))
		}
	}
	if role == roleReceiver && !sc.ingests() {
		errs = append(errs, errors.New("--role receiver needs a listener (serve.otlp, serve.pyroscope) or a source (serve.sources)"))
	}
	if role != roleReceiver && (sc.Sources.Tempo != "" || sc.Sources.Pyroscope != "") {
		errs = append(errs, fmt.Errorf("--role %s polls no sources: serve.sources belongs to the receivers", role))
	}
	return errors.Join(errs...)
}

// cluster builds the parts of the scaled-out roles: an engine's reader
// of the ingest log and its shards, an API replica's merged view. The
// receiver's producer is built with the receivers.
func (s *server) cluster(ctx context.Context, cfg fileConfig, pg *postgres.Store, vulns assess.Vulns, red *redact.Redactor, attributorOf func([]findings.Finding) *attribution.Attributor, reg prometheus.Registerer) error {
	cc, sc := cfg.Cluster, cfg.Serve
	log := s.log.With("component", "cluster")
	if s.role == roleReceiver || s.role == roleEngine {
		if err := kafka.EnsureTopic(ctx, cc.Kafka, log); err != nil {
			// The brokers may come later: receivers answer 503 and
			// engines wait until then.
			log.Warn("ensure the topic of the ingest log", "err", err)
		}
	}
	var err error
	switch s.role {
	case roleEngine:
		var a *cluster.Applier
		a, err = cluster.NewApplier(cc.Config, cluster.ApplierDeps{
			Store: pg,
			NewShard: func(tenant string) (cluster.Shard, error) {
				// The tenant's unit holds its store view and alert
				// router; the shard's engine is its own.
				u, err := s.tenants.Get(context.Background(), tenant)
				if errors.Is(err, tenantpkg.ErrTooManyTenants) || errors.Is(err, store.ErrInvalid) {
					// Until max_tenants is raised: the reader stops the
					// record's partition rather than retry it for ever.
					return cluster.Shard{}, pipeline.Permanent(err)
				}
				if err != nil {
					return cluster.Shard{}, err
				}
				m := model.New(sc.modelConfig(), attributorOf(nil))
				eng, err := engine.New(sc.Engine, engine.Deps{
					Store: u.store, Model: m, Attribution: attributorOf, Vulns: vulns, Assess: cfg.Config, Alerter: u.router, Redactor: red,
					Logger: log.With("tenant", tenant),
				})
				return cluster.Shard{Engine: eng, Model: m}, err
			},
			Findings: func(ctx context.Context, tenant string) ([]findings.Finding, error) {
				st, err := pg.ForTenant(tenant)
				if err != nil {
					return nil, err
				}
				return st.Findings(ctx)
			},
			SeedAlerts: func(ctx context.Context, tenant string) error {
				// NewShard made the unit; a unit started under ctx, which
				// ends with the call, would stop with it.
				u, err := s.tenants.Get(context.Background(), tenant)
				if err != nil {
					return err
				}
				return u.router.Seed(ctx, u.alerts)
			},
			Logger: log,
		})
		if err == nil {
			s.reader, err = kafka.NewReader(cc.Kafka, a, cc.CheckpointInterval, s.log.With("component", "kafka"), reg)
		}
	case roleAPI:
		s.view, err = cluster.NewView(cc.Config, cluster.ViewDeps{
			Versions: pg.ViewVersions,
			Read: func(ctx context.Context, tenant string) ([][]byte, model.Joins, error) {
				st, err := pg.ForTenant(tenant)
				if err != nil {
					return nil, model.Joins{}, err
				}
				return st.View(ctx)
			},
			Engine: func(ctx context.Context, tenant string) (*engine.Engine, error) {
				u, err := s.tenants.Get(ctx, tenant)
				if err != nil {
					return nil, err
				}
				return u.eng, nil
			},
			FindingsVersions: pg.FindingsVersions,
			Engines: func() map[string]*engine.Engine {
				engs := make(map[string]*engine.Engine)
				for tenant, u := range s.tenants.Units() {
					engs[tenant] = u.eng
				}
				return engs
			},
			Lead: func(ctx context.Context) (bool, error) { return pg.TryLock(ctx, "evident lead ") },
			// A tenant built later reads the store when it starts.
			SeedAlerts: func(ctx context.Context) error {
				var errs []error
				for tenant, u := range s.tenants.Units() {
					if err := u.router.Seed(ctx, u.alerts); err != nil {
						errs = append(errs, fmt.Errorf("tenant %s: %w", tenant, err))
					}
				}
				return errors.Join(errs...)
			},
			Leader: &s.leader, Logger: log,
		})
	}
	return err
}
