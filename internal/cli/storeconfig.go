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

// storeAccess is how a command opens the store.
type storeAccess int

const (
	// storeServe is evident serve's: SQLite's lock on the directory,
	// the schema migrated.
	storeServe storeAccess = iota
	// storeCreate is token create's: beside the evident serve that may
	// hold the store (sqlite.OpenShared), the schema migrated, the store
	// made when there is none (tokens may come before the first serve).
	storeCreate
	// storeWrite is token revoke's: as storeCreate, of an existing store.
	storeWrite
	// storeRead is token list's and audit verify's: beside serve, the
	// schema read as it is, never migrated (sqlite and postgres
	// OpenReader), so that the new binary's read of the store of an old
	// serve leaves it as it was.
	storeRead
)

// openStore opens the store of cfg: SQLite's under dataDir, or the
// PostgreSQL database, as access says. PostgreSQL is always shared.
// warn is told when the SQLite database's files let others than their
// owner in (sqlite.Store.CheckMode), and when opening it cut an
// unacknowledged commit off the end of its log (sqlite.Store.TailCut).
func openStore(ctx context.Context, dataDir string, cfg storeConfig, access storeAccess, warn func(error)) (servedStore, error) {
	// A failed Open returns a nil interface, not a nil *Store in one.
	if cfg.Backend == backendPostgres {
		open := postgres.Open
		if access == storeRead {
			open = postgres.OpenReader
		}
		st, err := open(ctx, cfg.Postgres)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	open := sqlite.Open
	switch access {
	case storeCreate, storeWrite:
		open = sqlite.OpenShared
	case storeRead:
		open = sqlite.OpenReader
	}
	st, err := open(ctx, filepath.Join(dataDir, "store"), cfg.Config)
	if err != nil {
		return nil, err
	}
	for _, err := range []error{st.CheckMode(), st.TailCut()} {
		if err != nil {
			warn(err)
		}
	}
	return st, nil
}
