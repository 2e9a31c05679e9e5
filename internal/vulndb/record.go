package vulndb

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
)

// ErrInvalidRecord marks a record that breaks the OSV schema. LoadError
// reasons wrap it.
var ErrInvalidRecord = errors.New("invalid OSV record")

// record is a parsed and validated OSV record with its affected entries
// compiled for lookups.
type record struct {
	vuln     *Vuln
	affected []*affected
	// dropped says what is wrong with each affected entry, range or
	// alias left out of the record ("affected[1]: ranges[0]: no introduced
	// event (only this entry: ...)"), entries first, for the caller to
	// report; the record loaded without them.
	dropped []error
}

// parseRecord decodes one OSV record, validates it and compiles its ranges.
// The error names the field that is wrong; the returned id is the record's
// id when it could be read, for the caller's report. A record with an
// invalid affected entry and a valid one is returned without the invalid
// one, which rec.dropped names; a record none of whose entries is valid is
// an error.
func parseRecord(data []byte) (rec *record, id string, err error) {
	var e osv.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		if d := describe(data[:min(len(data), sniffLen)]); d != "it holds a JSON object" {
			// Name a file of another kind rather than the decoder's
			// complaint about its first byte.
			return nil, "", fmt.Errorf("%w: not an OSV record (a JSON object): %s", ErrInvalidRecord, d)
		}
		if d := notRecord(data); d != "" {
			return nil, "", fmt.Errorf("%w: not an OSV record (a JSON object): %s", ErrInvalidRecord, d)
		}
		// Where the record stops being JSON (line and column; a record
		// cut short ends inside a value) rather than encoding/json's
		// "unexpected end of JSON input"; a value of the wrong type keeps
		// encoding/json's error, which names the field.
		return nil, idOf(data), fmt.Errorf("%w: malformed JSON: %w", ErrInvalidRecord, cmp.Or(telemetry.JSONSyntaxError(data), err))
	}
	if strings.TrimSpace(e.ID) == "" {
		if d := notRecord(data); d != "" {
			return nil, "", fmt.Errorf("%w: not an OSV record (a JSON object): %s", ErrInvalidRecord, d)
		}
		return nil, "", fmt.Errorf("%w: missing id", ErrInvalidRecord)
	}
	v := &Vuln{Entry: &e}
	rec = &record{vuln: v}
	// A withdrawn record never matches (the schema's withdrawn field;
	// osv.dev drops its affected versions, OSV-Scanner skips it), so what
	// it claims to affect is not checked: PyPA withdraws a rejected CVE by
	// emptying its affected entries (PYSEC-2022-15), and such a record is
	// counted as withdrawn, never reported as skipped. Entries that compile
	// are kept, for the knowledge base; the others, and blank aliases,
	// are dropped.
	//
	// An invalid entry of a record that is not withdrawn (a range of an
	// unknown type or without an introduced event, an empty version, a
	// package without a name) is left out, reported, and the record loads
	// with its other entries, which match: refusing the record would leave
	// its valid packages unmatched, a vulnerability missed for a fault in
	// another package's data. Only a record none of whose entries is valid
	// is refused. The entry left out matches no version (evident cannot
	// tell which it meant), and its functions are dropped with it (see
	// osvFunctions). OSV-Scanner's matcher likewise takes the entries one
	// by one (osv-scalibr enricher/vulnmatch/osvlocal, vulns.IsAffected):
	// a range of another type than ECOSYSTEM or SEMVER matches nothing,
	// errors comparing versions are ignored, and one entry never stops
	// the others; it reports nothing ("Assume vulnerability has already
	// been validated"). govulncheck goes the other way
	// for a module whose ranges are none of SEMVER type: every version is
	// affected (golang/vuln internal/semver.Affects). evident does not,
	// because an entry it cannot read says nothing sure about its
	// versions, and a finding for every version of a package would bury
	// the real ones; the warning names the entry instead.
	//
	// Within an entry, a range that cannot be read is left out the same
	// way, and the entry is kept with its other ranges and versions: they
	// still say which versions are affected. An entry none of whose ranges
	// is readable, and that lists no versions, is left out whole. A blank
	// alias names nothing, and is left out of the record it is in.
	withdrawn := v.Withdrawn()
	var entries, ranges []error
	valid := 0
	for i, a := range e.Affected {
		af, bad, err := compileAffected(v, a)
		if err != nil {
			if !withdrawn {
				entries = append(entries, fmt.Errorf("affected[%d]: %w", i, err))
				v.dropped = append(v.dropped, i)
			}
			continue
		}
		valid++
		if af != nil {
			af.index = i
			rec.affected = append(rec.affected, af)
		}
		// As its entries: a withdrawn record matches nothing.
		for _, err := range bad {
			if !withdrawn {
				ranges = append(ranges, fmt.Errorf("affected[%d]: %w (only this range: the entry's other ranges and versions are used)", i, err))
			}
		}
	}
	if valid == 0 && len(entries) > 0 {
		return nil, e.ID, fmt.Errorf("%w: %w", ErrInvalidRecord, errors.Join(entries...))
	}
	for _, err := range entries {
		rec.dropped = append(rec.dropped, fmt.Errorf("%w (only this entry: the record's other entries are used)", err))
	}
	rec.dropped = append(rec.dropped, ranges...)
	for i, a := range e.Aliases {
		if strings.TrimSpace(a) == "" && !withdrawn {
			rec.dropped = append(rec.dropped, fmt.Errorf("aliases[%d]: empty (only this alias: the record is used without it)", i))
		}
	}
	e.Aliases = slices.DeleteFunc(e.Aliases, func(a string) bool { return strings.TrimSpace(a) == "" })
	v.Functions = osvFunctions(&e, v.dropped)
	v.entries = rec.affected
	v.Severity = severityOf(&e)
	return rec, e.ID, nil
}

