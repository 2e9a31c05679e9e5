package vulndb

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/osv"
)

// Severity levels, as Severity.Level holds them.
const (
	LevelCritical = "critical"
	LevelHigh     = "high"
	LevelMedium   = "medium"
	LevelLow      = "low"
	LevelUnknown  = "unknown"
)

// Function sources, as Function.Source holds them.
const (
	SourceOSV       = "osv"
	SourceKnowledge = "knowledge"
)

// DB is a loaded vulnerability database. It is immutable after Load returns
// and safe for concurrent use. A nil *DB is an empty database.
type DB struct {
	// vulns holds every loaded record, sorted by id.
	vulns []*Vuln
	// byID maps a normalised record id to its record.
	byID map[string]*Vuln
	// related maps a normalised id (record id or alias) to the records
	// that are or name it, sorted by id.
	related map[string][]*Vuln
	// index maps (ecosystem, normalised package name) to the index of
	// the records that name the package.
	index map[pkgKey]*pkgIndex
	stats Stats
}

// Vuln is one OSV record with what evident derives from it at load.
type Vuln struct {
	// Entry is the record as read. Callers must not modify it.
	Entry *osv.Entry
	// Severity is the best severity available: a CVSS v4 vector over a
	// v3.x vector over GitHub's database_specific.severity; when the record
	// has none, the best that the records of the same vulnerability state
	// (those that are or share one of its ids: the GHSA and CVE records of
	// a GO record, which carries no severity). Severity.Source names the
	// record it came from. Level is LevelUnknown when nothing says.
	Severity Severity
	// KnownExploited is true when the record or one of its aliases is a
	// CVE listed in the CISA KEV catalog.
	KnownExploited bool
	// KEV is the catalog entry that marks the record, nil when none does.
	KEV *KEVEntry
	// EPSS is FIRST's exploit prediction for the record's CVE (its id or
	// an alias; the highest when it names several), nil when none was
	// loaded or scores it.
	EPSS *EPSSScore
	// Functions are the affected functions: Go symbols from the record's
	// ecosystem_specific.imports, then the knowledge base's functions for
	// the record's packages, without duplicates. FunctionsAt gives those
	// of a version.
	Functions []Function
	// entries are the record's affected[] entries that compiled.
	entries []*affected
	// dropped are the indexes of the affected[] entries left out as
	// invalid (never those of a withdrawn record, which are not checked).
	dropped []int
	// file names the file the record came from.
	file string
}

// Severity is a severity level with the score and vector it came from.
type Severity struct {
	// Level is one of LevelCritical, LevelHigh, LevelMedium, LevelLow or
	// LevelUnknown. A CVSS score of 0.0 ("none") is LevelLow.
	Level string
	// Score is the CVSS base score, 0 when the level came from a
	// qualitative rating.
	Score float64
	// Vector is the CVSS vector the score was computed from, empty for
	// qualitative ratings.
	Vector string
	// Source is the id of the record that states the severity: the
	// record's own, or an alias record's when it was borrowed. Empty
	// when Level is LevelUnknown.
	Source string
}

// Function is one affected function (or, with an empty Symbol, a whole
// affected code package).
type Function struct {
	// Ecosystem and Module name the OSV package: the module path for Go,
	// group:artifact for Maven, the distribution for PyPI, the npm name.
	Ecosystem, Module string
	// Package is the code package: a Go import path, a Java package
	// (dotted), a Python module (dotted) or an npm package name.
	Package string
	// Symbol is "Func" or "Recv.Method" (Go, as OSV writes it), Java
	// "Class.method", Python "func" or "Class.method", npm "func". Empty
	// means the whole package.
	Symbol string
	// File is, for npm, the script inside the package that holds Symbol
	// (knowledge.Function.File); empty means any.
	File string
	// GOOS and GOARCH restrict a Go symbol to these platforms when set.
	GOOS, GOARCH []string
	// Source is SourceOSV or SourceKnowledge.
	Source string
	// Reference is a URL that shows the function is the vulnerable one
	// (knowledge entries).
	Reference string
	// entries are the indexes of the record's affected[] entries that
	// list the function (their ranges say which versions it is
	// vulnerable in); nil for the knowledge base's.
	entries []int
}

