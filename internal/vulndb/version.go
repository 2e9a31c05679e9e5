package vulndb

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/google/osv-scalibr/semantic"
)

// Go pseudo-modules of the Go vulnerability database.
const (
	goStdlib    = "stdlib"
	goToolchain = "toolchain"
)

// ordering says how the versions of a range are compared.
type ordering uint8

const (
	// bySemver orders by SemVer 2.0 (SEMVER ranges).
	bySemver ordering = iota
	// byEcosystem orders by the ecosystem's rules (ECOSYSTEM ranges).
	byEcosystem
)

// pkgKey identifies an OSV package in the index.
type pkgKey struct{ eco, name string }

// bound is a parsed range event version.
type bound struct {
	v   semantic.Version
	raw string
}

// interval is one affected stretch of a range: from lo (nil: the first
// version) up to hi (nil: no end), hi included when hiIncl (last_affected).
type interval struct {
	lo, hi *bound
	hiIncl bool
}

// compiledRange is an OSV range with its bounds parsed and its events
// folded into intervals, so that a lookup only compares.
type compiledRange struct {
	ord       ordering
	intervals []interval
	// limits are the range's limit events; empty means no limit.
	limits []bound
	// fixes are the fixed events, for FixedVersion.
	fixes []bound
}

// affected is one affected entry of a record, ready for lookups.
type affected struct {
	vuln      *Vuln
	eco, name string
	// index is the entry's place in the record's affected[].
	index int
	// ranges hold the SEMVER and ECOSYSTEM ranges that could be ordered.
	ranges []compiledRange
	// versions are the exact versions[] entries, as written.
	versions map[string]struct{}
	// ordered are the versions[] entries parsed in the ecosystem's
	// ordering, sorted, so that "1.0" finds "1.0.0" in PyPI; nil when the
	// ecosystem has no ordering.
	ordered []bound
}

// lookup is a version being matched, parsed at most once per ordering.
type lookup struct {
	eco string
	// raw is the version as given; version is its OSV form (Go prefixes
	// removed).
	raw, version string
	// prefix is the Go prefix ("v" or "go") that raw carried.
	prefix string
	done   [2]bool
	vers   [2]semantic.Version
}

func newLookup(eco, name, version string) *lookup {
	lv := &lookup{eco: eco, raw: version, version: version}
	if eco == osv.EcosystemGo {
		lv.version, lv.prefix = normalizeGo(name, version)
	}
	return lv
}

// parsed returns the version in ord, or nil when it cannot be parsed.
func (lv *lookup) parsed(ord ordering) semantic.Version {
	if !lv.done[ord] {
		lv.done[ord] = true
		v, err := parseVersion(ord, lv.eco, lv.version)
		if err == nil {
			lv.vers[ord] = v
		}
	}
	return lv.vers[ord]
}

// errNoOrdering marks an ecosystem whose versions cannot be ordered.
var errNoOrdering = errors.New("no version ordering for this ecosystem")

// parseVersion parses s for ordering ord in ecosystem eco.
func parseVersion(ord ordering, eco, s string) (semantic.Version, error) {
	if s == "" {
		return nil, errors.New("empty version")
	}
	if ord == bySemver {
		return semantic.ParseSemverVersion(s), nil
	}
	v, err := semantic.Parse(s, eco)
	if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
		return nil, errNoOrdering
	}
	return v, err
}

// normalizeGo turns a Go module or toolchain version into OSV's form and
// returns the prefix it removed: "v1.2.3" → "1.2.3", "go1.21" → "1.21.0",
// "go1.21rc2" → "1.21.0-rc.2" (as golang.org/x/vuln's semver package does).
func normalizeGo(module, version string) (string, string) {
	switch {
	case module == goStdlib || module == goToolchain:
		// A toolchain's tag, with "go" (go1.21rc2) or with the "v" that
		// tools give it (v1.21rc2), or already SemVer (v1.21.0-rc.2).
		prefix := ""
		switch {
		case strings.HasPrefix(version, "go"):
			version, prefix = version[2:], "go"
		case strings.HasPrefix(version, "v"):
			version, prefix = version[1:], "v"
		}
		return goTagToSemver(version), prefix
	case strings.HasPrefix(version, "v"):
		return version[1:], "v"
	}
	return version, ""
}

// GoToolchainVersion is a Go toolchain's tag (go1.21rc2) as a Go module
// version in SemVer (v1.21.0-rc.2), as govulncheck writes the standard
// library's; any other version is returned as it is.
func GoToolchainVersion(tag string) string {
	if rest, ok := strings.CutPrefix(tag, "go"); ok && rest != "" {
		return "v" + goTagToSemver(rest)
	}
	return tag
}

