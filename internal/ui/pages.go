package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/httpapi"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/waf"
)

// exportLink is a download button: the format's name, where it is
// served and the file it is saved as.
type exportLink struct{ Name, Path, File string }

// exports are the report formats, each a download button: the API's
// exports, and the UI's own (export) for those the API has no route for.
var exports = []exportLink{
	{"JSON", "/api/v1/report", "evident-report.json"},
	{"SARIF", "/api/v1/export/sarif", "evident.sarif"},
	{"OpenVEX", "/api/v1/export/openvex", "evident.openvex.json"},
	{"CycloneDX", "/api/v1/export/cyclonedx", "evident.cdx.json"},
	{"Markdown", "/ui/export/markdown", "evident.md"},
	{"Text table", "/ui/export/table", "evident.txt"},
}

// export renders the result in the formats the API has no route for:
// Markdown (a pull-request comment) and the text table.
func (u *UI) export(w http.ResponseWriter, r *http.Request, src Source) {
	format := r.PathValue("format")
	i := slices.IndexFunc(exports, func(e exportLink) bool { return e.Path == "/ui/export/"+format })
	if i < 0 {
		u.fail(w, r, http.StatusNotFound, "No export %q here: the API serves the other formats (/api/v1/report, /api/v1/export/...).", format)
		return
	}
	f, err := report.Lookup(format, report.Options{Products: u.deps.Products, Warn: func(err error) {
		u.deps.Logger.Warn("ui: export", "format", format, "err", err)
	}})
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "%v", err)
		return
	}
	var buf bytes.Buffer
	if err := f.Write(&buf, src.Result()); err != nil {
		u.fail(w, r, http.StatusInternalServerError, "Render %s: %v", format, err)
		return
	}
	ct := "text/plain; charset=utf-8"
	if format == "markdown" {
		ct = "text/markdown; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	// Every finding of the tenant, as the API's exports (no-store there
	// too): not for caches on the way.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="`+exports[i].File+`"`)
	w.Write(buf.Bytes())
}

// overviewData is the overview page.
type overviewData struct {
	Generated time.Time
	Summary   report.JSONSummary
	Tiers     []string
	Verdicts  []assess.Verdict
	// Matrix counts findings by tier (rows) and verdict (columns), with
	// the totals of each.
	Matrix                    [][]int
	TierTotals, VerdictTotals []int
	// DecidedReduction is the cut among decided findings; empty when
	// none is decided.
	DecidedReduction string
	// Changes are the newest changes since ChangesSince, OlderChanges
	// the others; ChangeCounts counts them all by the verdict they went
	// to.
	Changes, OlderChanges []change
	ChangeTotal           int
	ChangeCounts          []verdictCount
	// ChangesSince is the start of "since yesterday".
	ChangesSince time.Time
	Exposure     []exposureGroup
	Freshness    []freshness
	// Checks are the polled sources' health: "ok" or the error.
	Checks  []sourceCheck
	Exports []exportLink
	Now     time.Time
}

// verdictCount is a number of findings with a verdict.
type verdictCount struct {
	Verdict assess.Verdict
	N       int
}

// shownChanges is how many changes the overview lists before folding
// the older ones away.
const shownChanges = 8

// change is a finding's verdict change.
type change struct {
	store.VerdictChange
	FindingID string
}

type exposureGroup struct {
	Level    assess.Exposure
	Services []serviceRow
}

type serviceRow struct {
	Name     string
	Rule     string
	Findings int
	// NeedAction counts its P1 and P2 findings.
	NeedAction int
}

// sourceCheck is the health of a polled source.
type sourceCheck struct {
	Name, Status string
	OK           bool
}

// freshness is when a service's telemetry last arrived.
type freshness struct {
	Service string
	// Last is the newest span or profile of the service.
	Last     time.Time
	Profiles []profileSource
}