// FunctionsAt returns the affected functions of package name of
// ecosystem at version: those of the record's affected[] entries whose
// ranges include the version (a record lists, per range, the functions
// vulnerable in it: GO-2023-1497 names Client.UploadImage below 1.3.4 and
// not in 1.4.x), and the knowledge base's. An entry that includes the
// version and lists no function names no vulnerable code at it: the record
// then gives none of the package's functions at that version, whatever
// other entries list for other versions (a Go entry without imports affects
// every package of the module; a GitHub entry without affected_functions
// names none). When no entry of the package includes the version (one the
// ranges do not order, or a scanner's finding the record's ranges disagree
// with), all of them, as before.
func (v *Vuln) FunctionsAt(ecosystem, name, version string) []Function {
	eco := canonicalEcosystem(ecosystem)
	lv := newLookup(eco, name, version)
	includes := map[int]bool{}
	included := false
	for _, af := range v.entries {
		if canonicalEcosystem(af.eco) == eco && normName(eco, af.name) == normName(eco, name) {
			includes[af.index] = len(newPkgIndex([]*affected{af}).affecting(lv)) > 0
			included = included || includes[af.index]
		}
	}
	var out []Function
	listed := false
	for _, fn := range v.Functions {
		if fn.entries == nil || canonicalEcosystem(fn.Ecosystem) != eco || normName(eco, fn.Module) != normName(eco, name) {
			out = append(out, fn)
			continue
		}
		if slices.ContainsFunc(fn.entries, func(i int) bool { return includes[i] }) {
			out = append(out, fn)
			listed = true
		}
	}
	if !listed && !included {
		return v.Functions
	}
	return out
}

// Stats describes what a DB holds; the HTTP API serves it as JSON.
type Stats struct {
	// Records is the number of loaded records, withdrawn ones included.
	Records int `json:"records"`
	// Ecosystems counts per OSV ecosystem (as records write it, e.g.
	// "Go", "PyPI", "Debian:12"); a record that affects packages of two
	// ecosystems counts in both.
	Ecosystems map[string]EcosystemStats `json:"ecosystems"`
	// WithSymbols counts records with at least one affected function from
	// OSV; WithKnowledge those with at least one from the knowledge base.
	WithSymbols   int `json:"with_symbols"`
	WithKnowledge int `json:"with_knowledge"`
	// KnownExploited counts records marked by the KEV catalog.
	KnownExploited int `json:"known_exploited"`
	// Withdrawn counts withdrawn records (loaded, never matched).
	Withdrawn int `json:"withdrawn"`
	// Skipped counts the problems reported at load (records skipped,
	// affected entries left out of records that loaded without them, or
	// files and catalog entries that could not be read).
	Skipped int `json:"skipped"`
	// LastModified is the newest modified time of any record; zero when
	// no record carries one.
	LastModified time.Time `json:"last_modified,omitzero"`
	// KEVVersion, KEVReleased and KEVCount describe the KEV catalog: its
	// catalogVersion, its dateReleased and the number of CVEs it lists;
	// zero when none was loaded.
	KEVVersion  string    `json:"kev_version,omitempty"`
	KEVReleased time.Time `json:"kev_released,omitzero"`
	KEVCount    int       `json:"kev_count"`
	// EPSSModel, EPSSDate and EPSSCount describe the EPSS file: the model
	// version, the score date and the number of CVEs scored; zero when
	// none was loaded.
	EPSSModel string    `json:"epss_model,omitempty"`
	EPSSDate  time.Time `json:"epss_date,omitzero"`
	EPSSCount int       `json:"epss_count"`
}

// HasKEV reports whether a KEV catalog was loaded: without one, no
// record is marked known exploited, whether it is or not.
func (s Stats) HasKEV() bool { return s.KEVVersion != "" || s.KEVCount > 0 }

// HasEPSS reports whether EPSS scores were loaded: without them, no
// record has a score, whether FIRST scores its CVE or not.
func (s Stats) HasEPSS() bool { return s.EPSSModel != "" || s.EPSSCount > 0 }

// EcosystemStats counts the records of one ecosystem.
type EcosystemStats struct {
	Records        int `json:"records"`
	WithSymbols    int `json:"with_symbols"`
	WithKnowledge  int `json:"with_knowledge"`
	KnownExploited int `json:"known_exploited"`
	Withdrawn      int `json:"withdrawn"`
}

// File names the file (or archive:entry) the record was read from.
func (v *Vuln) File() string { return v.file }

// Withdrawn reports whether the record has been withdrawn.
func (v *Vuln) Withdrawn() bool { return !v.Entry.Withdrawn.IsZero() }

// Len returns the number of loaded records, withdrawn ones included.
func (db *DB) Len() int {
	if db == nil {
		return 0
	}
	return len(db.vulns)
}

// Stats returns counts of what the DB holds. The map is a copy.
func (db *DB) Stats() Stats {
	if db == nil {
		return Stats{Ecosystems: map[string]EcosystemStats{}}
	}
	s := db.stats
	s.Ecosystems = make(map[string]EcosystemStats, len(db.stats.Ecosystems))
	for k, v := range db.stats.Ecosystems {
		s.Ecosystems[k] = v
	}
	return s
}

// All returns every loaded record, sorted by id. The slice is the caller's;
// the records are shared and must not be modified.
func (db *DB) All() []*Vuln {
	if db == nil {
		return nil
	}
	return slices.Clone(db.vulns)
}

