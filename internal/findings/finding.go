// Package findings turns scanner reports and SBOMs into one normalized
// finding model: a vulnerability in a package version of a service, with
// every tool that reported it.
package findings

import (
	"strings"

	"github.com/evidentsec/evident/internal/vulndb"
)

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
	// ScannerPURL is the package URL that Trivy and Syft (so Grype) give
	// the package, when it is not PURL: a PyPI name with a dot, which
	// PEP 503 makes a dash (ruamel.yaml is ruamel-yaml) where they keep
	// it, and which go-vex, through which both match VEX statements,
	// compares as written; a package of a distribution Trivy names
	// otherwise (pkg:rpm/alma, where Syft, so PURL, writes
	// pkg:rpm/almalinux); a Debian package with an epoch, which Syft
	// writes in the version and Trivy as the epoch qualifier. VEX
	// documents name the package by both.
	ScannerPURL string `json:"scanner_purl,omitempty"`
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
	// Artifact is what the tool scanned, as the report names it: the
	// image or directory (Trivy's ArtifactName, Grype's source), the
	// root package of a govulncheck scan (the path all roots share), the
	// subject of an SBOM (CycloneDX metadata.component, the SPDX
	// document name) or a Go executable's main package. Empty when the
	// report does not say.
	Artifact string `json:"artifact,omitempty"`
	// Match says how evident matched the package to the vulnerability
	// record when the record does not name it as the input does: a Maven
	// artifact published under other coordinates (bcprov-jdk15on for a
	// record of bcprov-jdk18on), with the reason and its references.
	// Empty when the record names the package itself or a tool matched.
	Match string `json:"match,omitempty"`
}

// withArtifact sets the artifact of the sources of findings that one
// report gave.
func withArtifact(fs []Finding, artifact string) []Finding {
	if artifact == "" {
		return fs
	}
	for _, f := range fs {
		for i := range f.Sources {
			f.Sources[i].Artifact = artifact
		}
	}
	return fs
}

// ServiceName is the name that a service running artifact (as
// Source.Artifact holds it) is likely to have: the last element of its
// path, without an image tag or digest, and skipping a Go major version
// suffix: "registry.example.com/shop/checkout:1.4.2" and
// "example.com/shop/cmd/checkout/v2" give "checkout". It returns "" when
// the artifact names nothing ("", ".", "/").
func ServiceName(artifact string) string {
	s, _, _ := strings.Cut(artifact, "@") // an image digest
	elems := strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' })
	if n := len(elems); n > 1 && isMajorVersion(elems[n-1]) {
		elems = elems[:n-1]
	}
	if len(elems) == 0 {
		return ""
	}
	name, _, _ := strings.Cut(elems[len(elems)-1], ":") // an image tag
	if name == "." || name == ".." {
		return ""
	}
	return name
}

// isMajorVersion reports whether a path element is a Go major version
// suffix (v2, v3, ...).
func isMajorVersion(elem string) bool {
	if len(elem) < 2 || elem[0] != 'v' || elem[1] == '0' {
		return false
	}
	for _, r := range elem[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
