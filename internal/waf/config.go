package waf

import (
	"errors"
	"fmt"

	"github.com/evidentsec/evident/internal/knowledge"
)

// Rule ids: patches take blocks of idBlock ids from [Config.IDBase,
// Config.IDBase+Config.IDSpan). Within a block, the first scopeIDs ids
// are the scope rules, the next detectIDs the class detections (the last
// hostIDs+bodyIDs of them the host rule and the body processor rules), the
// rest but the last
// pluginIDs the rules learned from traffic; the last pluginIDs of a
// service's first block are its CRS plugin switches.
const (
	idBlock   = 100
	scopeIDs  = 10
	detectIDs = 20
	hostIDs   = 1
	bodyIDs   = 2
	pluginIDs = 2
)

// Config tunes patch generation.
type Config struct {
	// IDBase is the first rule id evident uses; IDSpan how many follow.
	// The default range is 4,900,000–4,999,999 (docs/waf.md).
	IDBase, IDSpan int
	// LengthMargin multiplies the longest value seen in traffic to give
	// a length limit: 2 allows values twice as long as any seen.
	LengthMargin float64
	// MinLength is the smallest length limit set, so that a parameter
	// seen only short (or empty) still has room.
	MinLength int
	// MinBodyLength is the smallest request body limit learned from
	// traffic, so that an endpoint seen only with small bodies still has
	// room.
	MinBodyLength int64
	// DefaultArgLength limits arguments of endpoints without traffic.
	DefaultArgLength int
	// MinRequests is how many requests an endpoint needs in the traces
	// before evident trusts its parameter names as an allow-list.
	MinRequests int
	// ReplayPerEndpoint caps the distinct legitimate requests kept per
	// endpoint for replay (0: all).
	ReplayPerEndpoint int
	// MaxEndpoints caps the endpoints one patch is scoped to; a finding
	// reached through more is scoped to the busiest ones.
	MaxEndpoints int
	// HostScope leaves out of each patch the requests sent to a host the
	// traces show only other services serving (server.address, the host
	// of url.full or a captured Host header), when they show the
	// service's own. It is for a WAF in front of something that routes
	// requests by their Host: one that routes by path sends a request
	// naming another service's host to the patched service all the same,
	// past its patch, so it is off by default (docs/waf.md, "Hosts").
	HostScope bool
	// Exploits is the exploit knowledge patches are built from; nil means
	// the knowledge evident ships (knowledge.DefaultExploits).
	Exploits *knowledge.Exploits
}

// DefaultConfig returns the defaults documented in docs/waf.md.
func DefaultConfig() Config {
	return Config{
		IDBase: 4_900_000, IDSpan: 100_000,
		LengthMargin: 2, MinLength: 32, MinBodyLength: 4096, DefaultArgLength: 4096,
		MinRequests: 10, ReplayPerEndpoint: 500, MaxEndpoints: scopeIDs,
	}
}

// ErrConfig means a Config value is out of range.
var ErrConfig = errors.New("invalid waf config")

// Validate checks that c can generate rules.
func (c Config) Validate() error {
	var errs []error
	if c.IDBase < 1 || c.IDSpan < idBlock || c.IDSpan%idBlock != 0 {
		errs = append(errs, fmt.Errorf("%w: ids [%d, %d) must be positive and a multiple of %d long", ErrConfig, c.IDBase, c.IDBase+c.IDSpan, idBlock))
	}
	if c.LengthMargin < 1 {
		errs = append(errs, fmt.Errorf("%w: length margin %g is below 1", ErrConfig, c.LengthMargin))
	}
	if c.MinLength < 1 || c.DefaultArgLength < c.MinLength {
		errs = append(errs, fmt.Errorf("%w: min length %d and default argument length %d must be positive and ordered", ErrConfig, c.MinLength, c.DefaultArgLength))
	}
	if c.MinBodyLength < 1 {
		errs = append(errs, fmt.Errorf("%w: min body length %d is below 1", ErrConfig, c.MinBodyLength))
	}
	if c.MinRequests < 1 {
		errs = append(errs, fmt.Errorf("%w: min requests %d is below 1", ErrConfig, c.MinRequests))
	}
	if c.ReplayPerEndpoint < 0 {
		errs = append(errs, fmt.Errorf("%w: replay per endpoint %d is negative", ErrConfig, c.ReplayPerEndpoint))
	}
	if c.MaxEndpoints < 1 || c.MaxEndpoints > scopeIDs {
		errs = append(errs, fmt.Errorf("%w: max endpoints %d is outside 1..%d", ErrConfig, c.MaxEndpoints, scopeIDs))
	}
	return errors.Join(errs...)
}
