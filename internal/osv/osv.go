// Package osv defines the Open Source Vulnerability (OSV) record format as
// evident reads it: the fields of the OSV schema 1.7 that matter for matching
// and prioritising, plus the Go vulnerability database's ecosystem_specific
// extension (imports and symbols).
//
// The structs only describe data; loading, validation and indexing live in
// vulndb.
package osv

import (
	"encoding/json"
	"time"
)

// Entry is one OSV vulnerability record.
type Entry struct {
	SchemaVersion    string          `json:"schema_version,omitempty"`
	ID               string          `json:"id"`
	Modified         time.Time       `json:"modified"`
	Published        time.Time       `json:"published,omitzero"`
	Withdrawn        time.Time       `json:"withdrawn,omitzero"`
	Aliases          []string        `json:"aliases,omitempty"`
	Related          []string        `json:"related,omitempty"`
	Upstream         []string        `json:"upstream,omitempty"`
	Summary          string          `json:"summary,omitempty"`
	Details          string          `json:"details,omitempty"`
	Severity         []Severity      `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected,omitempty"`
	References       []Reference     `json:"references,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Severity is one severity score of a record or of an affected package.
type Severity struct {
	// Type is CVSS_V2, CVSS_V3, CVSS_V4 or Ubuntu.
	Type string `json:"type"`
	// Score is the vector string for the CVSS types.
	Score string `json:"score"`
}

// Severity types defined by the OSV schema.
const (
	SeverityCVSSv2 = "CVSS_V2"
	SeverityCVSSv3 = "CVSS_V3"
	SeverityCVSSv4 = "CVSS_V4"
)

// Affected is one affected package with its version ranges.
type Affected struct {
	Package           Package            `json:"package"`
	Severity          []Severity         `json:"severity,omitempty"`
	Ranges            []Range            `json:"ranges,omitempty"`
	Versions          []string           `json:"versions,omitempty"`
	EcosystemSpecific *EcosystemSpecific `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  json.RawMessage    `json:"database_specific,omitempty"`
}

// Package identifies an affected package within an ecosystem.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range types defined by the OSV schema.
const (
	RangeSemver    = "SEMVER"
	RangeEcosystem = "ECOSYSTEM"
	RangeGit       = "GIT"
)

// Range is an ordered list of events that bound the affected versions.
type Range struct {
	Type   string  `json:"type"`
	Repo   string  `json:"repo,omitempty"`
	Events []Event `json:"events"`
}

// Event is one range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// EcosystemSpecific holds the per-package data that names affected code:
// the Go vulnerability database's import paths and symbols, and GitHub's
// affected_functions. Other data in this field is ignored.
type EcosystemSpecific struct {
	Imports []Import `json:"imports,omitempty"`
	// AffectedFunctions are the vulnerable functions as GitHub's advisory
	// database wrote them into its OSV exports until February 2025:
	// qualified names such as "lodash.baseSet" (npm, the package then the
	// function), "langchain.chains.PALChain" (PyPI, module then class or
	// function) or "org.example.Class.method" (Maven). Records of that time
	// also hold [""] when GitHub knew none.
	AffectedFunctions []string `json:"affected_functions,omitempty"`
}

// Import is one affected package (import path) of a Go module.
type Import struct {
	Path string `json:"path"`
	// GOOS and GOARCH restrict the vulnerability to these platforms when set.
	GOOS   []string `json:"goos,omitempty"`
	GOARCH []string `json:"goarch,omitempty"`
	// Symbols are functions as "Func" and methods as "Recv.Method" (no
	// pointer, no type parameters). When empty, the whole package is
	// affected.
	Symbols []string `json:"symbols,omitempty"`
}

// Reference is a link about the vulnerability.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}
