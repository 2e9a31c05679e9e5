package findings

import (
	"cmp"
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb"
)

// Merge collapses findings that are the same vulnerability in the same
// package version of the same service into one finding, and returns them
// in a deterministic order: by service, package URL, then vulnerability
// id. The input is not modified. Merge is idempotent.
//
// Two findings are the same vulnerability when their id-and-alias sets
// intersect (GO-2021-0113, GHSA-ppp9-7jff-5vj2 and CVE-2021-38561 are one
// vulnerability), transitively. Distribution advisory ids (DSA-, DLA-,
// RHSA-, ALAS-, USN-, ...) are kept as aliases but never used to match,
// because one such advisory fixes several vulnerabilities at once, but
// for findings whose own id is the same advisory. For
// the same reason a finding whose ids name several CVEs (govulncheck's
// GO-2022-0536, CVE-2019-9512 and CVE-2019-9514) matches others by its
// primary id alone: Trivy's CVE-2019-9512 and CVE-2019-9514 stay two
// findings, and the record of both a third.
//
// The merged finding takes as primary id, of all ids and aliases (of a
// finding of several CVEs, its own id only), the one of the highest rank,
// then the lexically smallest:
//
//  1. GO- (the Go vulnerability database, which has symbol data),
//  2. GHSA- (the GitHub advisory database),
//  3. the ids of other OSV databases (PYSEC-, RUSTSEC-, GMS-, ...),
//  4. CVE-,
//  5. distribution advisories.
//
// The other ids become the sorted aliases. Severity is the highest of all
// (by level, then score), Static the strongest, Symbols and Sources the
// sorted unions, and FixedVersion the lowest reported fix above the
// installed version, compared with the ecosystem's version rules.
//
// MergeWith also merges the ids that only the vulnerability database
// relates.
func Merge(fs []Finding) []Finding {
	return merge(fs, nil)
}

// MergeWith merges as Merge does, and also findings that m, the
// vulnerability database, says are one vulnerability although their
// reports name it differently and give no alias in common (npm audit
// names GHSA-35jh-r3h4-6jhm alone, a report of the same lodash CVE-2021-23337
// alone): two findings of one package version are the same when one
// record that affects the version is the same vulnerability as each (see
// sameRecords). The record links the two findings, not its ids: a third
// finding that shares an id with the record but is not that vulnerability
// (it names another CVE) stays apart. The merged finding's ids are the
// ids the reports gave, ranked as Merge ranks them, and a finding that
// links to no other keeps its own. With m nil, MergeWith is Merge.
func MergeWith(fs []Finding, m Matcher) []Finding {
	if m == nil {
		return Merge(fs)
	}
	links := make([][]string, len(fs))
	for i, f := range fs {
		// A finding of several CVEs is linked by its own id alone, as
		// Merge matches it: through a record of one of its CVEs it would
		// join the findings of each (see matchIDs).
		for _, v := range sameRecords(f.Package, matchIDs(f.Vulnerability), m) {
			// No id starts with a NUL: the key matches only the
			// findings this record is the vulnerability of.
			links[i] = append(links[i], "\x00"+v.Entry.ID)
		}
	}
	return merge(fs, links)
}

// sameRecords returns the records of m that affect package p and are the
// vulnerability that ids (a finding's id and aliases) name: a record that
// is or lists one of the ids, distribution advisories left out as Merge
// leaves them out. A record that names several CVEs (GO-2022-0536 is both
// CVE-2019-9512 and CVE-2019-9514, two HTTP/2 flaws) is not one
// vulnerability as the reports count them, and is left out, as is a record
// whose CVE is none of those the ids name: either would make two flaws one.
func sameRecords(p Package, ids []string, m Matcher) []*vulndb.Vuln {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "" || isBundleID(id) })
	if m == nil || len(ids) == 0 || p.Version == "" {
		return nil
	}
	cves := cvesOf(ids)
	var out []*vulndb.Vuln
	for _, v := range m.Affecting(p.Ecosystem, p.Name, p.Version) {
		vids := recordIDs(v)
		if !slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(vids, id) }) {
			continue
		}
		recCVEs := cvesOf(vids)
		switch {
		case len(recCVEs) > 1:
			continue
		case len(recCVEs) == 1 && len(cves) > 0 && !slices.Contains(cves, recCVEs[0]):
			continue
		}
		out = append(out, v)
	}
	return out
}

// recordIDs is the id and the aliases of a record.
func recordIDs(v *vulndb.Vuln) []string {
	return append([]string{v.Entry.ID}, v.Entry.Aliases...)
}

