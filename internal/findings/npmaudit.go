package findings

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/evidentsec/evident/internal/osv"
)

// The npm audit JSON report of npm 7 and later (auditReportVersion 2,
// npm's @npmcli/arborist audit-report), with the fields that findings use.
// A vulnerability entry is a package, with the installed copies of it
// (nodes, paths into node_modules) and what makes it vulnerable (via):
// advisories (objects) or other vulnerable packages it depends on
// (names), which make it a finding of theirs, not of its own.
type (
	npmAuditVulnerability struct {
		Name  string            `json:"name"`
		Via   []json.RawMessage `json:"via"`
		Nodes []string          `json:"nodes"`
	}
	npmAuditAdvisory struct {
		Source   json.Number `json:"source"`
		Name     string      `json:"name"`
		Title    string      `json:"title"`
		URL      string      `json:"url"`
		Severity string      `json:"severity"`
		CVSS     struct {
			Score        float64 `json:"score"`
			VectorString string  `json:"vectorString"`
		} `json:"cvss"`
		Range string `json:"range"`
	}
)

// NPMLock is the installed version of every node of an npm lockfile (v2
// or v3, as npm 7 and later write package-lock.json), keyed by its path
// ("node_modules/minimist", "node_modules/mkdirp/node_modules/minimist").
// npm audit's report names the nodes of each vulnerable package but not
// their versions; its lockfile, which npm audit needs to run, has them.
type NPMLock map[string]string

