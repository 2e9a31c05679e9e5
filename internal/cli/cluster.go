package cli

import (
	"errors"
	"fmt"

	"github.com/evidentsec/evident/internal/cluster"
	"github.com/evidentsec/evident/internal/ingest/kafka"
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