// cvesOf is the CVE ids among ids, sorted and distinct.
func cvesOf(ids []string) []string {
	return sortedSet(slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !strings.HasPrefix(id, "CVE-") }))
}

// merge is Merge, with links[i] (when links is not nil) more keys that
// finding i matches by, which are not kept as ids.
func merge(fs []Finding, links [][]string) []Finding {
	type pkgKey struct{ service, purl string }
	groups := map[pkgKey][]int{}
	var keys []pkgKey
	for i, f := range fs {
		k := pkgKey{f.Service, f.Package.PURL}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	var out []Finding
	for _, k := range keys {
		for _, comp := range sameVulnerability(fs, links, groups[k]) {
			out = append(out, mergeFindings(fs, comp))
		}
	}
	slices.SortFunc(out, compareFindings)
	return out
}

// compareFindings is the output order of Merge.
func compareFindings(a, b Finding) int {
	return cmp.Or(
		cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Package.PURL, b.Package.PURL),
		cmp.Compare(a.Vulnerability.ID, b.Vulnerability.ID),
	)
}

// sameVulnerability partitions the findings at idx (all of one service
// and package) into groups whose id sets (with their links, see merge)
// intersect, transitively, with a union-find over the findings.
func sameVulnerability(fs []Finding, links [][]string, idx []int) [][]int {
	parent := make([]int, len(idx))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	owner := map[string]int{}
	for i, fi := range idx {
		ids := matchIDs(fs[fi].Vulnerability)
		if links != nil {
			ids = append(ids, links[fi]...)
		}
		for _, id := range ids {
			if isBundleID(id) {
				// An advisory that may fix several vulnerabilities joins
				// only the findings it is the id of: one advisory that
				// two SBOMs of an image met (ALSA-2020:1636, which lists
				// no alias) is one finding, not the findings of each of
				// its CVEs.
				if id != fs[fi].Vulnerability.ID {
					continue
				}
			}
			if j, ok := owner[id]; ok {
				parent[find(i)] = find(j)
				continue
			}
			owner[id] = i
		}
	}
	comps := map[int][]int{}
	var roots []int
	for i, fi := range idx {
		r := find(i)
		if _, ok := comps[r]; !ok {
			roots = append(roots, r)
		}
		comps[r] = append(comps[r], fi)
	}
	out := make([][]int, 0, len(roots))
	for _, r := range roots {
		out = append(out, comps[r])
	}
	return out
}

// matchIDs is the ids by which Merge matches v with other findings: its
// id and aliases, or its id alone when they name several CVEs. A record
// of several flaws (GO-2022-0536 is CVE-2019-9512 and CVE-2019-9514, and
// lists the GHSA of each) is not the vulnerability of a report that names
// one of them, and through its aliases it would make those of two flaws
// one finding.
func matchIDs(v Vulnerability) []string {
	ids := vulnIDs(v)
	if len(cvesOf(ids)) > 1 && v.ID != "" {
		return []string{v.ID}
	}
	return ids
}

// vulnIDs is the primary id and the aliases of v.
func vulnIDs(v Vulnerability) []string {
	ids := make([]string, 0, 1+len(v.Aliases))
	if v.ID != "" {
		ids = append(ids, v.ID)
	}
	for _, a := range v.Aliases {
		if a != "" {
			ids = append(ids, a)
		}
	}
	return ids
}

// isBundleID reports whether id is a distribution advisory, which may
// cover several vulnerabilities: DSA-, DLA-, DTSA- (Debian), RHSA-, RHBA-,
// RHEA- (Red Hat), ALAS-, ALAS2-, ALAS2023- (Amazon), ALSA-, ELSA-,
// RLSA-, CESA-, USN-, GLSA-, MGASA-, FEDORA-, SUSE-SU-, openSUSE-SU-.
// (A switch rather than a regular expression: Merge asks for every id.)
func isBundleID(id string) bool {
	first, rest, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	switch first {
	case "DSA", "DLA", "DTSA", "RHSA", "RHBA", "RHEA", "ALSA", "ELSA", "RLSA", "CESA", "USN", "GLSA", "MGASA", "FEDORA":
		return true
	case "SUSE", "openSUSE":
		return strings.HasPrefix(rest, "SU-")
	}
	digits, ok := strings.CutPrefix(first, "ALAS")
	return ok && strings.Trim(digits, "0123456789") == ""
}