// profileSource is the newest window of profiles from one source.
type profileSource struct {
	Source string
	End    time.Time
	// TimeSamples are the samples of its time-sampled profiles (CPU, wall
	// clock), Other those of the others (allocation, contention), apart:
	// a heap profile's thousands of objects beside a few CPU samples
	// would read as a well-sampled service.
	TimeSamples, Other int64
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request, src Source) {
	res := src.Result()
	now := u.deps.Now()
	d := overviewData{
		Generated: res.Generated, Summary: report.SummaryJSON(res.Summary), Tiers: assess.Tiers, Verdicts: assess.Verdicts,
		ChangesSince: now.Add(-24 * time.Hour), Exports: exports, Now: now,
	}
	if d.Summary.DecidedReduction != nil {
		d.DecidedReduction = percent(*d.Summary.DecidedReduction)
	}
	d.VerdictTotals = make([]int, len(assess.Verdicts))
	for _, tier := range assess.Tiers {
		row := make([]int, len(assess.Verdicts))
		total := 0
		for _, a := range res.Assessments {
			if v := slices.Index(assess.Verdicts, a.Reachability.Verdict); a.Priority.Tier == tier && v >= 0 {
				row[v]++
				d.VerdictTotals[v]++
				total++
			}
		}
		d.Matrix = append(d.Matrix, row)
		d.TierTotals = append(d.TierTotals, total)
	}
	recent, err := u.changes.recent(r.Context(), auth.TenantFromContext(r.Context()), src, res, now)
	if err != nil {
		u.fail(w, r, http.StatusServiceUnavailable, "Read the verdict history: %v", err)
		return
	}
	for _, c := range recent {
		if !c.Time.Before(d.ChangesSince) {
			d.Changes = append(d.Changes, c)
		}
	}
	slices.SortStableFunc(d.Changes, func(a, b change) int { return b.Time.Compare(a.Time) })
	d.ChangeTotal = len(d.Changes)
	for _, v := range assess.Verdicts {
		n := 0
		for _, c := range d.Changes {
			if c.To == v && c.From != v {
				n++
			}
		}
		if n > 0 {
			d.ChangeCounts = append(d.ChangeCounts, verdictCount{Verdict: v, N: n})
		}
	}
	if len(d.Changes) > shownChanges {
		d.Changes, d.OlderChanges = d.Changes[:shownChanges], d.Changes[shownChanges:]
	}
	rows := map[string]*serviceRow{}
	for _, a := range res.Assessments {
		row := rows[a.Finding.Service]
		if row == nil {
			row = &serviceRow{Name: a.Finding.Service}
			rows[a.Finding.Service] = row
		}
		row.Findings++
		if a.Priority.Tier == "P1" || a.Priority.Tier == "P2" {
			row.NeedAction++
		}
	}
	services := report.ServicesJSON(res)
	for _, lvl := range assess.Exposures {
		g := exposureGroup{Level: lvl}
		for _, svc := range services {
			if svc.Exposure.Level != lvl {
				continue
			}
			row := serviceRow{Name: svc.Name, Rule: svc.Exposure.Rule}
			if c := rows[svc.Name]; c != nil {
				row.Findings, row.NeedAction = c.Findings, c.NeedAction
			}
			g.Services = append(g.Services, row)
		}
		if len(g.Services) > 0 {
			d.Exposure = append(d.Exposure, g)
		}
	}
	if u.deps.Checks != nil {
		checks := u.deps.Checks()
		for _, name := range slices.Sorted(maps.Keys(checks)) {
			c := sourceCheck{Name: name, Status: "ok", OK: true}
			if err := checks[name]; err != nil {
				c.Status, c.OK = err.Error(), false
			}
			d.Checks = append(d.Checks, c)
		}
	}
	if res.Snapshot != nil {
		for _, svc := range res.Snapshot.Services {
			fr := freshness{Service: svc.Name, Last: svc.Last}
			for _, win := range svc.Windows {
				i := slices.IndexFunc(fr.Profiles, func(p profileSource) bool { return p.Source == win.Source })
				if i < 0 {
					fr.Profiles = append(fr.Profiles, profileSource{Source: win.Source})
					i = len(fr.Profiles) - 1
				}
				p := &fr.Profiles[i]
				if win.TimeSampled {
					p.TimeSamples += win.Samples
				} else {
					p.Other += win.Samples
				}
				if win.End.After(p.End) {
					p.End = win.End
				}
				if win.End.After(fr.Last) {
					fr.Last = win.End
				}
			}
			d.Freshness = append(d.Freshness, fr)
		}
	}
	u.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Live: 5, Data: d})
}