// ReadNPMLock reads the packages of a package-lock.json or
// npm-shrinkwrap.json of lockfileVersion 2 or 3. A lockfile of version 1
// (npm 6) has no node paths; it is an error wrapping ErrWrongFormat.
func ReadNPMLock(r io.Reader, name string) (NPMLock, error) {
	doc, err := decodeDocument(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var (
		version  int
		packages map[string]struct {
			Version string `json:"version"`
		}
	)
	ok, err := field(doc, "lockfileVersion", &version)
	if err == nil && !ok {
		err = fmt.Errorf("not an npm lockfile (no lockfileVersion): %w", ErrWrongFormat)
	}
	if err == nil {
		ok, err = field(doc, "packages", &packages)
	}
	if err == nil && !ok {
		err = fmt.Errorf("lockfileVersion %d has no packages (npm 6 lockfile; npm 7 or later writes them): %w", version, ErrWrongFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lock := make(NPMLock, len(packages))
	for node, p := range packages {
		if node != "" && p.Version != "" {
			lock[node] = p.Version
		}
	}
	return lock, nil
}

// ParseNPMAudit reads the report of npm audit --json (npm 7 and later:
// auditReportVersion 2). Every advisory in the via list of a vulnerable
// package becomes a finding of each installed copy of the package (its
// nodes) whose version is in the advisory's range; the version comes from
// lock, the lockfile npm audit ran on (see ReadNPMLock). The vulnerability
// is the GitHub advisory the advisory's URL names (GHSA-…), its severity
// npm's level with the CVSS vector when there is one, and its fixed
// version the upper bound of the advisory's range that the installed
// version is under. Packages vulnerable only through their dependencies
// (via names, no advisory) are findings of those dependencies.
//
// A node that lock does not list, or an advisory without a GitHub advisory
// URL, is reported as a *RecordError naming it ("vulnerabilities.lodash
// (node_modules/lodash)") and skipped; with a nil lock, every node is. An
// input that is not an npm 7+ audit report wraps ErrWrongFormat; broken
// JSON ErrMalformed.
func ParseNPMAudit(r io.Reader, name string, lock NPMLock) ([]Finding, []error) {
	doc, err := decodeDocument(r)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		version int
		vulns   map[string]json.RawMessage
	)
	ok, err := field(doc, "auditReportVersion", &version)
	switch {
	case err != nil:
	case !ok && doc["advisories"] != nil:
		err = fmt.Errorf("npm 6 audit report (advisories, no auditReportVersion); run npm audit --json of npm 7 or later: %w", ErrWrongFormat)
	case !ok:
		err = fmt.Errorf("not an npm audit report (no auditReportVersion): %w", ErrWrongFormat)
	case version != 2:
		err = fmt.Errorf("auditReportVersion %d, want 2: %w", version, ErrWrongFormat)
	}
	if err == nil {
		_, err = field(doc, "vulnerabilities", &vulns)
	}
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		found []Finding
		errs  []error
	)
	for _, key := range slices.Sorted(maps.Keys(vulns)) {
		rec := "vulnerabilities." + key
		var v npmAuditVulnerability
		if err := json.Unmarshal(vulns[key], &v); err != nil {
			errs = append(errs, recordErr(name, rec, "%v", err))
			continue
		}
		fs, verrs := npmAuditToFindings(v, key, lock, name, rec)
		found = append(found, fs...)
		errs = append(errs, verrs...)
	}
	return Merge(found), errs
}

func npmAuditToFindings(v npmAuditVulnerability, key string, lock NPMLock, name, rec string) ([]Finding, []error) {
	pkgName := v.Name
	if pkgName == "" {
		pkgName = key
	}
	var (
		advisories []npmAuditAdvisory
		errs       []error
	)
	for i, raw := range v.Via {
		var a npmAuditAdvisory
		if json.Unmarshal(raw, &a) != nil {
			var dep string
			if json.Unmarshal(raw, &dep) == nil {
				continue // vulnerable through dependency dep: its finding
			}
			errs = append(errs, recordErr(name, fmt.Sprintf("%s.via[%d]", rec, i), "neither an advisory nor a package name"))
			continue
		}
		id := path.Base(a.URL)
		if !strings.HasPrefix(id, "GHSA-") {
			errs = append(errs, recordErr(name, fmt.Sprintf("%s.via[%d] (advisory %s)", rec, i, a.Source), "url %q names no GitHub advisory", a.URL))
			continue
		}
		advisories = append(advisories, a)
	}
	if len(advisories) == 0 {
		return nil, errs
	}
	var out []Finding
	for _, node := range v.Nodes {
		version, ok := lock[node]
		if !ok {
			errs = append(errs, recordErr(name, rec+" ("+node+")", "installed version unknown: the report does not state it, and the lockfile npm audit ran on (package-lock.json beside the report) does not list the node"))
			continue
		}
		pkg, err := newPackage(osv.EcosystemNPM, pkgName, version, "")
		if err != nil {
			errs = append(errs, &RecordError{File: name, Record: rec + " (" + node + ")", Err: err})
			continue
		}
		for _, a := range advisories {
			in, fix := npmRangeFix(a.Range, version)
			if !in {
				continue
			}
			f := Finding{
				Package:       pkg,
				Vulnerability: Vulnerability{ID: path.Base(a.URL)},
				Severity:      Severity{Level: normalizeLevel(a.Severity)},
				FixedVersion:  fix,
				Sources:       []Source{{Tool: string(FormatNPMAudit), File: name}},
			}
			if a.CVSS.VectorString != "" {
				f.Severity.Score, f.Severity.Vector = a.CVSS.Score, a.CVSS.VectorString
			}
			out = append(out, f)
		}
	}
	return out, errs
}

// npmRangeFix reports whether version is in an advisory's range as npm
// writes it from the advisory's affected ranges ("<4.17.21", ">=1.0.0
// <1.2.6", "<0.2.4 || >=1.0.0 <1.2.6"), and the upper bound ("<X") of the
// part it is in, which is the version that fixes it. A range that does
// not parse is taken to hold version (npm listed the node as vulnerable),
// with no fix known.
func npmRangeFix(rng, version string) (bool, string) {
	v, err := semantic.Parse(version, osv.EcosystemNPM)
	if err != nil {
		return true, ""
	}
	parsedAll := true
	for set := range strings.SplitSeq(rng, "||") {
		in, fix, ok := npmComparatorSet(strings.Fields(set), v)
		if !ok {
			parsedAll = false
			continue
		}
		if in {
			return true, fix
		}
	}
	return !parsedAll, ""
}

// npmComparatorSet evaluates the space-separated comparators of one
// "||" part of a range (each an operator <, <=, >, >=, = or none, and a
// version; "*" matches all). ok is false when a comparator does not parse.
func npmComparatorSet(comps []string, v semantic.Version) (in bool, fix string, ok bool) {
	in = true
	for _, c := range comps {
		if c == "*" {
			continue
		}
		op := strings.TrimRight(c[:min(2, len(c))], "0123456789v.")
		bound := strings.TrimPrefix(c[len(op):], "v")
		cmp, err := v.CompareStr(bound)
		if err != nil {
			return false, "", false
		}
		var holds bool
		switch op {
		case "<":
			holds, fix = cmp < 0, bound
		case "<=":
			holds = cmp <= 0
		case ">":
			holds = cmp > 0
		case ">=":
			holds = cmp >= 0
		case "", "=":
			holds = cmp == 0
		default:
			return false, "", false
		}
		in = in && holds
	}
	return in, fix, len(comps) > 0
}