// Get returns the record with id idOrAlias or, when no record has that id,
// the record that lists it as an alias (the lowest id when several do).
// Ids compare case-insensitively. It returns nil when nothing is known.
func (db *DB) Get(idOrAlias string) *Vuln {
	if db == nil {
		return nil
	}
	n := normID(idOrAlias)
	if v := db.byID[n]; v != nil {
		return v
	}
	if rs := db.related[n]; len(rs) > 0 {
		return rs[0]
	}
	return nil
}

// Aliases returns every other id known for the same vulnerability as id:
// the aliases of the record with that id, the records that list id as an
// alias and their aliases, sorted and without id itself. Aliases hold both
// ways: when GO-2022-0969 lists CVE-2022-27664, Aliases("CVE-2022-27664")
// includes GO-2022-0969.
func (db *DB) Aliases(id string) []string {
	if db == nil {
		return nil
	}
	n := normID(id)
	seen := map[string]bool{n: true}
	var out []string
	add := func(s string) {
		if k := normID(s); !seen[k] && k != "" {
			seen[k] = true
			out = append(out, s)
		}
	}
	for _, v := range db.related[n] {
		add(v.Entry.ID)
		for _, a := range v.Entry.Aliases {
			add(a)
		}
	}
	slices.Sort(out)
	return out
}

// Affecting returns the records whose affected ranges or versions include
// version of package name in ecosystem, sorted by id, withdrawn records
// excluded. Ecosystem names compare case-insensitively for the ecosystems
// osv names; PyPI names are normalised (PEP 503). A version that cannot be
// ordered matches only exact versions[] entries and ranges without bounds
// ({"introduced": "0"} alone). The slice is the caller's.
func (db *DB) Affecting(ecosystem, name, version string) []*Vuln {
	if db == nil {
		return nil
	}
	eco, pi := db.pkgIndex(ecosystem, name)
	if pi == nil {
		return nil
	}
	return pi.affecting(newLookup(eco, name, version))
}

// pkgIndex returns the canonical name of ecosystem and the index of
// package name in it (nil when no record names it).
func (db *DB) pkgIndex(ecosystem, name string) (string, *pkgIndex) {
	eco := canonicalEcosystem(ecosystem)
	return eco, db.index[pkgKey{eco, normName(eco, name)}]
}

// Names reports whether a record that is not withdrawn names package
// name of ecosystem, whatever versions it affects, so that a package whose
// version is not known can be told apart from one no record could match.
// Names compare as in Affecting.
func (db *DB) Names(ecosystem, name string) bool {
	if db == nil {
		return false
	}
	_, pi := db.pkgIndex(ecosystem, name)
	return pi != nil && slices.ContainsFunc(pi.entries, func(a *affected) bool { return !a.vuln.Withdrawn() })
}

// FixedVersion returns the lowest version that fixes v for package name in
// ecosystem and is above version, or "" when no fix above it is known. The
// fix is written as OSV writes it, with the prefix version carries when
// that is a Go "v" or "go" prefix (so v1.2.3 yields v1.2.4, go1.21.3 yields
// go1.21.4).
func (db *DB) FixedVersion(v *Vuln, ecosystem, name, version string) string {
	if db == nil || v == nil {
		return ""
	}
	eco, pi := db.pkgIndex(ecosystem, name)
	if pi == nil {
		return ""
	}
	lv := newLookup(eco, name, version)
	// The fixes above version, lowest first; the first that no range or
	// entry of the record affects again (a fix of one branch may be
	// inside another's range: go-redis v9.5.5 fixes [9.5.1, 9.5.5), and
	// [0, 9.6.3) still holds it), as govulncheck's earliestValidFix.
	type fix struct {
		b   *bound
		ord ordering
	}
	var fixes []fix
	for _, a := range pi.entries {
		if a.vuln != v {
			continue
		}
		for i := range a.ranges {
			r := &a.ranges[i]
			cur := lv.parsed(r.ord)
			if cur == nil {
				continue
			}
			for j := range r.fixes {
				f := &r.fixes[j]
				if c, err := f.v.Compare(cur); err == nil && c > 0 {
					fixes = append(fixes, fix{f, r.ord})
				}
			}
		}
	}
	slices.SortStableFunc(fixes, func(a, b fix) int {
		if a.ord != b.ord {
			return cmp.Compare(a.ord, b.ord)
		}
		c, _ := a.b.v.Compare(b.b.v)
		return c
	})
	for _, f := range fixes {
		if fixed := lv.prefix + f.b.raw; !slices.Contains(pi.affecting(newLookup(eco, name, fixed)), v) {
			return fixed
		}
	}
	return ""
}

// normID folds an id for comparison: ids are case-insensitive in practice
// (GHSA ids appear in both cases).
func normID(id string) string {
	return strings.ToUpper(strings.TrimSpace(id))
}