// pageSize is the number of findings on a page of the table.
const pageSize = 25

// filter is the findings table's query: the findings query of the API
// (report.FindingQuery) and a page number, every field a query
// parameter, so a view of the table is a link.
type filter struct {
	report.FindingQuery
	Page int
}

// parseFilter reads a filter from a query; a value outside its domain is
// an error naming the parameter, the same as the API's.
// A parameter the table does not take, or one given twice, is refused
// as the API refuses it (httpapi.CheckQuery), not silently ignored, and
// so is a kev filter without a KEV catalog (kevLoaded false).
func parseFilter(q url.Values, kevLoaded bool) (filter, error) {
	fq, err := report.ParseFindingQuery(q, kevLoaded)
	f := filter{FindingQuery: fq, Page: 1}
	if cerr := httpapi.CheckQuery(q, filterParams); cerr != nil {
		return f, cerr
	}
	if err != nil {
		return f, err
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, fmt.Errorf("page %q: want a page number, 1 or more", v)
		}
		f.Page = n
	}
	return f, nil
}

// filterParams are the parameters of a filter: the API's findings
// query's and the page.
var filterParams = slices.Concat(report.FindingParams, []string{"page"})

// With is the table's URL with a parameter changed (empty: removed; the
// first page is no page); changing anything but the page goes back to
// the first page.
func (f filter) With(kv ...string) string {
	q := f.values()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] != "page" {
			q.Del("page")
		}
		if kv[i+1] == "" || kv[i] == "page" && kv[i+1] == "1" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return "/ui/findings"
	}
	return "/ui/findings?" + q.Encode()
}

func (f filter) values() url.Values {
	q := f.FindingQuery.Values()
	if f.Page > 1 {
		q.Set("page", strconv.Itoa(f.Page))
	}
	return q
}

// findingsData is the findings page.
type findingsData struct {
	Filter   filter
	Error    string
	Findings []report.JSONFinding
	// Total is the number of findings that match, First and Last the
	// positions (1-based) of those on this page.
	Total, First, Last int
	Pages              int
	Services           []string
	Tiers              []string
	Verdicts           []assess.Verdict
	Exposures          []assess.Exposure
	Sorts              []string
	Exports            []exportLink
	// KEV says whether a KEV catalog is loaded: without one, a finding
	// that is not marked known exploited may still be.
	KEV bool
}

func (u *UI) findings(w http.ResponseWriter, r *http.Request, src Source) {
	res := src.Result()
	d := findingsData{Tiers: assess.Tiers, Verdicts: assess.Verdicts, Exposures: assess.Exposures, Sorts: report.FindingSorts, Exports: exports, KEV: u.deps.KEV}
	for _, a := range res.Assessments {
		if !slices.Contains(d.Services, a.Finding.Service) {
			d.Services = append(d.Services, a.Finding.Service)
		}
	}
	slices.Sort(d.Services)
	f, err := parseFilter(r.URL.Query(), u.deps.KEV)
	d.Filter = f
	if err != nil {
		d.Error = err.Error()
		u.render(w, r, http.StatusBadRequest, "findings", page{Title: "Findings", Nav: "findings", Data: d})
		return
	}
	matched := f.Select(res.Assessments)
	d.Total = len(matched)
	d.Pages = max(1, (d.Total+pageSize-1)/pageSize)
	if f.Page > d.Pages {
		d.Error = fmt.Sprintf("page %d: there are %d", f.Page, d.Pages)
		u.render(w, r, http.StatusNotFound, "findings", page{Title: "Findings", Nav: "findings", Data: d})
		return
	}
	start := (f.Page - 1) * pageSize
	for _, a := range matched[start:min(start+pageSize, len(matched))] {
		d.Findings = append(d.Findings, report.FindingJSON(a))
	}
	d.First, d.Last = start+1, start+len(d.Findings)
	u.render(w, r, http.StatusOK, "findings", page{Title: "Findings", Nav: "findings", Live: 5, Data: d})
}

