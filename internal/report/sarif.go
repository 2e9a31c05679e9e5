package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/manifest"
	"github.com/evidentsec/evident/internal/osv"
)

// SARIF 2.1.0, the subset GitHub code scanning reads: one rule per
// vulnerability, one result per finding, located at the line of the
// manifest that declares the package (a vulnerable dependency has no line
// of its own), with the service and vulnerable functions as logical
// locations. GitHub rejects a whole upload if one result lacks a
// physical location, so every result has one.

const sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool               sarifTool                `json:"tool"`
	Language           string                   `json:"language"`
	NewlineSequences   []string                 `json:"newlineSequences"`
	OriginalURIBaseIDs map[string]sarifArtifact `json:"originalUriBaseIds"`
	Results            []sarifResult            `json:"results"`
	Properties         sarifRunProps            `json:"properties"`
}

// sarifRunProps is the run's property bag (SARIF 2.1.0 §3.8): its names
// are hierarchical strings, so evident's are under "evident/".
type sarifRunProps struct {
	// VulnDB is the JSON report's vulndb: whether the KEV catalog and
	// EPSS scores were loaded, which the results do not otherwise say.
	VulnDB JSONVulnDB `json:"evident/vulndb"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Language       string      `json:"language"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	ShortDescription sarifText      `json:"shortDescription"`
	FullDescription  sarifText      `json:"fullDescription"`
	HelpURI          string         `json:"helpUri"`
	Help             sarifMarkdown  `json:"help"`
	Properties       sarifRuleProps `json:"properties"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifMarkdown struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown"`
}

