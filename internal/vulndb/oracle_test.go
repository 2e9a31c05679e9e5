package vulndb

import (
	"context"
	"slices"
	"testing"

	"github.com/google/osv-scalibr/semantic"

	"github.com/evidentsec/evident/internal/vulndb/vulndbtest"
)

// The functions below evaluate a record the slow, literal way of the OSV
// schema's IsVulnerable pseudocode: every range, every interval, at every
// lookup. TestSegmentIndexMatchesSpec holds the segment index to them.

// includes reports whether the lookup's version is affected.
func (a *affected) includes(lv *lookup) bool {
	if _, ok := a.versions[lv.raw]; ok {
		return true
	}
	if _, ok := a.versions[lv.version]; ok {
		return true
	}
	if len(a.ordered) > 0 {
		if cur := lv.parsed(byEcosystem); cur != nil {
			_, found := slices.BinarySearchFunc(a.ordered, cur, func(b bound, t semantic.Version) int {
				c, _ := b.v.Compare(t)
				return c
			})
			if found {
				return true
			}
		}
	}
	for i := range a.ranges {
		if a.ranges[i].includes(lv) {
			return true
		}
	}
	return false
}

func (r *compiledRange) includes(lv *lookup) bool {
	cur := lv.parsed(r.ord)
	if cur == nil {
		return len(r.limits) == 0 && slices.ContainsFunc(r.intervals, func(iv interval) bool { return iv.lo == nil && iv.hi == nil })
	}
	if len(r.limits) > 0 {
		below := false
		for _, l := range r.limits {
			if c, err := cur.Compare(l.v); err == nil && c < 0 {
				below = true
				break
			}
		}
		if !below {
			return false
		}
	}
	for _, iv := range r.intervals {
		if iv.lo != nil {
			if c, err := cur.Compare(iv.lo.v); err != nil || c < 0 {
				continue
			}
		}
		if iv.hi == nil {
			return true
		}
		c, err := cur.Compare(iv.hi.v)
		if err == nil && (c < 0 || (c == 0 && iv.hiIncl)) {
			return true
		}
	}
	return false
}

// naiveAffecting evaluates every entry of a package directly.
func (db *DB) naiveAffecting(ecosystem, name, version string) []*Vuln {
	eco := canonicalEcosystem(ecosystem)
	pi := db.index[pkgKey{eco, normName(eco, name)}]
	if pi == nil {
		return nil
	}
	lv := newLookup(eco, name, version)
	var out []*Vuln
	for _, a := range pi.entries {
		if !a.vuln.Withdrawn() && a.includes(lv) {
			out = append(out, a.vuln)
		}
	}
	return slices.Compact(out)
}

// TestSegmentIndexMatchesSpec compares Affecting with the literal
// evaluation for every bound of every range in the fixtures and the Go
// snapshot, and for versions just below and above.
func TestSegmentIndexMatchesSpec(t *testing.T) {
	sources := []string{"testdata/records"}
	if p := vulndbtest.GoSnapshotPath(); p != "" && !testing.Short() {
		sources = append(sources, p)
	}
	db, _, err := Load(context.Background(), Options{Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	// Bounds repeat across records (stdlib releases): check each distinct
	// (package, version) once.
	type query struct{ eco, name, version string }
	seen := map[query]bool{}
	checked := 0
	for _, v := range db.All() {
		for _, a := range v.Entry.Affected {
			var versions []string
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					_, ver := eventKind(e)
					// The bound, a pre-release just below it, and a version above.
					versions = append(versions, ver, ver+"-0", ver+".1")
				}
			}
			versions = append(versions, a.Versions...)
			for _, ver := range versions {
				q := query{a.Package.Ecosystem, a.Package.Name, ver}
				if seen[q] {
					continue
				}
				seen[q] = true
				got := db.Affecting(q.eco, q.name, q.version)
				want := db.naiveAffecting(q.eco, q.name, q.version)
				if !slices.Equal(got, want) {
					t.Errorf("Affecting(%s, %s, %s) = %v, literal evaluation says %v", q.eco, q.name, q.version, ids(got), ids(want))
				}
				checked++
			}
		}
	}
	t.Logf("%d lookups checked", checked)
}