// idRank is the preference of an id as primary id; lower is better. See
// Merge.
func idRank(id string) int {
	switch {
	case strings.HasPrefix(id, "GO-"):
		return 0
	case strings.HasPrefix(id, "GHSA-"):
		return 1
	case strings.HasPrefix(id, "CVE-"):
		return 3
	case isBundleID(id):
		return 4
	}
	return 2
}

// primaryID picks the primary id of a set of ids. See Merge.
func primaryID(ids []string) string {
	return slices.MinFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(idRank(a), idRank(b)), cmp.Compare(a, b))
	})
}

// mergeFindings merges the findings at idx, known to be the same
// vulnerability in the same package of the same service.
func mergeFindings(fs []Finding, idx []int) Finding {
	first := fs[idx[0]]
	m := Finding{
		Service:  first.Service,
		Package:  first.Package,
		Severity: Severity{Level: LevelUnknown},
	}
	var ids, primaries, symbols, fixes []string
	var sources []Source
	for _, i := range idx {
		f := fs[i]
		ids = append(ids, vulnIDs(f.Vulnerability)...)
		primaries = append(primaries, matchIDs(f.Vulnerability)...)
		symbols = append(symbols, f.Symbols...)
		sources = append(sources, f.Sources...)
		if f.FixedVersion != "" {
			fixes = append(fixes, f.FixedVersion)
		}
		sev := f.Severity
		if sev.Level == "" {
			sev.Level = LevelUnknown
		}
		if higherSeverity(sev, m.Severity) {
			m.Severity = sev
		}
		if staticRank(f.Static) > staticRank(m.Static) {
			m.Static = f.Static
		}
		m.Package.Ecosystem = cmp.Or(m.Package.Ecosystem, f.Package.Ecosystem)
		m.Package.Name = cmp.Or(m.Package.Name, f.Package.Name)
		m.Package.Version = cmp.Or(m.Package.Version, f.Package.Version)
		m.Package.ScannerPURL = cmp.Or(m.Package.ScannerPURL, f.Package.ScannerPURL)
	}
	ids = sortedSet(ids)
	if len(ids) > 0 {
		// Of a finding of several CVEs, the GHSA of one of them is no
		// name for the whole: the primary id is one it matched by.
		m.Vulnerability.ID = primaryID(sortedSet(primaries))
		for _, id := range ids {
			if id != m.Vulnerability.ID {
				m.Vulnerability.Aliases = append(m.Vulnerability.Aliases, id)
			}
		}
	}
	m.Symbols = sortedSet(symbols)
	m.FixedVersion = lowestFix(m.Package.Ecosystem, m.Package.Version, fixes)
	slices.SortFunc(sources, func(a, b Source) int {
		return cmp.Or(cmp.Compare(a.Tool, b.Tool), cmp.Compare(a.File, b.File), cmp.Compare(a.Artifact, b.Artifact), cmp.Compare(a.Match, b.Match))
	})
	m.Sources = slices.Compact(sources)
	return m
}

// staticRank orders static reachability from weakest to strongest.
func staticRank(s StaticReach) int {
	switch s {
	case StaticRequired:
		return 1
	case StaticImported:
		return 2
	case StaticCalled:
		return 3
	}
	return 0
}

// sortedSet returns the sorted distinct non-empty strings of s, nil when
// there are none.
func sortedSet(s []string) []string {
	s = slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == "" })
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// lowestFix picks, among fixed versions that tools reported (Trivy writes
// several as "1.2.3, 2.0.1"), the lowest one above the installed version.
// Versions that do not parse in the ecosystem are compared as strings, so
// that the choice stays deterministic.
func lowestFix(ecosystem, installed string, fixes []string) string {
	var cands []string
	for _, f := range fixes {
		for part := range strings.SplitSeq(f, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if ecosystem == osv.EcosystemGo {
				part = goVersion(part)
			}
			cands = append(cands, part)
		}
	}
	cands = sortedSet(cands)
	switch len(cands) {
	case 0:
		return ""
	case 1:
		// Above the installed version or not, it is the fix the tools
		// report (see below); no need to parse versions.
		return cands[0]
	}
	compare := func(a, b string) int {
		v, err := semantic.Parse(a, ecosystem)
		if err != nil {
			return strings.Compare(a, b)
		}
		c, err := v.CompareStr(b)
		if err != nil {
			return strings.Compare(a, b)
		}
		return c
	}
	slices.SortStableFunc(cands, compare)
	for _, c := range cands {
		if installed == "" || compare(c, installed) > 0 {
			return c
		}
	}
	// No fix is above the installed version: report the highest, which
	// the tools still say fixes it.
	return cands[len(cands)-1]
}