// compileAffected validates one affected entry and compiles it, without
// the ranges it cannot read, which badRanges names; an entry with nothing
// readable left is an error. It returns
// nil without error for an entry that can match nothing: one that names no
// package, as GIT-only entries may do, and one with neither ranges nor
// versions.
//
// The OSV schema requires neither ranges nor versions (validation/schema.json
// lists no required field in an affected entry; osv-linter's
// RangeHasIntroducedEvent: "It is valid to not have any ranges"), and its
// evaluation affects a version only when a range includes it or versions
// lists it, so such an entry affects no version. OSV-Scanner's matcher
// (osv-scalibr enricher/vulnmatch/osvlocal, vulns.IsAffected) skips the
// entry, even for a package without a version; osv.dev indexes it only for
// queries without a version ("doesn't really make sense", its
// computeAffectedVersions), which evident does not make.
func compileAffected(v *Vuln, a osv.Affected) (af *affected, badRanges []error, err error) {
	eco, name := a.Package.Ecosystem, a.Package.Name
	if eco == "" && name == "" && a.Package.PURL == "" {
		if len(a.Ranges) > 0 && allGit(a.Ranges) {
			return nil, nil, nil
		}
		return nil, nil, errors.New("package: missing ecosystem and name")
	}
	if eco == "" {
		return nil, nil, errors.New("package: missing ecosystem")
	}
	if name == "" {
		return nil, nil, errors.New("package: missing name")
	}
	if len(a.Ranges) == 0 && len(a.Versions) == 0 {
		return nil, nil, nil
	}
	af = &affected{vuln: v, eco: eco, name: name}
	for i, r := range a.Ranges {
		err := validateRange(r)
		var (
			cr compiledRange
			ok bool
		)
		if err == nil {
			cr, ok, err = compileRange(eco, r)
		}
		if err != nil {
			badRanges = append(badRanges, fmt.Errorf("ranges[%d]: %w", i, err))
			continue
		}
		if ok {
			af.ranges = append(af.ranges, cr)
		}
	}
	if len(badRanges) > 0 && len(af.ranges) == 0 && len(a.Versions) == 0 {
		// Nothing readable is left of the entry: it is left out whole,
		// with its functions.
		return nil, nil, errors.Join(badRanges...)
	}
	if len(a.Versions) > 0 {
		af.versions = make(map[string]struct{}, len(a.Versions))
		for i, s := range a.Versions {
			if s == "" {
				return nil, nil, fmt.Errorf("versions[%d]: empty", i)
			}
			af.versions[s] = struct{}{}
			if eco == osv.EcosystemGo {
				// OSV writes Go versions without "v"; SBOMs with it.
				af.versions["v"+s] = struct{}{}
			}
			if b, err := parseVersion(byEcosystem, eco, s); err == nil {
				af.ordered = append(af.ordered, bound{v: b, raw: s})
			}
		}
		sortBounds(af.ordered)
	}
	return af, badRanges, nil
}

