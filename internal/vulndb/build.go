package vulndb

import (
	"cmp"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/knowledge"
)

// build indexes the parsed records: duplicates resolved (the newest
// modified wins, then the first read), aliases both ways, KEV marks, EPSS
// scores, severities borrowed from aliases, knowledge merged, and stats
// counted.
func build(recs []*record, kev *KEVCatalog, epss *EPSS, kb KnowledgeBase, skipped int) *DB {
	db := &DB{
		byID:    make(map[string]*Vuln, len(recs)),
		related: make(map[string][]*Vuln, len(recs)*3),
		index:   make(map[pkgKey]*pkgIndex, len(recs)),
	}
	kept := make(map[string]*record, len(recs))
	for _, r := range recs {
		n := normID(r.vuln.Entry.ID)
		if old, ok := kept[n]; ok && !r.vuln.Entry.Modified.After(old.vuln.Entry.Modified) {
			continue
		}
		kept[n] = r
	}
	order := make([]*record, 0, len(kept))
	for _, r := range kept {
		order = append(order, r)
	}
	slices.SortFunc(order, func(a, b *record) int { return strings.Compare(a.vuln.Entry.ID, b.vuln.Entry.ID) })

	entries := make(map[pkgKey][]*affected, len(order))
	db.vulns = make([]*Vuln, len(order))
	for i, r := range order {
		v := r.vuln
		db.vulns[i] = v
		db.byID[normID(v.Entry.ID)] = v
		seen := map[string]bool{}
		for _, id := range append([]string{v.Entry.ID}, v.Entry.Aliases...) {
			n := normID(id)
			if !seen[n] {
				seen[n] = true
				db.related[n] = append(db.related[n], v)
			}
		}
		// Entries of one record stay adjacent and in id order, which
		// Affecting relies on.
		for _, a := range r.affected {
			eco := canonicalEcosystem(a.eco)
			k := pkgKey{eco, normName(eco, a.name)}
			entries[k] = append(entries[k], a)
		}
	}
	for k, es := range entries {
		db.index[k] = newPkgIndex(es)
	}

	var kevByCVE map[string]*KEVEntry
	if kev != nil {
		kevByCVE = make(map[string]*KEVEntry, len(kev.Vulnerabilities))
		for i := range kev.Vulnerabilities {
			e := &kev.Vulnerabilities[i]
			kevByCVE[normID(e.CVEID)] = e
		}
		db.stats.KEVVersion = kev.CatalogVersion
		db.stats.KEVReleased = kev.DateReleased
		db.stats.KEVCount = len(kev.Vulnerabilities)
	}
	if epss != nil {
		db.stats.EPSSModel = epss.ModelVersion
		db.stats.EPSSDate = epss.Date
		db.stats.EPSSCount = len(epss.Scores)
	}

	for _, r := range order {
		v := r.vuln
		ids := append([]string{v.Entry.ID}, db.Aliases(v.Entry.ID)...)
		for _, id := range ids {
			if e := kevByCVE[normID(id)]; e != nil {
				v.KnownExploited, v.KEV = true, e
				break
			}
		}
		if epss != nil {
			for _, id := range ids {
				if s, ok := epss.Scores[normID(id)]; ok && (v.EPSS == nil || s.Probability > v.EPSS.Probability) {
					v.EPSS = &s
				}
			}
		}
		if v.Severity.Level == LevelUnknown {
			v.Severity = db.aliasSeverity(v, ids)
		}
		if kb != nil {
			mergeKnowledge(v, r, kb.Lookup(ids...))
		}
	}
	db.count(skipped)
	return db
}

// aliasSeverity returns the best severity that the other records of v's
// vulnerability state themselves (never one they borrowed): the records
// that are or name one of ids. That reaches a GHSA record which names only
// the CVE that a GO record names too. Ties go to the lowest id.
func (db *DB) aliasSeverity(v *Vuln, ids []string) Severity {
	best := Severity{Level: LevelUnknown}
	seen := map[*Vuln]bool{v: true}
	for _, id := range ids {
		for _, peer := range db.related[normID(id)] {
			if seen[peer] {
				continue
			}
			seen[peer] = true
			s := severityOf(peer.Entry)
			r := severityRank(s)
			if r != rankNone && cmp.Or(cmp.Compare(r, severityRank(best)), cmp.Compare(s.Score, best.Score), strings.Compare(best.Source, s.Source)) > 0 {
				best = s
			}
		}
	}
	return best
}

// mergeKnowledge appends the knowledge base's functions for the packages
// the record affects, skipping any the record already names.
func mergeKnowledge(v *Vuln, r *record, entries []knowledge.Entry) {
	for _, e := range entries {
		eco := canonicalEcosystem(e.Ecosystem)
		pkg := normName(eco, e.Package)
		if !slices.ContainsFunc(r.affected, func(a *affected) bool {
			ae := canonicalEcosystem(a.eco)
			return ae == eco && normName(ae, a.name) == pkg
		}) {
			continue
		}
		for _, f := range e.Functions {
			fn := Function{
				Ecosystem: e.Ecosystem,
				Module:    e.Package,
				Package:   f.Package,
				File:      f.File,
				Symbol:    f.Symbol,
				Source:    SourceKnowledge,
				Reference: f.Reference,
			}
			if slices.ContainsFunc(v.Functions, func(have Function) bool {
				return have.Ecosystem == fn.Ecosystem && have.Module == fn.Module && have.Package == fn.Package && have.File == fn.File && have.Symbol == fn.Symbol
			}) {
				continue
			}
			v.Functions = append(v.Functions, fn)
		}
	}
}

// count fills db.stats.
func (db *DB) count(skipped int) {
	s := &db.stats
	s.Records = len(db.vulns)
	s.Skipped = skipped
	s.Ecosystems = make(map[string]EcosystemStats)
	for _, v := range db.vulns {
		var osvFn, kbFn bool
		for _, f := range v.Functions {
			osvFn = osvFn || f.Source == SourceOSV
			kbFn = kbFn || f.Source == SourceKnowledge
		}
		add := func(n *int, ok bool) {
			if ok {
				*n++
			}
		}
		add(&s.WithSymbols, osvFn)
		add(&s.WithKnowledge, kbFn)
		add(&s.KnownExploited, v.KnownExploited)
		add(&s.Withdrawn, v.Withdrawn())
		if v.Entry.Modified.After(s.LastModified) {
			s.LastModified = v.Entry.Modified
		}
		seen := map[string]bool{}
		for i, a := range v.Entry.Affected {
			eco := canonicalEcosystem(a.Package.Ecosystem)
			if eco == "" || seen[eco] || slices.Contains(v.dropped, i) {
				continue
			}
			seen[eco] = true
			es := s.Ecosystems[eco]
			es.Records++
			add(&es.WithSymbols, osvFn)
			add(&es.WithKnowledge, kbFn)
			add(&es.KnownExploited, v.KnownExploited)
			add(&es.Withdrawn, v.Withdrawn())
			s.Ecosystems[eco] = es
		}
	}
}
