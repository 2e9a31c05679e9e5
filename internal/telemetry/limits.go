package telemetry

import (
	"errors"
	"fmt"
)

// Limits bound what decoding one profile may take, for profiles from
// clients that are not trusted: the memory a profile takes grows with its
// samples, locations and stack depth, and a small input can hold a great
// many of them. The zero value sets no limit, as for files the user
// chose; the size of the input is bounded in any case (MaxProfileSize).
type Limits struct {
	// MaxSamples bounds the samples of one profile; a profile with more
	// is refused (ErrTooLarge). 0: no limit.
	MaxSamples int `yaml:"max_samples"`
	// MaxLocations bounds the locations, and the functions, of one profile
	// (of one request's dictionary for OTLP); a profile with more is
	// refused (ErrTooLarge). 0: no limit.
	MaxLocations int `yaml:"max_locations"`
	// MaxStackDepth cuts deeper stacks to their innermost MaxStackDepth
	// locations, as Pyroscope does; the frames that ran are at the leaf
	// end. 0: no limit.
	MaxStackDepth int `yaml:"max_stack_depth"`
}

// ErrLimits marks invalid Limits.
var ErrLimits = errors.New("invalid profile limits")

// DefaultLimits are Pyroscope's per-profile limits (16,000 samples, stack
// depth 1,000; pkg/validation/limits.go) and 100,000 locations, well
// above what a CPU profile of a large service holds.
func DefaultLimits() Limits {
	return Limits{MaxSamples: 16000, MaxLocations: 100000, MaxStackDepth: 1000}
}

// Validate reports the first problem of l.
func (l Limits) Validate() error {
	switch {
	case l.MaxSamples < 0:
		return fmt.Errorf("%w: max_samples %d, want >= 0 (0: none)", ErrLimits, l.MaxSamples)
	case l.MaxLocations < 0:
		return fmt.Errorf("%w: max_locations %d, want >= 0 (0: none)", ErrLimits, l.MaxLocations)
	case l.MaxStackDepth < 0:
		return fmt.Errorf("%w: max_stack_depth %d, want >= 0 (0: none)", ErrLimits, l.MaxStackDepth)
	}
	return nil
}

// check refuses counts over the limits, naming the limit.
func (l Limits) check(source string, samples, locations, functions int) error {
	switch {
	case l.MaxSamples > 0 && samples > l.MaxSamples:
		return fmt.Errorf("decode %s: %d samples, over max_samples %d: %w", source, samples, l.MaxSamples, ErrTooLarge)
	case l.MaxLocations > 0 && locations > l.MaxLocations:
		return fmt.Errorf("decode %s: %d locations, over max_locations %d: %w", source, locations, l.MaxLocations, ErrTooLarge)
	case l.MaxLocations > 0 && functions > l.MaxLocations:
		return fmt.Errorf("decode %s: %d functions, over max_locations %d: %w", source, functions, l.MaxLocations, ErrTooLarge)
	}
	return nil
}

// maxStrings bounds the string table: a string per function name and
// file, and per label value of a sample (span ids), with room to spare.
// Without it, a table of empty strings, two bytes each on the wire,
// would take twenty times the input's size in memory.
func (l Limits) maxStrings() int {
	if l.MaxSamples == 0 || l.MaxLocations == 0 {
		return 0
	}
	return 4 * (l.MaxSamples + l.MaxLocations)
}

// depth cuts a stack to MaxStackDepth, keeping the leaf end.
func (l Limits) depth(locs []int32) []int32 {
	if l.MaxStackDepth > 0 && len(locs) > l.MaxStackDepth {
		return locs[:l.MaxStackDepth]
	}
	return locs
}