// goTagToSemver converts a Go release tag without "go" to SemVer: 1.21 →
// 1.21.0, 1.21rc2 → 1.21.0-rc.2, 1.19beta1 → 1.19.0-beta.1. SemVer
// (1.21.0-rc.2) and anything else are returned as they are.
func goTagToSemver(tag string) string {
	if strings.Contains(tag, "-") {
		return tag
	}
	pre := ""
	for _, p := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(tag, p); i > 0 {
			tag, pre = tag[:i], "-"+p+"."+tag[i+len(p):]
			break
		}
	}
	switch strings.Count(tag, ".") {
	case 0:
		tag += ".0.0"
	case 1:
		tag += ".0"
	}
	return tag + pre
}

// compileRange parses a range's events and folds them into intervals.
// ok is false when the range cannot be ordered (GIT ranges, ecosystems
// without an ordering); err reports a version that does not parse.
func compileRange(eco string, r osv.Range) (cr compiledRange, ok bool, err error) {
	switch r.Type {
	case osv.RangeSemver:
		cr.ord = bySemver
	case osv.RangeEcosystem:
		cr.ord = byEcosystem
	default:
		return cr, false, nil
	}
	type event struct {
		kind string
		b    *bound // nil for introduced "0"
	}
	events := make([]event, 0, len(r.Events))
	for i, e := range r.Events {
		kind, val := eventKind(e)
		if kind == "limit" && strings.Contains(val, "*") {
			// "*" is infinity: the range has no limit after all.
			cr.limits = append(cr.limits, bound{raw: "*"})
			continue
		}
		if kind == "introduced" && val == "0" {
			events = append(events, event{kind: kind})
			continue
		}
		v, err := parseVersion(cr.ord, eco, val)
		if errors.Is(err, errNoOrdering) {
			return cr, false, nil
		}
		if err != nil {
			return cr, false, fmt.Errorf("events[%d]: %s %q: %w", i, kind, val, err)
		}
		b := &bound{v: v, raw: val}
		switch kind {
		case "limit":
			cr.limits = append(cr.limits, *b)
		case "fixed":
			cr.fixes = append(cr.fixes, *b)
			fallthrough
		default:
			events = append(events, event{kind: kind, b: b})
		}
	}
	if slices.ContainsFunc(cr.limits, func(b bound) bool { return b.raw == "*" }) {
		cr.limits = nil
	}
	slices.SortStableFunc(events, func(a, b event) int {
		switch {
		case a.b == nil && b.b == nil:
			return 0
		case a.b == nil:
			return -1
		case b.b == nil:
			return 1
		}
		c, _ := a.b.v.Compare(b.b.v)
		return c
	})
	var open *interval
	for _, e := range events {
		switch e.kind {
		case "introduced":
			if open == nil {
				open = &interval{lo: e.b}
			}
		case "fixed", "last_affected":
			if open != nil {
				open.hi, open.hiIncl = e.b, e.kind == "last_affected"
				cr.intervals = append(cr.intervals, *open)
				open = nil
			}
		}
	}
	if open != nil {
		cr.intervals = append(cr.intervals, *open)
	}
	return cr, true, nil
}

// eventKind returns the one key an event sets and its value; kind is ""
// when none is set.
func eventKind(e osv.Event) (kind, val string) {
	switch {
	case e.Introduced != "":
		return "introduced", e.Introduced
	case e.Fixed != "":
		return "fixed", e.Fixed
	case e.LastAffected != "":
		return "last_affected", e.LastAffected
	case e.Limit != "":
		return "limit", e.Limit
	}
	return "", ""
}

// canonicalEcosystem returns the OSV spelling of a known ecosystem name
// given in any case ("pypi" → "PyPI"); other names are returned as given.
func canonicalEcosystem(eco string) string {
	for _, known := range []string{
		osv.EcosystemGo, osv.EcosystemNPM, osv.EcosystemPyPI, osv.EcosystemMaven,
		osv.EcosystemNuGet, osv.EcosystemRubyGems, osv.EcosystemCratesIO,
		osv.EcosystemPackagist, osv.EcosystemHex, osv.EcosystemPub,
	} {
		if strings.EqualFold(eco, known) {
			return known
		}
	}
	return eco
}

// normName normalises a package name for the index: PEP 503 for PyPI;
// NuGet and Packagist names are case-insensitive.
func normName(eco, name string) string {
	switch eco {
	case osv.EcosystemPyPI:
		return osv.NormalizePyPI(name)
	case osv.EcosystemNuGet, osv.EcosystemPackagist:
		return strings.ToLower(name)
	}
	return name
}
