package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/osv"
)

// SARIF 2.1.0, the subset GitHub code scanning reads: one rule per
// vulnerability, one result per finding, located at the manifest of the
// package's ecosystem (a vulnerable dependency has no line of its own),
// with the service and vulnerable functions as logical locations.

const sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool             sarifTool     `json:"tool"`
	Language         string        `json:"language"`
	NewlineSequences []string      `json:"newlineSequences"`
	Results          []sarifResult `json:"results"`
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
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          sarifResultProps  `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical  `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
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

// manifests are the files a dependency of each ecosystem is declared in.
var manifests = map[string]string{
	osv.EcosystemGo: "go.mod", osv.EcosystemNPM: "package.json", osv.EcosystemPyPI: "requirements.txt",
	osv.EcosystemMaven: "pom.xml", osv.EcosystemNuGet: "packages.config", osv.EcosystemRubyGems: "Gemfile.lock",
	osv.EcosystemCratesIO: "Cargo.lock", osv.EcosystemPackagist: "composer.lock",
}

func writeSARIF(w io.Writer, r *Result) error {
	driver := sarifDriver{Name: "evident", Language: "en-US", Version: r.Version, InformationURI: "https://github.com/evidentsec/evident", Rules: []sarifRule{}}
	ruleIndex := map[string]int{}
	run := sarifRun{Language: "en-US", NewlineSequences: []string{"\r\n", "\n"}, Results: []sarifResult{}}
	for _, a := range r.Assessments {
		f := a.Finding
		id := f.Vulnerability.ID
		idx, ok := ruleIndex[id]
		if !ok {
			idx = len(driver.Rules)
			ruleIndex[id] = idx
			driver.Rules = append(driver.Rules, sarifRuleOf(a))
		}
		manifest := manifests[f.Package.Ecosystem]
		if manifest == "" {
			manifest = "sbom.json"
		}
		loc := sarifLocation{
			PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: manifest}, Region: sarifRegion{StartLine: 1}},
			LogicalLocations: []sarifLogical{{Name: f.Service, FullyQualifiedName: f.Service, Kind: "module"}},
		}
		for _, e := range a.Reachability.Evidence {
			loc.LogicalLocations = append(loc.LogicalLocations, sarifLogical{Name: e.Symbol[strings.LastIndexByte(e.Symbol, '/')+1:], FullyQualifiedName: e.Symbol, Kind: "function"})
		}
		run.Results = append(run.Results, sarifResult{
			RuleID: id, RuleIndex: idx, Level: sarifLevels[a.Priority.Tier],
			Message: sarifText{Text: fmt.Sprintf("%s in %s@%s (service %s): %s, %s. %s %d/100. %s",
				id, f.Package.Name, f.Package.Version, dash(f.Service), a.Reachability.Verdict, a.Exposure.Level,
				a.Priority.Tier, a.Priority.Score, a.Reachability.Reason)},
			Locations:           []sarifLocation{loc},
			PartialFingerprints: map[string]string{"evident/v1": FindingID(f)},
			Properties: sarifResultProps{
				Service: f.Service, PURL: f.Package.PURL, Verdict: string(a.Reachability.Verdict), Exposure: string(a.Exposure.Level),
				Tier: a.Priority.Tier, Score: a.Priority.Score, Endpoints: a.Reachability.Endpoints, VEX: a.VEX.Status,
			},
		})
	}
	run.Tool = sarifTool{Driver: driver}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}

func sarifRuleOf(a assess.Assessment) sarifRule {
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
	// GitHub ranks alerts by security-severity; without a CVSS score, the
	// middle of the level's CVSS band stands in for it.
	score := f.Severity.Score
	if score == 0 {
		score = map[string]float64{"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 2.0}[f.Severity.Level]
	}
	if score > 0 {
		rule.Properties.SecuritySeverity = fmt.Sprintf("%.1f", score)
	}
	return rule
}