// findingData is a finding's page.
type findingData struct {
	F       report.JSONFinding
	Reasons []reason
	Flame   *flameGraph
	// Series are the vulnerable functions' samples per minute.
	Series []seriesChart
	// Endpoints are the endpoints (and other spans) whose samples held
	// the vulnerable code, heaviest first.
	Endpoints []endpointSamples
	// Bound says the rule-of-three bound in words.
	Bound   string
	History []store.VerdictChange
	Patch   *waf.Patch
	// NoPatch says why there is no patch.
	NoPatch string
}

// reason is one of the priority's reasons with its points.
type reason struct {
	Points int
	Text   string
}

// endpointSamples is an endpoint's share of a finding's samples.
type endpointSamples struct {
	Name                 string
	Samples, TimeSamples int64
	// Width is the bar's width, of 200: of the time samples, or of
	// every profile's samples when no endpoint has time samples.
	Width float64
}

func (u *UI) finding(w http.ResponseWriter, r *http.Request, src Source) {
	res := src.Result()
	id := r.PathValue("id")
	i := slices.IndexFunc(res.Assessments, func(a assess.Assessment) bool { return report.FindingID(a.Finding) == id })
	if i < 0 {
		u.fail(w, r, http.StatusNotFound, "No finding %q: it may have been replaced by a newer scanner report.", id)
		return
	}
	a := res.Assessments[i]
	d := findingData{F: report.FindingJSON(a), Flame: newFlameGraph(a.Reachability), Series: newSeriesCharts(a.Reachability), Bound: boundText(a.Reachability)}
	for _, s := range a.Priority.Reasons {
		d.Reasons = append(d.Reasons, parseReason(s))
	}
	d.Endpoints = endpointsOf(a.Reachability.Evidence)
	hist, err := src.VerdictHistory(r.Context(), a.Finding.Service, a.Finding.Vulnerability.ID, 50)
	if err != nil {
		u.fail(w, r, http.StatusServiceUnavailable, "Read the verdict history: %v", err)
		return
	}
	for _, c := range hist {
		if c.PURL == a.Finding.Package.PURL {
			d.History = append(d.History, c)
		}
	}
	d.Patch, d.NoPatch = u.patchOf(r, res, a)
	title := a.Finding.Vulnerability.ID + " in " + a.Finding.Service
	u.render(w, r, http.StatusOK, "finding", page{Title: title, Nav: "findings", Live: 10, Data: d})
}

// patchOf finds the virtual patch of a finding, or says why it has none.
func (u *UI) patchOf(r *http.Request, res *report.Result, a assess.Assessment) (*waf.Patch, string) {
	if a.Reachability.Verdict != assess.Executed || a.Exposure.Level != assess.Exposed {
		return nil, "evident writes virtual patches for findings whose vulnerable code was executed in an exposed service; this one is " +
			string(a.Reachability.Verdict) + " in a service that is " + string(a.Exposure.Level) + "."
	}
	if u.deps.Patches == nil {
		return nil, "Virtual patches are not configured."
	}
	set, err := u.deps.Patches(r.Context(), res)
	if err != nil {
		return nil, "The patches could not be generated: " + err.Error()
	}
	for i, p := range set.Patches {
		if p.Service == a.Finding.Service && p.Vulnerability == a.Finding.Vulnerability.ID {
			return &set.Patches[i], ""
		}
	}
	for _, s := range set.Skipped {
		if s.Service == a.Finding.Service && s.Vulnerability == a.Finding.Vulnerability.ID {
			return nil, "No patch: " + s.Reason
		}
	}
	return nil, "No patch was written for this finding."
}

// parseReason splits "+25 severity high" into its points and text.
func parseReason(s string) reason {
	head, rest, ok := strings.Cut(s, " ")
	if n, err := strconv.Atoi(head); ok && err == nil {
		return reason{Points: n, Text: rest}
	}
	return reason{Text: s}
}

