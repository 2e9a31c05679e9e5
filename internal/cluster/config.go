package cluster

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the scaled-out deployment's engines and API replicas; the
// Kafka connection is internal/ingest/kafka's Config and the shared store
// PostgreSQL's.
type Config struct {
	// CheckpointInterval is how often an engine checkpoints the shards
	// it owns to the store: the API's view lags the log by about this
	// much, and an engine that dies re-reads at most this much of it.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// JoinWindow is how long a CLIENT or PRODUCER span waits in the store
	// for the SERVER or CONSUMER spans it caused, on another engine, and
	// the other way round; past it, a SERVER or CONSUMER span counts as
	// called from outside the traced system (SpanCounts.Unlinked) and a
	// CLIENT span as a call to an untraced host, as one process counts
	// them past serve.model.join_window (30 s, at most twice that). It
	// adds the delay of the two sides' checkpoints to that window.
	JoinWindow time.Duration `yaml:"join_window"`
	// ViewInterval is how often an API replica rebuilds each tenant's
	// view from the shards' checkpoints.
	ViewInterval time.Duration `yaml:"view_interval"`
	// FindingsInterval is how often an engine checks the store for
	// findings uploaded through an API replica.
	FindingsInterval time.Duration `yaml:"findings_interval"`
}

// DefaultConfig checkpoints every 5 s, joins within 1 min, rebuilds
// views every 2 s and checks for new findings every 5 s.
func DefaultConfig() Config {
	return Config{
		CheckpointInterval: 5 * time.Second, JoinWindow: time.Minute,
		ViewInterval: 2 * time.Second, FindingsInterval: 5 * time.Second,
	}
}

// ErrInvalidConfig is wrapped by the errors of Validate.
var ErrInvalidConfig = errors.New("invalid cluster configuration")

// Validate reports every duration that is not positive, and a join
// window shorter than two checkpoints (the two sides of a call are
// checkpointed up to an interval apart).
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"checkpoint_interval", c.CheckpointInterval}, {"join_window", c.JoinWindow},
		{"view_interval", c.ViewInterval}, {"findings_interval", c.FindingsInterval},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%w: %s %v is not positive", ErrInvalidConfig, d.name, d.v))
		}
	}
	if c.CheckpointInterval > 0 && c.JoinWindow > 0 && c.JoinWindow < 2*c.CheckpointInterval {
		errs = append(errs, fmt.Errorf("%w: join_window %v is under two checkpoint_interval (%v)", ErrInvalidConfig, c.JoinWindow, 2*c.CheckpointInterval))
	}
	return errors.Join(errs...)
}
