package assess

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// Config is what a team tells evident about its own system: which stores
// hold sensitive data, which services are exposed whatever the traces
// say, and how much evidence a VEX not_affected statement needs.
type Config struct {
	// Sensitivity labels stores by glob over canonical store names
	// ("postgresql://shop/*", "sqlite://*/customers"); path.Match syntax,
	// where "*" does not cross a "/". A database system written with its
	// old db.system value ("mssql://shop/*") matches the current one too.
	Sensitivity []SensitivityRule `yaml:"sensitivity"`
	// Exposure overrides what traces show.
	Exposure ExposureConfig `yaml:"exposure"`
	// Reachability sets when telemetry is enough to say anything.
	Reachability ReachabilityConfig `yaml:"reachability"`
	// VEX is the policy for not_affected statements.
	VEX VEXPolicy `yaml:"vex"`
}

// SensitivityRule gives labels (pii, secrets, payments, ...) to the stores
// whose canonical name matches Store.
type SensitivityRule struct {
	Store  string   `yaml:"store"`
	Labels []string `yaml:"labels"`
}

// ExposureConfig overrides exposure.
type ExposureConfig struct {
	// Ingress lists services that front the internet (gateways, ingress
	// controllers): they are exposed, and so is every service they call
	// or that consumes from a messaging destination they produce to.
	Ingress []string `yaml:"ingress"`
	// Services sets the exposure of named services outright.
	Services map[string]Exposure `yaml:"services"`
}

// ReachabilityConfig sets the evidence needed for a verdict.
type ReachabilityConfig struct {
	// MinSamples is the fewest profile samples of a service for a
	// not_observed or loaded verdict; below it the verdict is unknown.
	MinSamples int64 `yaml:"min_samples"`
}

// VEXPolicy says when absence of evidence is enough for a VEX
// not_affected (vulnerable_code_not_in_execute_path) statement.
type VEXPolicy struct {
	// MaxShare is the largest rule-of-three bound accepted: 0.01 means
	// any code path using more than 1% of the service's CPU would have
	// been seen. Zero never emits not_affected.
	MaxShare float64 `yaml:"max_share"`
	// MinWindow is the shortest observation window accepted.
	MinWindow time.Duration `yaml:"min_window"`
	// AllowStaticCalled lets not_affected stand against a static tool
	// that found the vulnerable symbol called. Off by default: a call
	// path behind a flag that is off today may run tomorrow.
	AllowStaticCalled bool `yaml:"allow_static_called"`
	// AllowLoaded lets a loaded verdict (the vulnerable package's code
	// ran, its vulnerable functions were not seen) be not_affected when
	// the bound meets the policy. Off by default: the package's code
	// runs, and a vulnerable function that takes nanoseconds is rarely
	// sampled however often it runs, so the finding still needs
	// attention and stays under_investigation.
	AllowLoaded bool `yaml:"allow_loaded"`
}

// DefaultConfig returns the configuration used when none is given: no
// sensitivity labels, exposure from traces only, 30 samples for a
// verdict, and a VEX policy that needs a bound of 1% over an hour.
func DefaultConfig() Config {
	return Config{
		Reachability: ReachabilityConfig{MinSamples: 30},
		VEX:          VEXPolicy{MaxShare: 0.01, MinWindow: time.Hour},
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid assess configuration")

// Validate reports the first problem in c.
func (c Config) Validate() error {
	for i, r := range c.Sensitivity {
		if r.Store == "" {
			return fmt.Errorf("%w: sensitivity[%d]: store is empty", ErrInvalidConfig, i)
		}
		if _, err := path.Match(r.Store, ""); err != nil {
			return fmt.Errorf("%w: sensitivity[%d]: store %q: %v", ErrInvalidConfig, i, r.Store, err)
		}
		if len(r.Labels) == 0 {
			return fmt.Errorf("%w: sensitivity[%d]: store %q has no labels", ErrInvalidConfig, i, r.Store)
		}
	}
	for svc, e := range c.Exposure.Services {
		switch e {
		case Exposed, Internal, NoInput:
		default:
			return fmt.Errorf("%w: exposure.services.%s: %q is not one of exposed, internal, no_input", ErrInvalidConfig, svc, e)
		}
	}
	if c.Reachability.MinSamples < 0 {
		return fmt.Errorf("%w: reachability.min_samples: %d is negative", ErrInvalidConfig, c.Reachability.MinSamples)
	}
	if c.VEX.MaxShare < 0 || c.VEX.MaxShare > 1 {
		return fmt.Errorf("%w: vex.max_share: %v is not within [0, 1]", ErrInvalidConfig, c.VEX.MaxShare)
	}
	if c.VEX.MinWindow < 0 {
		return fmt.Errorf("%w: vex.min_window: %v is negative", ErrInvalidConfig, c.VEX.MinWindow)
	}
	return nil
}

// labels returns the sensitivity labels of a store, sorted, without
// duplicates.
func (c Config) labels(store string) []string {
	var out []string
	for _, r := range c.Sensitivity {
		if !matchStore(r.Store, store) {
			continue
		}
		for _, l := range r.Labels {
			out = appendUnique(out, l)
		}
	}
	return out
}

// matchStore reports whether a store's canonical name matches pattern,
// or pattern with its system renamed as currentDBPattern does.
func matchStore(pattern, store string) bool {
	if ok, _ := path.Match(pattern, store); ok {
		return true
	}
	if cur := currentDBPattern(pattern); cur != pattern {
		ok, _ := path.Match(cur, store)
		return ok
	}
	return false
}

// currentDBPattern returns a store pattern whose system is a db.system
// value that db.system.name renamed ("mssql://shop/*") with the current
// value ("microsoft.sql_server://shop/*"), as the spans name the store
// since 2026-12-07 (telemetry.DBSystemName); any other pattern as it is.
// A pattern written before keeps labelling the database it labelled.
func currentDBPattern(pattern string) string {
	sys, rest, ok := strings.Cut(pattern, "://")
	if !ok {
		return pattern
	}
	if cur := telemetry.DBSystemName(sys); cur != sys {
		return cur + "://" + rest
	}
	return pattern
}
