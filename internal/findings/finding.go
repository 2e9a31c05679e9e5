// Package findings turns scanner reports and SBOMs into one normalized
// finding model: a vulnerability in a package version of a service, with
// every tool that reported it.
package findings

import "github.com/evidentsec/evident/internal/vulndb"

// Finding is one vulnerability in one package version of one service. The
// same (service, package, vulnerability) reported by several tools is one
// Finding with several Sources.
type Finding struct {
	// Service is the service the scanned artifact belongs to; empty when
	// the input did not say and the caller did not assign one.
	Service string `json:"service,omitempty"`
	// Package is the affected package version.
	Package Package `json:"package"`
	// Vulnerability identifies the vulnerability.
	Vulnerability Vulnerability `json:"vulnerability"`
	// Severity is the highest severity any source or record gave.
	Severity Severity `json:"severity"`
	// FixedVersion is the lowest version that fixes it, when known.
	FixedVersion string `json:"fixed_version,omitempty"`
	// Static is what static analysis said about reachability, the
	// strongest claim of all sources.
	Static StaticReach `json:"static,omitempty"`
	// Symbols are the vulnerable symbols that static analysis found
	// called ("pkgpath.Func", "pkgpath.Recv.Method"), when it did.
	Symbols []string `json:"symbols,omitempty"`
	// Sources are the tools and files that reported the finding.
	Sources []Source `json:"sources"`
}

// Package is a package version, identified by its package URL.
type Package struct {
	PURL      string `json:"purl"`
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
}

// Vulnerability names a vulnerability by its primary id and aliases.
type Vulnerability struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
}

// Severity is a qualitative level with the score and vector behind it.
type Severity struct {
	// Level is critical, high, medium, low or unknown.
	Level string `json:"level"`
	// Score is the CVSS base score, 0 when unknown.
	Score float64 `json:"score,omitempty"`
	// Vector is the CVSS vector the score came from, if any.
	Vector string `json:"vector,omitempty"`
	// Source is the id of the vulnerability record the severity was read
	// from when evident took it from its database: the finding's own
	// record, or an alias record (a GHSA record's CVSS for a GO record
	// that carries none). Empty when a scanner report stated it.
	Source string `json:"source,omitempty"`
}

// DBSeverity converts a severity of the vulnerability database.
func DBSeverity(s vulndb.Severity) Severity {
	level := s.Level
	if level == "" {
		level = LevelUnknown
	}
	return Severity{Level: level, Score: s.Score, Vector: s.Vector, Source: s.Source}
}

// StaticReach is the reachability that a static tool established.
type StaticReach string

// Static reachability levels, weakest first.
const (
	StaticUnknown  StaticReach = ""
	StaticRequired StaticReach = "required" // the module is in the build, its packages may not be imported
	StaticImported StaticReach = "imported" // a vulnerable package is imported, no vulnerable symbol is called
	StaticCalled   StaticReach = "called"   // a vulnerable symbol is called
)

// Source is one tool report that contributed to a finding.
type Source struct {
	// Tool is the reporting tool: govulncheck, trivy, grype, osv-scanner,
	// cyclonedx, spdx, gobinary (the last three matched by evident).
	Tool string `json:"tool"`
	// File is the report the finding came from.
	File string `json:"file,omitempty"`
}
