package vulndb

import (
	"encoding/json"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
)

// Severity sources in order of preference; a higher rank wins.
const (
	rankNone = iota
	rankGHSA
	rankCVSS3
	rankCVSS4
)

// severityOf returns the best severity a record states: a CVSS v4 vector
// over a v3.x vector (the highest score within a version, record and
// affected entries alike) over GitHub's database_specific.severity.
// Vectors that do not parse are passed over: a bad score must not cost the
// record.
func severityOf(e *osv.Entry) Severity {
	best, bestRank := Severity{Level: LevelUnknown}, rankNone
	consider := func(s osv.Severity) {
		score, rank, ok := cvssScore(s)
		if !ok {
			return
		}
		if rank > bestRank || (rank == bestRank && score > best.Score) {
			best, bestRank = Severity{Level: osv.LevelOf(score), Score: score, Vector: s.Score, Source: e.ID}, rank
		}
	}
	for _, s := range e.Severity {
		consider(s)
	}
	for _, a := range e.Affected {
		for _, s := range a.Severity {
			consider(s)
		}
	}
	if bestRank != rankNone {
		return best
	}
	if lvl := ghsaLevel(e.DatabaseSpecific); lvl != "" {
		return Severity{Level: lvl, Source: e.ID}
	}
	return best
}

// cvssScore computes the base score of a CVSS v3.0, v3.1 or v4.0 vector
// and ranks it: v4 outranks v3.
func cvssScore(s osv.Severity) (score float64, rank int, ok bool) {
	v := strings.TrimSpace(s.Score)
	switch {
	case s.Type == osv.SeverityCVSSv4 || strings.HasPrefix(v, "CVSS:4.0/"):
		rank = rankCVSS4
	case strings.HasPrefix(v, "CVSS:3.1/"), strings.HasPrefix(v, "CVSS:3.0/"):
		rank = rankCVSS3
	default:
		return 0, 0, false
	}
	score, err := osv.ScoreVector(v)
	return score, rank, err == nil
}

// ghsaLevel reads GitHub's qualitative rating from a record's top-level
// database_specific ({"severity": "CRITICAL"|"HIGH"|"MODERATE"|"LOW"}).
func ghsaLevel(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var ds struct {
		Severity string `json:"severity"`
	}
	if json.Unmarshal(raw, &ds) != nil {
		return ""
	}
	switch strings.ToUpper(ds.Severity) {
	case "CRITICAL":
		return LevelCritical
	case "HIGH":
		return LevelHigh
	case "MODERATE", "MEDIUM":
		return LevelMedium
	case "LOW":
		return LevelLow
	}
	return ""
}

// severityRank ranks an already computed severity, for borrowing from
// aliases.
func severityRank(s Severity) int {
	switch {
	case strings.HasPrefix(s.Vector, "CVSS:4"):
		return rankCVSS4
	case s.Vector != "":
		return rankCVSS3
	case s.Level != LevelUnknown:
		return rankGHSA
	}
	return rankNone
}