// endpointsOf sums the samples of each endpoint and span over the
// vulnerable functions.
func endpointsOf(ev []assess.FunctionEvidence) []endpointSamples {
	sum := map[string]*endpointSamples{}
	for _, e := range ev {
		for _, ns := range append(slices.Clone(e.Endpoints), e.SpanNames...) {
			if sum[ns.Name] == nil {
				sum[ns.Name] = &endpointSamples{Name: ns.Name}
			}
			sum[ns.Name].Samples += ns.Samples
			sum[ns.Name].TimeSamples += ns.TimeSamples
		}
	}
	var out []endpointSamples
	var top, topTimed int64
	for _, e := range sum {
		out = append(out, *e)
		top, topTimed = max(top, e.Samples), max(topTimed, e.TimeSamples)
	}
	slices.SortFunc(out, func(a, b endpointSamples) int {
		return cmp.Or(cmp.Compare(b.TimeSamples, a.TimeSamples), cmp.Compare(b.Samples, a.Samples), cmp.Compare(a.Name, b.Name))
	})
	for i := range out {
		// An allocation profile's objects would outweigh the CPU
		// samples of an endpoint a thousandfold. No samples to share
		// out: bars of no width, not NaN.
		switch {
		case topTimed > 0:
			out[i].Width = 200 * float64(out[i].TimeSamples) / float64(topTimed)
		case top > 0:
			out[i].Width = 200 * float64(out[i].Samples) / float64(top)
		}
	}
	return out
}

// boundText explains a verdict's rule-of-three bound in words.
func boundText(r assess.Reachability) string {
	b := r.Bound
	if b == nil {
		switch r.Verdict {
		case assess.Executed:
			if r.TimeSamples == 0 {
				// Seen in allocation or contention profiles only, whose
				// objects and waits are no samples of the service's time.
				return fmt.Sprintf("No bound is needed: the vulnerable code was seen running, in no sample of time but in %d samples of other profiles (allocation, contention).", r.Samples)
			}
			return fmt.Sprintf("No bound is needed: the vulnerable code was seen running, in %d profile samples.", r.TimeSamples)
		default:
			return "No bound: without enough samples of the service's time (CPU or wall-clock profiles) there is nothing to bound anything with; allocation and contention profiles show code that ran, not code that did not."
		}
	}
	what := "the vulnerable package"
	if r.Verdict == assess.Loaded {
		what = "the vulnerable functions"
	}
	// A CPU profile's share is of the service's CPU; a wall-clock or
	// count profile's, of its samples (assess.Bound).
	share := fmt.Sprintf("been on the stack in more than %s of the service's samples", percent(b.Share))
	switch {
	case b.CPUSeconds > 0:
		share = fmt.Sprintf("used more than %s of the service's CPU (about %s of CPU time)", percent(b.Share), duration(b.CPUSeconds))
	case b.CPU:
		share = fmt.Sprintf("used more than %s of the service's CPU", percent(b.Share))
	}
	return fmt.Sprintf("The service's time-sampled profiles took %d samples over %s of observation, and none of them had %s on its stack. "+
		"Sampling can miss code, but not much of it: had %s %s, "+
		"at least one of the %d samples would have caught it with 95%% confidence (the rule of three: 3 / %d). "+
		"So %s may still run, but rarely or briefly; more samples make the bound tighter.",
		b.Samples, duration(b.WindowSeconds), what, what, share, b.Samples, b.Samples, what)
}

// mapData is the runtime map page.
type mapData struct {
	Graph    *graphLayout
	Services []report.JSONService
}

func (u *UI) runtimeMap(w http.ResponseWriter, r *http.Request, src Source) {
	res := src.Result()
	d := mapData{Graph: layoutGraph(res), Services: report.ServicesJSON(res)}
	u.render(w, r, http.StatusOK, "map", page{Title: "Runtime map", Nav: "map", Live: 10, Data: d})
}

// serviceData is a service's page: its Runtime BOM.
type serviceData struct {
	S report.JSONService
	// Telemetry says whether the runtime model holds the service; a
	// service without is known from its findings only.
	Telemetry bool
	Findings  []report.JSONFinding
	// Edges are the calls to other services, with their rates.
	Edges []graphEdge
}

