package findings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
)

// The OSV-Scanner v2 JSON output (google/osv-scanner pkg/models), with the
// fields that findings use. Vulnerabilities are full OSV records.
type (
	osvScannerSource struct {
		Packages []json.RawMessage `json:"packages"`
	}
	osvScannerPackage struct {
		Package struct {
			Name      string `json:"name"`
			Version   string `json:"version"`
			Ecosystem string `json:"ecosystem"`
		} `json:"package"`
		Vulnerabilities []osv.Entry       `json:"vulnerabilities"`
		Groups          []osvScannerGroup `json:"groups"`
	}
	// osvScannerGroup is a set of vulnerability records that OSV-Scanner
	// found to be aliases of one vulnerability.
	osvScannerGroup struct {
		IDs                  []string `json:"ids"`
		Aliases              []string `json:"aliases"`
		ExperimentalAnalysis map[string]struct {
			Called bool `json:"called"`
		} `json:"experimental_analysis"`
		MaxSeverity string `json:"max_severity"`
	}
)

// ParseOSVScanner reads the JSON output of osv-scanner (v2, --format
// json). Every group of a package (one vulnerability under all its ids,
// and the upstream id of a record that names one, as Debian's
// DEBIAN-CVE- records name their CVE) becomes a finding; when OSV-Scanner's call analysis ran
// (experimental_analysis), Static is called if it found a vulnerable
// function called and required otherwise. The fixed version comes from
// the ranges of the records for the package. Packages reported without
// groups (older output) get one finding per vulnerability record.
//
// A malformed source or package is reported as a *RecordError naming it
// ("results[0].packages[2] (golang.org/x/text)") and skipped. An input
// that is not OSV-Scanner output, or is not valid JSON, is one error
// wrapping ErrWrongFormat or ErrMalformed.
func ParseOSVScanner(r io.Reader, name string) ([]Finding, []error) {
	doc, err := decodeDocument(r)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var results []json.RawMessage
	ok, err := field(doc, "results", &results)
	if err == nil && !ok {
		err = fmt.Errorf("not OSV-Scanner JSON output (no results): %w", ErrWrongFormat)
	}
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		found []Finding
		errs  []error
	)
	for i, raw := range results {
		rec := fmt.Sprintf("results[%d]", i)
		var src osvScannerSource
		if err := json.Unmarshal(raw, &src); err != nil {
			errs = append(errs, recordErr(name, rec, "%v", err))
			continue
		}
		for j, raw := range src.Packages {
			rec := fmt.Sprintf("%s.packages[%d]", rec, j)
			var p osvScannerPackage
			if err := json.Unmarshal(raw, &p); err != nil {
				errs = append(errs, recordErr(name, rec, "%v", err))
				continue
			}
			if p.Package.Name != "" {
				rec += " (" + p.Package.Name + ")"
			}
			fs, err := osvScannerToFindings(p, name)
			if err != nil {
				errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
				continue
			}
			found = append(found, fs...)
		}
	}
	return Merge(found), errs
}

func osvScannerToFindings(p osvScannerPackage, name string) ([]Finding, error) {
	if p.Package.Name == "" || p.Package.Ecosystem == "" {
		return nil, errors.New("no package name or ecosystem")
	}
	pkg, err := newPackage(p.Package.Ecosystem, p.Package.Name, p.Package.Version, "")
	if err != nil {
		return nil, err
	}
	records := map[string]*osv.Entry{}
	for i := range p.Vulnerabilities {
		e := &p.Vulnerabilities[i]
		if e.ID == "" {
			return nil, fmt.Errorf("vulnerabilities[%d]: no id", i)
		}
		records[e.ID] = e
	}
	groups := p.Groups
	if len(groups) == 0 {
		for _, e := range p.Vulnerabilities {
			groups = append(groups, osvScannerGroup{IDs: []string{e.ID}, Aliases: e.Aliases})
		}
	}
	var out []Finding
	for i, g := range groups {
		ids := append(slices.Clone(g.IDs), g.Aliases...)
		for _, id := range g.IDs {
			// A distribution's record of one upstream flaw names it in
			// upstream, not aliases (DEBIAN-CVE-2022-1292 is
			// CVE-2022-1292 in Debian's openssl), and the CVE is the id
			// other tools and VEX documents know it by. A record of
			// several upstream ids (a DSA) is none of them alone.
			if e, ok := records[id]; ok && len(e.Upstream) == 1 {
				ids = append(ids, e.Upstream[0])
			}
		}
		ids = sortedSet(ids)
		if len(ids) == 0 {
			return nil, fmt.Errorf("groups[%d]: no ids", i)
		}
		f := Finding{
			Package:  pkg,
			Severity: Severity{Level: LevelUnknown},
			Sources:  []Source{{Tool: string(FormatOSVScanner), File: name}},
		}
		f.Vulnerability.ID = primaryID(ids)
		for _, id := range ids {
			if id != f.Vulnerability.ID {
				f.Vulnerability.Aliases = append(f.Vulnerability.Aliases, id)
			}
		}
		var (
			sevs  [][]osv.Severity
			fixes []string
		)
		for _, id := range g.IDs {
			e, ok := records[id]
			if !ok {
				continue
			}
			sevs = append(sevs, e.Severity)
			for _, a := range e.Affected {
				// OSV-Scanner writes PyPI names normalized, GitHub's
				// records as PyPI displays them ("PyYAML").
				if sameEcosystem(a.Package.Ecosystem, p.Package.Ecosystem) && sameName(pkg.Ecosystem, a.Package.Name, p.Package.Name) {
					sevs = append(sevs, a.Severity)
					fixes = append(fixes, fixedEvents(a)...)
				}
			}
		}
		f.Severity = osvSeverity(sevs...)
		if f.Severity.Level == LevelUnknown && g.MaxSeverity != "" {
			// max_severity is the score OSV-Scanner computed; use it
			// when no vector is at hand.
			if score, err := strconv.ParseFloat(g.MaxSeverity, 64); err == nil && score >= 0 && score <= 10 {
				f.Severity = Severity{Level: osv.LevelOf(score), Score: score}
			}
		}
		f.FixedVersion = lowestFix(pkg.Ecosystem, pkg.Version, fixes)
		if len(g.ExperimentalAnalysis) > 0 {
			f.Static = StaticRequired
			for _, a := range g.ExperimentalAnalysis {
				if a.Called {
					f.Static = StaticCalled
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// fixedEvents are the fixed versions in the ranges of an affected entry.
func fixedEvents(a osv.Affected) []string {
	var out []string
	for _, r := range a.Ranges {
		for _, e := range r.Events {
			if e.Fixed != "" {
				out = append(out, e.Fixed)
			}
		}
	}
	return out
}

// sameEcosystem reports whether two OSV ecosystem names are the same
// ecosystem, whatever release they name ("Debian:12" and "Debian").
func sameEcosystem(a, b string) bool {
	a, _, _ = strings.Cut(a, ":")
	b, _, _ = strings.Cut(b, ":")
	return strings.EqualFold(a, b)
}
