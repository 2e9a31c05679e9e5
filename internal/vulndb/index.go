package vulndb

import (
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// pkgIndex answers lookups for one OSV package.
//
// Evaluating every range of every record at each lookup costs hundreds of
// version comparisons for a package like Go's stdlib (hundreds of records);
// instead the distinct bounds of all its ranges are sorted once, cutting the
// version line into segments (below the first bound, at it, between it and
// the next, ...), and each segment lists the records affected there. A
// lookup is then one binary search: O(log bounds) comparisons.
type pkgIndex struct {
	// entries are the affected entries for the package, records in id
	// order (FixedVersion reads their fixes).
	entries []*affected
	// exact are the entries with a versions[] list, matched by string.
	exact []*affected
	// orders holds one segment index per ordering the ranges use.
	orders []*segmentIndex
}

// segmentIndex cuts the version line at points; segment 2i+1 is "at
// points[i]", segment 2i is "between points[i-1] and points[i]" (segment 0
// below all, segment 2n above all).
type segmentIndex struct {
	ord    ordering
	points []bound
	// segs[k] lists the records affected in segment k, sorted by id.
	segs [][]*Vuln
	// always lists the records with a range that has no bounds at all.
	always []*Vuln
	// ranks maps each bound's string to its point's index; only needed
	// while building.
	ranks map[string]int
}

func compareBound(a bound, v semantic.Version) int {
	c, _ := a.v.Compare(v)
	return c
}

// segment returns the segment of v.
func (s *segmentIndex) segment(v semantic.Version) int {
	i, found := slices.BinarySearchFunc(s.points, v, compareBound)
	if found {
		return 2*i + 1
	}
	return 2 * i
}

// rank returns the index of a bound known to be among the points.
func (s *segmentIndex) rank(b *bound) int {
	return s.ranks[b.raw]
}

// newPkgIndex builds the index of one package from its entries, which come
// in record id order with each record's entries adjacent. Withdrawn records
// are left out: they never match.
func newPkgIndex(entries []*affected) *pkgIndex {
	pi := &pkgIndex{entries: entries}
	for _, a := range entries {
		if len(a.versions) > 0 && !a.vuln.Withdrawn() {
			pi.exact = append(pi.exact, a)
		}
	}
	for _, ord := range []ordering{bySemver, byEcosystem} {
		if s := newSegmentIndex(ord, entries); s != nil {
			pi.orders = append(pi.orders, s)
		}
	}
	return pi
}

func newSegmentIndex(ord ordering, entries []*affected) *segmentIndex {
	s := &segmentIndex{ord: ord}
	// Equal strings are equal versions: sort one bound per distinct string
	// (far fewer than bounds: stdlib ranges repeat the same releases), then
	// rank strings by position, merging versions that compare equal.
	first := map[string]*bound{}
	note := func(b *bound) {
		if _, ok := first[b.raw]; !ok {
			first[b.raw] = b
		}
	}
	used := false
	for _, a := range entries {
		if a.vuln.Withdrawn() {
			continue
		}
		for i := range a.ranges {
			r := &a.ranges[i]
			if r.ord != ord {
				continue
			}
			used = true
			for _, iv := range r.intervals {
				if iv.lo != nil {
					note(iv.lo)
				}
				if iv.hi != nil {
					note(iv.hi)
				}
			}
			for j := range r.limits {
				note(&r.limits[j])
			}
		}
		if ord == byEcosystem && len(a.ordered) > 0 {
			used = true
			for j := range a.ordered {
				note(&a.ordered[j])
			}
		}
	}
	if !used {
		return nil
	}
	distinct := make([]bound, 0, len(first))
	for _, b := range first {
		distinct = append(distinct, *b)
	}
	sortBounds(distinct)
	s.ranks = make(map[string]int, len(distinct))
	for i, b := range distinct {
		if i == 0 || compareBound(s.points[len(s.points)-1], b.v) != 0 {
			s.points = append(s.points, b)
		}
		s.ranks[b.raw] = len(s.points) - 1
	}

	n := len(s.points)
	s.segs = make([][]*Vuln, 2*n+1)
	add := func(v *Vuln, from, to int) {
		for k := from; k <= to; k++ {
			if seg := s.segs[k]; len(seg) == 0 || seg[len(seg)-1] != v {
				s.segs[k] = append(seg, v)
			}
		}
	}
	for _, a := range entries {
		if a.vuln.Withdrawn() {
			continue
		}
		for i := range a.ranges {
			r := &a.ranges[i]
			if r.ord != ord {
				continue
			}
			// A version must be below some limit: below the highest.
			limit := 2 * n
			if len(r.limits) > 0 {
				top := 0
				for j := range r.limits {
					top = max(top, s.rank(&r.limits[j]))
				}
				limit = 2 * top
			}
			for _, iv := range r.intervals {
				if iv.lo == nil && iv.hi == nil && len(r.limits) == 0 {
					if k := len(s.always); k == 0 || s.always[k-1] != a.vuln {
						s.always = append(s.always, a.vuln)
					}
				}
				from, to := 0, 2*n
				if iv.lo != nil {
					from = 2*s.rank(iv.lo) + 1
				}
				if iv.hi != nil {
					to = 2 * s.rank(iv.hi)
					if iv.hiIncl {
						to++
					}
				}
				add(a.vuln, from, min(to, limit))
			}
		}
		if ord == byEcosystem {
			for j := range a.ordered {
				k := 2*s.rank(&a.ordered[j]) + 1
				add(a.vuln, k, k)
			}
		}
	}
	s.ranks = nil
	// Neighbouring segments often list the same records: share them.
	for k := 1; k < len(s.segs); k++ {
		if slices.Equal(s.segs[k], s.segs[k-1]) {
			s.segs[k] = s.segs[k-1]
		}
	}
	return s
}

// affecting returns the records affected at the lookup's version, sorted by
// id; the slice is the caller's.
func (pi *pkgIndex) affecting(lv *lookup) []*Vuln {
	var out []*Vuln
	for _, s := range pi.orders {
		switch cur := lv.parsed(s.ord); {
		case cur != nil:
			out = append(out, s.segs[s.segment(cur)]...)
		default:
			// Ranges without bounds ({"introduced": "0"} alone) affect
			// every version, even one that cannot be ordered.
			out = append(out, s.always...)
		}
	}
	merged := len(pi.orders) > 1
	for _, a := range pi.exact {
		_, raw := a.versions[lv.raw]
		_, norm := a.versions[lv.version]
		if raw || norm {
			out = append(out, a.vuln)
			merged = true
		}
	}
	if merged {
		slices.SortFunc(out, func(a, b *Vuln) int { return strings.Compare(a.Entry.ID, b.Entry.ID) })
		out = slices.Compact(out)
	}
	return out
}