// validateRange checks a range against the OSV schema: a known type, a
// repo for GIT, events with exactly one key each, at least one introduced,
// and not both fixed and last_affected.
func validateRange(r osv.Range) error {
	switch r.Type {
	case osv.RangeSemver, osv.RangeEcosystem:
	case osv.RangeGit:
		if r.Repo == "" {
			return errors.New("GIT range without repo")
		}
	case "":
		return errors.New("missing type")
	default:
		return fmt.Errorf("unknown range type %q", r.Type)
	}
	if len(r.Events) == 0 {
		return errors.New("no events")
	}
	var introduced, fixed, lastAffected bool
	for i, e := range r.Events {
		n := 0
		for _, s := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
			if s != "" {
				n++
			}
		}
		switch n {
		case 0:
			return fmt.Errorf("events[%d]: no introduced, fixed, last_affected or limit", i)
		case 1:
		default:
			return fmt.Errorf("events[%d]: more than one of introduced, fixed, last_affected and limit", i)
		}
		introduced = introduced || e.Introduced != ""
		fixed = fixed || e.Fixed != ""
		lastAffected = lastAffected || e.LastAffected != ""
	}
	if !introduced {
		return errors.New("no introduced event")
	}
	if fixed && lastAffected {
		return errors.New("both fixed and last_affected events")
	}
	return nil
}

func allGit(rs []osv.Range) bool {
	for _, r := range rs {
		if r.Type != osv.RangeGit {
			return false
		}
	}
	return true
}

// sortBounds sorts bounds of one ordering.
func sortBounds(bs []bound) {
	slices.SortStableFunc(bs, func(a, b bound) int {
		c, _ := a.v.Compare(b.v)
		return c
	})
}

// osvFunctions lists the functions a record names: the Go symbols of its
// ecosystem_specific imports (one Function per symbol, or one with an empty
// Symbol for an import that names none: the whole package is affected), and
// the affected_functions of GitHub's records for npm, PyPI and Maven. An
// import without a path names no package, and is skipped. The entries at
// the indexes dropped, left out of the record as invalid, list none: their
// functions would otherwise be looked for at the versions of the record's
// other entries (FunctionsAt lists every function when no entry of the
// package includes a version).
func osvFunctions(e *osv.Entry, dropped []int) []Function {
	var out []Function
	for ai, a := range e.Affected {
		if a.EcosystemSpecific == nil || slices.Contains(dropped, ai) {
			continue
		}
		for _, imp := range a.EcosystemSpecific.Imports {
			if imp.Path == "" {
				continue
			}
			base := Function{
				Ecosystem: a.Package.Ecosystem,
				Module:    a.Package.Name,
				Package:   imp.Path,
				GOOS:      imp.GOOS,
				GOARCH:    imp.GOARCH,
				Source:    SourceOSV,
				entries:   []int{ai},
			}
			if len(imp.Symbols) == 0 {
				out = append(out, base)
				continue
			}
			for _, s := range imp.Symbols {
				f := base
				f.Symbol = s
				out = append(out, f)
			}
		}
		for _, s := range a.EcosystemSpecific.AffectedFunctions {
			pkg, sym, ok := splitAffectedFunction(a.Package.Ecosystem, a.Package.Name, strings.TrimSpace(s))
			if !ok {
				continue
			}
			f := Function{Ecosystem: a.Package.Ecosystem, Module: a.Package.Name, Package: pkg, Symbol: sym, Source: SourceOSV, entries: []int{ai}}
			if i := slices.IndexFunc(out, func(have Function) bool {
				return have.Module == f.Module && have.Package == f.Package && have.Symbol == f.Symbol
			}); i >= 0 {
				out[i].entries = append(slices.Clip(out[i].entries), ai)
			} else {
				out = append(out, f)
			}
		}
	}
	return out
}