type sarifRuleProps struct {
	// SecuritySeverity is the CVSS score GitHub ranks alerts by.
	SecuritySeverity string   `json:"security-severity,omitempty"`
	Tags             []string `json:"tags"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          sarifResultProps   `json:"properties"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical  `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	// Region is absent when the file is known but not the line.
	Region *sarifRegion `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI         string     `json:"uri,omitempty"`
	URIBaseID   string     `json:"uriBaseId,omitempty"`
	Description *sarifText `json:"description,omitempty"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifResultProps struct {
	Service   string   `json:"service"`
	PURL      string   `json:"purl"`
	Verdict   string   `json:"verdict"`
	Exposure  string   `json:"exposure"`
	Tier      string   `json:"tier"`
	Score     int      `json:"score"`
	Endpoints []string `json:"endpoints,omitempty"`
	VEX       string   `json:"vex"`
}

// sarifLevels maps tiers to SARIF levels: what needs action now is an
// error, the rest is kept visible without failing a check.
var sarifLevels = map[string]string{"P1": "error", "P2": "error", "P3": "warning", "P4": "note"}

// srcRoot is the base of every artifact URI: the source root of the
// analysis, where GitHub expects the root of the repository.
const srcRoot = "%SRCROOT%"

// manifests are the files a dependency of each ecosystem is
// conventionally declared in, the last resort of sarifPhysicalOf.
var manifests = map[string]string{
	osv.EcosystemGo: "go.mod", osv.EcosystemNPM: "package.json", osv.EcosystemPyPI: "requirements.txt",
	osv.EcosystemMaven: "pom.xml", osv.EcosystemNuGet: "packages.config", osv.EcosystemRubyGems: "Gemfile.lock",
	osv.EcosystemCratesIO: "Cargo.lock", osv.EcosystemPackagist: "composer.lock",
}

// tierSeverity stands in for a CVSS score with evident's priority, in the
// middle of the band GitHub shows for it (P1 critical, P2 high, P3
// medium, P4 low), as levelSeverity does for a qualitative severity.
var (
	tierSeverity  = map[string]float64{"P1": 9.5, "P2": 8.0, "P3": 5.5, "P4": 2.0}
	levelSeverity = map[string]float64{"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 2.0}
)

func writeSARIF(w io.Writer, r *Result, tree *manifest.Tree) error {
	driver := sarifDriver{Name: "evident", Language: "en-US", Version: r.Version, InformationURI: "https://github.com/evidentsec/evident", Rules: []sarifRule{}}
	ruleIndex := map[string]int{}
	run := sarifRun{
		Language: "en-US", NewlineSequences: []string{"\r\n", "\n"}, Results: []sarifResult{},
		Properties:         sarifRunProps{VulnDB: VulnDBJSON(r.VulnDB)},
		OriginalURIBaseIDs: map[string]sarifArtifact{srcRoot: {Description: &sarifText{Text: "The source root of the analysis (evident analyze --source-root): the root of the repository."}}},
	}
	// A rule's priority stand-in is the highest tier among its findings.
	bestTier := map[string]string{}
	// The versions of each alert (alertKey): two copies of a package in
	// one service (an npm package nested at another version) are two
	// alerts.
	versions := map[string]map[string]bool{}
	for _, a := range r.Assessments {
		id := a.Finding.Vulnerability.ID
		if t, ok := bestTier[id]; !ok || a.Priority.Tier < t {
			bestTier[id] = a.Priority.Tier
		}
		k := alertKey(a.Finding, false)
		if versions[k] == nil {
			versions[k] = map[string]bool{}
		}
		versions[k][a.Finding.Package.Version] = true
	}
	for _, a := range r.Assessments {
		f := a.Finding
		id := f.Vulnerability.ID
		idx, ok := ruleIndex[id]
		if !ok {
			idx = len(driver.Rules)
			ruleIndex[id] = idx
			driver.Rules = append(driver.Rules, sarifRuleOf(a, bestTier[id]))
		}
		loc := sarifLocation{
			PhysicalLocation: sarifPhysicalOf(f, tree),
			LogicalLocations: []sarifLogical{{Name: f.Service, FullyQualifiedName: f.Service, Kind: "module"}},
		}
		for _, e := range a.Reachability.Evidence {
			loc.LogicalLocations = append(loc.LogicalLocations, sarifLogical{Name: e.Symbol[strings.LastIndexByte(e.Symbol, '/')+1:], FullyQualifiedName: e.Symbol, Kind: "function"})
		}
		res := sarifResult{
			RuleID: id, RuleIndex: idx, Level: sarifLevels[a.Priority.Tier],
			Message: sarifText{Text: fmt.Sprintf("%s in %s@%s (service %s): %s, %s. %s %d/100. %s",
				id, f.Package.Name, f.Package.Version, dash(f.Service), a.Reachability.Verdict, a.Exposure.Level,
				a.Priority.Tier, a.Priority.Score, a.Reachability.Reason)},
			Locations: []sarifLocation{loc},
			// GitHub matches alerts across runs by primaryLocationLineHash
			// alone. Its own (a hash of the manifest line) would merge the
			// services that share a manifest line and open a new alert at
			// every version bump; this one is the service, vulnerability
			// and package, whatever the line and version, unless the
			// service has the package at several versions.
			PartialFingerprints: map[string]string{"primaryLocationLineHash": alertKey(f, len(versions[alertKey(f, false)]) > 1), "evident/v1": FindingID(f)},
			Properties: sarifResultProps{
				Service: f.Service, PURL: f.Package.PURL, Verdict: string(a.Reachability.Verdict), Exposure: string(a.Exposure.Level),
				Tier: a.Priority.Tier, Score: a.Priority.Score, Endpoints: a.Reachability.Endpoints, VEX: a.VEX.Status,
			},
		}
		if a.VEX.Status == assess.StatusNotAffected {
			res.Suppressions = []sarifSuppression{{
				Kind: "external", Status: "accepted",
				Justification: fmt.Sprintf("not_affected (%s): %s", a.VEX.Justification, a.VEX.Statement),
			}}
		}
		run.Results = append(run.Results, res)
	}
	run.Tool = sarifTool{Driver: driver}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}

// sarifPhysicalOf locates a finding: the line of the manifest that
// declares its package; else the manifest of its service without a line;
// else the scanner report it came from, when that lies in the source
// root; else the manifest its ecosystem conventionally uses, at the root.
func sarifPhysicalOf(f findings.Finding, tree *manifest.Tree) sarifPhysical {
	at := func(path string, line int) sarifPhysical {
		p := sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(path), URIBaseID: srcRoot}}
		if line > 0 {
			p.Region = &sarifRegion{StartLine: line}
		}
		return p
	}
	if loc, ok := tree.Locate(f.Package.Ecosystem, f.Package.Name, f.Package.Version, f.Service); ok {
		return at(loc.Path, loc.Line)
	}
	for _, src := range f.Sources {
		if rel, ok := tree.Rel(src.File); ok {
			return at(rel, 0)
		}
	}
	if m, ok := manifests[f.Package.Ecosystem]; ok {
		return at(m, 0)
	}
	return at("sbom.json", 0)
}

// sarifURI is a relative path as the URI reference SARIF wants (3.4.3):
// a space, '#' or '%' in a name escaped, and a first segment with a colon
// made relative ("./a:b"), not taken for a scheme.
func sarifURI(path string) string {
	return (&url.URL{Path: path}).String()
}

// alertKey identifies a finding's alert across runs: its service,
// vulnerability and package, not the version (a bump that is still
// vulnerable is the same alert), unless withVersion: the service has the
// package at several versions, each an alert of its own. A
// distribution's release ("Debian:11") is left out as the version is:
// an image moved to the next release that is still vulnerable is the
// same alert, and keys made before findings named the release still
// hold.
func alertKey(f findings.Finding, withVersion bool) string {
	eco, _, _ := strings.Cut(f.Package.Ecosystem, ":")
	key := f.Service + "\x00" + f.Vulnerability.ID + "\x00" + eco + "\x00" + f.Package.Name
	if withVersion {
		key += "\x00" + f.Package.Version
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// sarifRuleOf describes a vulnerability. GitHub ranks alerts by the
// rule's security-severity: the CVSS score, else the middle of the
// band of the advisory's severity level, else of the best tier evident
// gave the vulnerability's findings.
func sarifRuleOf(a assess.Assessment, tier string) sarifRule {
	f := a.Finding
	id := f.Vulnerability.ID
	desc := id
	if len(f.Vulnerability.Aliases) > 0 {
		desc += " (" + strings.Join(f.Vulnerability.Aliases, ", ") + ")"
	}
	desc += " in " + f.Package.Name
	rule := sarifRule{
		ID: id, Name: "Vulnerability", ShortDescription: sarifText{Text: desc}, FullDescription: sarifText{Text: desc},
		HelpURI: "https://osv.dev/vulnerability/" + id,
		Help: sarifMarkdown{
			Text:     fmt.Sprintf("%s. Fixed in %s. See https://osv.dev/vulnerability/%s", desc, dash(f.FixedVersion), id),
			Markdown: fmt.Sprintf("**%s**. Fixed in `%s`. See [osv.dev](https://osv.dev/vulnerability/%s).", desc, dash(f.FixedVersion), id),
		},
		Properties: sarifRuleProps{Tags: []string{"security", "vulnerability", f.Package.Ecosystem}},
	}
	score := f.Severity.Score
	if score == 0 {
		score = levelSeverity[f.Severity.Level]
	}
	if score == 0 {
		score = tierSeverity[tier]
	}
	if score > 0 {
		rule.Properties.SecuritySeverity = fmt.Sprintf("%.1f", min(score, 10))
	}
	return rule
}
