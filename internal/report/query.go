package report

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/evidentsec/evident/internal/assess"
)

// FindingQuery selects and orders findings: the filters and sort of the
// HTTP API's findings list and of the web UI's findings table, read from
// the same query parameters. An empty field does not filter.
type FindingQuery struct {
	Service string
	Verdict string
	Tier    string
	// Exposure is the exposure level of the finding's service.
	Exposure string
	// Vulnerability is an id or alias.
	Vulnerability string
	// KEV is "true" (known exploited) or "false" (the others).
	KEV string
	// Text is found, ignoring case, in the vulnerability's id or
	// aliases, the package or the service.
	Text string
	// Sort is one of FindingSorts; empty is priority.
	Sort string
}

// FindingParams are the query parameters of a FindingQuery.
var FindingParams = []string{"service", "verdict", "tier", "exposure", "vulnerability", "kev", "q", "sort"}

// FindingSorts are the orders of findings; priority is the assessment's
// own (assess.ByPriority), and every other order falls back to it, so
// each is total.
var FindingSorts = []string{"priority", "score", "service", "vulnerability", "verdict"}

// FindingKey is a finding's place in every order of FindingSorts, as a
// cursor can hold it.
type FindingKey struct {
	assess.Rank
	Verdict assess.Verdict `json:"verdict"`
}

// KeyOf returns the assessment's key.
func KeyOf(a assess.Assessment) FindingKey {
	return FindingKey{Rank: a.Rank(), Verdict: a.Reachability.Verdict}
}

// findingOrders compare keys in each order of FindingSorts.
var findingOrders = map[string]func(a, b FindingKey) int{
	"priority": func(a, b FindingKey) int { return a.Rank.Compare(b.Rank) },
	"score": func(a, b FindingKey) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), a.Rank.Compare(b.Rank))
	},
	"service": func(a, b FindingKey) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), a.Rank.Compare(b.Rank))
	},
	"vulnerability": func(a, b FindingKey) int {
		return cmp.Or(cmp.Compare(a.Vulnerability, b.Vulnerability), a.Rank.Compare(b.Rank))
	},
	"verdict": func(a, b FindingKey) int {
		return cmp.Or(cmp.Compare(slices.Index(assess.Verdicts, a.Verdict), slices.Index(assess.Verdicts, b.Verdict)), a.Rank.Compare(b.Rank))
	},
}

// ErrNoKEV refuses a kev filter when no KEV catalog is loaded.
var ErrNoKEV = errors.New("no KEV catalog is loaded")

// ParseFindingQuery reads a FindingQuery from query parameters
// (FindingParams); each value outside its domain is an error naming the
// parameter and the values it takes. kevLoaded says whether a CISA KEV
// catalog is loaded: without one no finding is marked known exploited,
// so kev=true would list none and kev=false all, whatever is exploited;
// either is an error wrapping ErrNoKEV that says how to load one.
func ParseFindingQuery(q url.Values, kevLoaded bool) (FindingQuery, error) {
	fq := FindingQuery{
		Service: q.Get("service"), Verdict: q.Get("verdict"), Tier: q.Get("tier"), Exposure: q.Get("exposure"),
		Vulnerability: q.Get("vulnerability"), KEV: q.Get("kev"), Text: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort"),
	}
	kev := OneOf(q, "kev", []string{"true", "false"})
	if kev == nil && fq.KEV != "" && !kevLoaded {
		kev = fmt.Errorf(`kev %q: %w, so no finding is known to be exploited or not: run "evident db update", which fetches CISA's catalog into <data>/vulndb/kev.json, and restart evident serve (with --vulns, or for a catalog elsewhere, name it with --kev FILE)`, fq.KEV, ErrNoKEV)
	}
	err := errors.Join(
		OneOf(q, "verdict", assess.Verdicts),
		OneOf(q, "tier", assess.Tiers),
		OneOf(q, "exposure", assess.Exposures),
		kev,
		OneOf(q, "sort", FindingSorts),
	)
	return fq, err
}

// OneOf refuses a value of query parameter name that is not one of
// allowed, naming the parameter and the values it takes. An empty value
// (name=) is no value: it does not filter, as a form's empty field
// submits it; the API's filters and the web UI's take it that way.
func OneOf[T ~string](q url.Values, name string, allowed []T) error {
	v := q.Get(name)
	if v == "" || slices.Contains(allowed, T(v)) {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Errorf("%s %q: want one of %s", name, v, strings.Join(names, ", "))
}

// Values is the query as parameters, the empty ones left out: a
// FindingQuery round-trips through ParseFindingQuery.
func (fq FindingQuery) Values() url.Values {
	q := url.Values{}
	for i, v := range []string{fq.Service, fq.Verdict, fq.Tier, fq.Exposure, fq.Vulnerability, fq.KEV, fq.Text, fq.Sort} {
		if v != "" {
			q.Set(FindingParams[i], v)
		}
	}
	return q
}

// SortName is the query's order, priority when none is given.
func (fq FindingQuery) SortName() string { return cmp.Or(fq.Sort, "priority") }

// Compare orders two keys in the query's order.
func (fq FindingQuery) Compare(a, b FindingKey) int { return findingOrders[fq.SortName()](a, b) }

// Match reports whether an assessment passes the query's filters.
func (fq FindingQuery) Match(a assess.Assessment) bool {
	f := a.Finding
	switch {
	case fq.Service != "" && f.Service != fq.Service,
		fq.Verdict != "" && string(a.Reachability.Verdict) != fq.Verdict,
		fq.Tier != "" && a.Priority.Tier != fq.Tier,
		fq.Exposure != "" && string(a.Exposure.Level) != fq.Exposure,
		fq.KEV != "" && strconv.FormatBool(a.KnownExploited) != fq.KEV,
		fq.Vulnerability != "" && f.Vulnerability.ID != fq.Vulnerability && !slices.Contains(f.Vulnerability.Aliases, fq.Vulnerability):
		return false
	}
	if fq.Text == "" {
		return true
	}
	text := strings.ToLower(fq.Text)
	for _, s := range append([]string{f.Vulnerability.ID, f.Package.Name, f.Package.PURL, f.Service}, f.Vulnerability.Aliases...) {
		if strings.Contains(strings.ToLower(s), text) {
			return true
		}
	}
	return false
}

// Select returns the assessments that match, in the query's order.
func (fq FindingQuery) Select(as []assess.Assessment) []assess.Assessment {
	var out []assess.Assessment
	for _, a := range as {
		if fq.Match(a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b assess.Assessment) int { return fq.Compare(KeyOf(a), KeyOf(b)) })
	return out
}