// splitAffectedFunction splits one of GitHub's affected_functions into the
// code package and the symbol, as attribution names them, for the affected
// package name of ecosystem eco. It reports false for what names no
// function: an empty string (GitHub wrote [""] when it knew none), a name
// without its module (PyPI, Maven), or another ecosystem.
//
//   - npm: "(pkg).func" or "pkg.func" with pkg the affected package; a
//     function written under another package name ("lodash.baseSet" in the
//     lodash-es entry) is taken as a function of the affected package,
//     and a bare name too.
//   - PyPI: "module.path.Class.method" or "module.path.func": the module
//     ends before the first capitalised element after the top-level one,
//     or before the last element. The top-level module may be capitalised
//     (Pillow's PIL), and so may modules below it (PIL.ImageMath,
//     PIL.ImageFont), so the split is a guess: matching takes the dotted
//     name whole and lets the frame's module tell where the module ends
//     (attribution.Func.Matches), so that "PIL.ImageMath.eval", split
//     "PIL" and "ImageMath.eval", matches eval in PIL.ImageMath.
//   - Maven: "java.pkg.Class.method" or "java.pkg.Class": the package ends
//     before the first capitalised element; without one the whole Java
//     package is affected.
func splitAffectedFunction(eco, name, s string) (pkg, sym string, ok bool) {
	if s == "" || strings.ContainsAny(s, " \t") {
		return "", "", false
	}
	switch canonicalEcosystem(eco) {
	case osv.EcosystemNPM:
		if rest, ok := strings.CutPrefix(s, "("); ok {
			p, sym, ok := strings.Cut(rest, ").")
			if !ok || p == "" || sym == "" {
				return "", "", false
			}
			return p, sym, true
		}
		if sym, ok := strings.CutPrefix(s, name+"."); ok && sym != "" {
			return name, sym, true
		}
		if _, sym, ok := strings.Cut(s, "."); ok {
			s = sym
		}
		return name, s, s != ""
	case osv.EcosystemPyPI, osv.EcosystemMaven:
		if strings.ContainsAny(s, "()") {
			return "", "", false
		}
		segs := strings.Split(s, ".")
		if slices.Contains(segs, "") {
			return "", "", false
		}
		upper := func(seg string) bool { return seg[0] >= 'A' && seg[0] <= 'Z' }
		maven := canonicalEcosystem(eco) == osv.EcosystemMaven
		if maven && upper(segs[0]) {
			return "", "", false // a class without its package
		}
		// A Java package is never capitalised; a Python top-level
		// module may be.
		ci := slices.IndexFunc(segs[1:], upper) + 1
		switch {
		case ci > 0:
			return strings.Join(segs[:ci], "."), strings.Join(segs[ci:], "."), true
		case maven:
			return s, "", true // a Java package
		case len(segs) < 2:
			return "", "", false
		}
		return strings.Join(segs[:len(segs)-1], "."), segs[len(segs)-1], true
	}
	return "", "", false
}

// idOf digs the id out of a record that did not decode, so that the report
// can still name it.
func idOf(data []byte) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return ""
	}
	return probe.ID
}

// recordFields are the top-level fields of an OSV record that a file
// meant as one has at least one of.
var recordFields = []string{"id", "modified", "published", "withdrawn", "aliases", "summary", "details", "affected", "schema_version"}

// notRecord says what data is when its first JSON value is an object with
// none of an OSV record's fields: a scanner's report or telemetry given
// as a source of records, which "missing id", or the decoder's complaint
// about the second value of a stream (govulncheck -json, JSON lines),
// would not tell. It returns "" for anything else.
func notRecord(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var top map[string]json.RawMessage
	if dec.Decode(&top) != nil {
		return ""
	}
	for k := range top {
		// encoding/json matches field names in any case.
		if slices.Contains(recordFields, strings.ToLower(k)) {
			return ""
		}
	}
	what := "it holds a JSON object"
	if dec.More() {
		what = "it holds several JSON values (a stream or JSON lines), the first an object"
	}
	if len(top) == 0 {
		return what + " with no fields"
	}
	keys := slices.Sorted(maps.Keys(top))
	if len(keys) > 5 {
		keys = append(keys[:5], "...")
	}
	return fmt.Sprintf("%s with none of an OSV record's fields (id, modified, affected), only %s", what, strings.Join(keys, ", "))
}
