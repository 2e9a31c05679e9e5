package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// Store backends, the values of serve.store.backend.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
)

// storeConfig selects the backend of the store and configures it.
type storeConfig struct {
	// Backend is "sqlite" (the default: one process, the database under
	// --data) or "postgres" (one database every replica shares).
	Backend string `yaml:"backend"`
	// The SQLite settings sit beside backend, where they were before
	// there was a choice.
	sqlite.Config `yaml:",inline"`
	// Postgres is the database of the "postgres" backend.
	Postgres postgres.Config `yaml:"postgres"`
}

func defaultStoreConfig() storeConfig {
	return storeConfig{Backend: backendSQLite, Config: sqlite.DefaultConfig(), Postgres: postgres.DefaultConfig()}
}

// Validate reports an unknown backend and the problems of the chosen
// backend's settings; the other's are not used and not checked.
func (c storeConfig) Validate() error {
	switch c.Backend {
	case backendSQLite:
		return eachPrefixed("serve store", c.Config.Validate())
	case backendPostgres:
		return eachPrefixed("serve store postgres", c.Postgres.Validate())
	default:
		return fmt.Errorf("serve store backend %q is neither %q nor %q", c.Backend, backendSQLite, backendPostgres)
	}
}

// eachPrefixed prefixes each of the errors joined in err, so that every
// line of the message says which section it is about.
func eachPrefixed(prefix string, err error) error {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	var errs []error
	for _, e := range joined.Unwrap() {
		errs = append(errs, fmt.Errorf("%s: %w", prefix, e))
	}
	return errors.Join(errs...)
}

// servedStore is what evident serve needs of its store: the store, the
// watermarks of the polled sources, and the backend's metrics.
type servedStore interface {
	store.Store
	source.Watermarks
	// Collector returns the metrics of the database, registered once.
	Collector() prometheus.Collector
}

// openStore opens the store of cfg: SQLite's under dataDir, or the
// PostgreSQL database. shared opens SQLite beside the evident serve that
// may hold it (sqlite.OpenShared), for the token and audit commands;
// PostgreSQL is always shared. warn is told when the SQLite database's
// files let others than their owner in (sqlite.Store.CheckMode).
func openStore(ctx context.Context, dataDir string, cfg storeConfig, shared bool, warn func(error)) (servedStore, error) {
	// A failed Open returns a nil interface, not a nil *Store in one.
	if cfg.Backend == backendPostgres {
		st, err := postgres.Open(ctx, cfg.Postgres)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	open := sqlite.Open
	if shared {
		open = sqlite.OpenShared
	}
	st, err := open(ctx, filepath.Join(dataDir, "store"), cfg.Config)
	if err != nil {
		return nil, err
	}
	if err := st.CheckMode(); err != nil {
		warn(err)
	}
	return st, nil
}
