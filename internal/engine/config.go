package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/evidentsec/evident/internal/detect"
)

// Config tunes the engine.
type Config struct {
	// QueueSize is the number of accepted batches (of either signal)
	// waiting for the worker. When it is full, Consume refuses new
	// batches with a *pipeline.FullError before writing anything.
	QueueSize int `yaml:"queue_size"`
	// RetryAfter is the wait the FullError of a refused batch suggests.
	RetryAfter time.Duration `yaml:"retry_after"`
	// AssessInterval is the coalescing period of re-assessment: the
	// findings a batch touches are re-assessed, and the services new to
	// the model published in the View, at most this often and at most
	// this long after the batch.
	AssessInterval time.Duration `yaml:"assess_interval"`
	// RefreshInterval is how often every finding is re-assessed, to
	// bring sample counts and bounds up to date, with the View's model;
	// zero never does.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// CheckpointInterval is how often the model is checkpointed (and the
	// log up to it dropped).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Anomaly configures the per-endpoint anomaly and new-host
	// detections.
	Anomaly detect.AnomalyConfig `yaml:"anomaly"`
}

// DefaultConfig returns a queue of 1024 batches (at the OTel SDK's 512
// spans a batch, half a million spans), re-assessment every 200 ms, a full
// refresh every minute and a checkpoint every minute.
func DefaultConfig() Config {
	return Config{
		QueueSize: 1024, RetryAfter: time.Second,
		AssessInterval: 200 * time.Millisecond, RefreshInterval: time.Minute,
		CheckpointInterval: time.Minute, Anomaly: detect.DefaultAnomalyConfig(),
	}
}

// ErrInvalidConfig is wrapped by the errors of Validate.
var ErrInvalidConfig = errors.New("invalid engine configuration")

// Validate reports every problem in c.
func (c Config) Validate() error {
	var errs []error
	if c.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("%w: queue_size %d is below 1", ErrInvalidConfig, c.QueueSize))
	}
	if c.RetryAfter <= 0 {
		errs = append(errs, fmt.Errorf("%w: retry_after %v is not positive", ErrInvalidConfig, c.RetryAfter))
	}
	if c.AssessInterval <= 0 {
		errs = append(errs, fmt.Errorf("%w: assess_interval %v is not positive", ErrInvalidConfig, c.AssessInterval))
	}
	if c.RefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: refresh_interval %v is negative", ErrInvalidConfig, c.RefreshInterval))
	}
	if c.CheckpointInterval <= 0 {
		errs = append(errs, fmt.Errorf("%w: checkpoint_interval %v is not positive", ErrInvalidConfig, c.CheckpointInterval))
	}
	if err := c.Anomaly.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: anomaly: %w", ErrInvalidConfig, err))
	}
	return errors.Join(errs...)
}
