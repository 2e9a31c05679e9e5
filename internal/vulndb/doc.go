// Package vulndb loads OSV vulnerability records and answers the questions
// evident asks of them: which records affect a package version, what fixes
// it, which functions carry the flaw, how severe it is, whether it is
// known to be exploited and how likely it is to be.
//
// # Sources
//
// Load reads any mix of:
//
//   - a directory of OSV JSON files (walked recursively; *.json and
//     *.json.gz), such as a checkout of github/advisory-database;
//   - an osv.dev all.zip, for one ecosystem (<ECOSYSTEM>/all.zip) or for all
//     of them (flat <ID>.json entries);
//   - the vuln.go.dev layout (index/db.json, index/vulns.json,
//     index/modules.json, ID/<id>.json or ID/<id>.json.gz), as a directory
//     or as the vulndb.zip that holds it;
//   - optionally, CISA's Known Exploited Vulnerabilities catalog (JSON feed)
//     and FIRST's EPSS scores (CSV, gzipped or not).
//
// The kind of a path is detected (see Detect). OpenDir reads the layout that
// package dbupdate writes under a data directory.
//
// # Errors
//
// A record that cannot be read or breaks the OSV schema is skipped and
// reported as a LoadError that names the file, the record id and the
// reason; it never stops the other records from loading. An invalid
// affected entry (a range of an unknown type, an empty version...) does
// not stop the record's other entries either: the record loads without
// it, and a LoadError names the entry ("affected[1]: ..."); only a record
// none of whose affected entries is valid is skipped. Likewise a range
// that cannot be read leaves out only itself when its entry has other
// ranges or versions ("affected[0]: ranges[1]: ..."), and a blank alias
// only itself. Load fails only
// when no source could be read at all. A source of the wrong kind (a file
// named .zip that is not a zip archive, a text or HTML file given as a
// record) is named as such.
//
// A withdrawn record is loaded and counted (Stats.Withdrawn) but its
// affected entries are not checked: it never matches, and the databases
// withdraw records by emptying them. An affected entry with neither ranges
// nor versions is valid OSV and affects no version; it is not a problem.
//
// # Severity
//
// A record's severity is its own best rating (CVSS v4 over v3.x over
// GitHub's qualitative one) or, when it states none, the best rating of the
// records of the same vulnerability: those that are or name one of its
// ids. Go's records carry no CVSS; the GHSA records that osv.dev exports
// beside them, naming the same CVE, rate them. Severity.Source names the
// record a rating came from.
//
// # Matching
//
// Version ranges are evaluated as the OSV schema's "Evaluation" section
// says: events sorted by version, introduced/fixed/last_affected toggling
// the state, limit events bounding the range, plus exact versions[] entries.
// Versions are ordered by github.com/google/osv-scalibr/semantic: SEMVER
// ranges by SemVer 2.0, ECOSYSTEM ranges by the ecosystem's own rules (PEP
// 440 for PyPI, Maven's ComparableVersion, NuGet, RubyGems, ...). GIT ranges
// are not evaluated: such records match through their versions[] list.
// Every bound is parsed once, at load, and the bounds of each package are
// sorted into segments that list the records affected there, so that a
// lookup parses its version once and binary-searches (see pkgIndex).
// Withdrawn records are loaded (Get finds them) but never match.
//
// Go versions are normalised: module versions may carry "v" (v1.2.3,
// pseudo-versions, +incompatible), and the standard library and toolchain
// ("stdlib", "toolchain") may be written go1.21.3, go1.21, go1.21rc2 or
// 1.21.3; OSV writes them as SemVer without a prefix.
package vulndb