func (u *UI) service(w http.ResponseWriter, r *http.Request, src Source) {
	res := src.Result()
	name := r.PathValue("name")
	if name == "" {
		name = r.URL.Query().Get("name") // servicePath's form of a dot segment
	}
	services := report.ServicesJSON(res)
	i := slices.IndexFunc(services, func(s report.JSONService) bool { return s.Name == name })
	d := serviceData{Telemetry: i >= 0}
	if i >= 0 {
		d.S = services[i]
	}
	for _, a := range res.Assessments {
		if a.Finding.Service == name {
			d.Findings = append(d.Findings, report.FindingJSON(a))
			if i < 0 && d.S.Name == "" {
				d.S = report.JSONService{Name: name, Exposure: a.Exposure}
			}
		}
	}
	// A service known from an uploaded report only, before its first
	// span or profile, has a page: the findings table links to it.
	if i < 0 && len(d.Findings) == 0 {
		u.fail(w, r, http.StatusNotFound, "No service %q in the runtime model or the findings.", name)
		return
	}
	// The graph's edges to stores are listed as the service's stores.
	for _, e := range layoutGraph(res).Edges {
		if e.From == name && slices.ContainsFunc(services, func(s report.JSONService) bool { return s.Name == e.To }) {
			d.Edges = append(d.Edges, e)
		}
	}
	u.render(w, r, http.StatusOK, "service", page{Title: name, Nav: "map", Live: 10, Data: d})
}

// alertsData is the alerts page.
type alertsData struct {
	Service, Kind string
	Kinds         []string
	// Error says why the query was refused.
	Error  string
	Alerts []alertRow
}

// alertRow is an alert with the page that shows its evidence.
type alertRow struct {
	store.Alert
	Evidence string
	// EvidenceJSON is the detection's evidence, indented.
	EvidenceJSON string
}

// alertKinds are the kinds of alert the detections fire (docs/detections.md).
var alertKinds = func() []string {
	ks := make([]string, len(detect.Kinds))
	for i, k := range detect.Kinds {
		ks[i] = string(k)
	}
	return ks
}()

// alerts reads its filters as the API's alerts list does
// (httpapi.ParseAlertQuery): a mistyped kind is a 400 with the API's
// words, not "No alert matches", which would read as an all-clear.
func (u *UI) alerts(w http.ResponseWriter, r *http.Request, src Source) {
	q := r.URL.Query()
	d := alertsData{Service: q.Get("service"), Kind: q.Get("kind"), Kinds: alertKinds}
	aq, err := httpapi.ParseAlertQuery(q)
	if cerr := httpapi.CheckQuery(q, httpapi.AlertParams); cerr != nil {
		err = cerr
	}
	if err != nil {
		d.Error = err.Error()
		u.render(w, r, http.StatusBadRequest, "alerts", page{Title: "Alerts", Nav: "alerts", Data: d})
		return
	}
	aq.Limit = 200
	as, err := src.Alerts(r.Context(), aq)
	if errors.Is(err, store.ErrInvalid) {
		// A since the store cannot hold (before 1678, after 2262) is
		// the request's fault, a 400 in the API's words, as the API
		// answers it; not the server's 503.
		d.Error = err.Error()
		u.render(w, r, http.StatusBadRequest, "alerts", page{Title: "Alerts", Nav: "alerts", Data: d})
		return
	}
	if err != nil {
		u.fail(w, r, http.StatusServiceUnavailable, "Read the alerts: %v", err)
		return
	}
	for _, a := range as {
		d.Alerts = append(d.Alerts, newAlertRow(a))
	}
	u.render(w, r, http.StatusOK, "alerts", page{Title: "Alerts", Nav: "alerts", Data: d})
}

// newAlertRow links an alert to its evidence: the finding it is about,
// else its service. The script does the same for the alerts that arrive
// live (assets/ui.js, alertRow).
func newAlertRow(a store.Alert) alertRow {
	row := alertRow{Alert: a}
	var details struct {
		Evidence    json.RawMessage `json:"evidence"`
		FindingLink string          `json:"finding_link"`
	}
	if len(a.Details) > 0 && json.Unmarshal(a.Details, &details) == nil {
		// The link of a tenant's alert names the tenant in its query.
		if u, err := url.Parse(details.FindingLink); err == nil && u.Path != "" {
			row.Evidence = "/ui/findings/" + url.PathEscape(path.Base(u.Path))
		}
		if len(details.Evidence) > 0 {
			var v any
			if json.Unmarshal(details.Evidence, &v) == nil {
				b, _ := json.MarshalIndent(v, "", "  ")
				row.EvidenceJSON = string(b)
			}
		}
	}
	if row.Evidence == "" && a.Service != "" {
		row.Evidence = servicePath(a.Service)
	}
	return row
}
