// Package assess joins static findings with the runtime model: for every
// finding and service it decides whether the vulnerable code runs
// (reachability), how the service is reached (exposure) and what it can
// reach (blast radius), and ranks findings by that with the reasons shown.
package assess

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/vulndb"
)

// Verdict is the runtime reachability of a vulnerability in a service.
type Verdict string

// Verdicts, strongest evidence first.
const (
	// Executed: a vulnerable function (or, for a Go import path whose
	// every function the record declares affected, code of it) was seen
	// in profile samples. Never decided on a package alone.
	Executed Verdict = "executed"
	// Loaded: code of the vulnerable package ran and no vulnerable
	// function was seen. At BasisPackage no vulnerable function is known:
	// the package's code ran, which may or may not include the
	// vulnerable code.
	Loaded Verdict = "loaded"
	// NotObserved: the service was profiled and no frame of the
	// vulnerable package was seen.
	NotObserved Verdict = "not_observed"
	// Unknown: no profiles of the service, or too few samples.
	Unknown Verdict = "unknown"
)

// Verdicts lists every verdict in report order.
var Verdicts = []Verdict{Executed, Loaded, NotObserved, Unknown}

// Basis says what a verdict was decided on.
type Basis string

// Bases of a verdict.
const (
	// BasisSymbol: the record, the knowledge base or a static tool names
	// the vulnerable code (functions, or Go import paths whose every
	// function is affected).
	BasisSymbol Basis = "symbol"
	// BasisPackage: nothing names it. Code of the package that ran only
	// shows the package ran: the verdict is then loaded, never executed.
	BasisPackage Basis = "package"
)

// Exposure is how a service can be reached.
type Exposure string

// Exposure levels.
const (
	Exposed         Exposure = "exposed"
	Internal        Exposure = "internal"
	NoInput         Exposure = "no_input"
	ExposureUnknown Exposure = "unknown"
)

// Exposures lists every exposure level, most reachable first.
var Exposures = []Exposure{Exposed, Internal, NoInput, ExposureUnknown}

// Assessment is everything evident concluded about one finding.
type Assessment struct {
	Finding        findings.Finding
	KnownExploited bool
	// EPSS is FIRST's exploit prediction for the finding's CVE, nil when
	// the database has none.
	EPSS         *vulndb.EPSSScore
	Reachability Reachability
	Exposure     ExposureResult
	BlastRadius  []StoreRef
	// BlastRadiusIncomplete, when not empty, says why BlastRadius may
	// lack stores: services on the way reached stores, hosts or
	// messaging destinations beyond the model's bounds, whose names it
	// did not keep ("incomplete: orders sends messages to destinations
	// beyond max_stores (3 calls), whose consumers are not known").
	BlastRadiusIncomplete string
	Priority              Priority
	VEX                   VEX
}

// Reachability is a verdict with the evidence behind it.
type Reachability struct {
	Verdict Verdict
	Basis   Basis
	// Symbols are the vulnerable functions looked for, as
	// "package.Symbol" (or the package alone at package basis).
	Symbols []string
	// Evidence lists the vulnerable functions seen running, heaviest
	// first.
	Evidence []FunctionEvidence
	// Samples is the number of samples with a vulnerable function on
	// the stack (at BasisPackage, with code of the package on it), of
	// every profile: an allocation profile's sampled objects too.
	// TimeSamples counts those of time-sampled profiles
	// (model.Function.TimeSamples), which alone say how much of the
	// service's time the code took.
	Samples, TimeSamples int64
	// Endpoints are the endpoints that led to the vulnerable code.
	Endpoints []string
	// SpanNames are the spans, other than endpoints, whose samples held
	// the vulnerable code (a batch job's root span).
	SpanNames []string
	// Bound is the rule-of-three bound of what could have been missed;
	// set for loaded and not_observed.
	Bound *Bound
	// Reason says in one sentence why the verdict is what it is.
	Reason string
}

// FunctionEvidence is a vulnerable function seen running.
type FunctionEvidence struct {
	Symbol string
	// Samples counts the samples of every profile with the function on
	// the stack, TimeSamples those of time-sampled profiles among them
	// (as Reachability's).
	Samples, TimeSamples int64
	CPUSeconds           float64
	First, Last          time.Time
	Endpoints            []model.NamedSamples
	SpanNames            []model.NamedSamples
	// Stack is an example stack, leaf first, as "package.Symbol".
	Stack []string
	// Series are its time samples in the minutes of the hour up to
	// SeriesEnd, the end of the service's newest time-sampled profile
	// minute, that had any,
	// oldest first (model.Function.Series; model.Hour fills in the
	// others); nil when the model keeps no series of the function
	// (model.Config.MaxSeries).
	Series    []model.Bucket
	SeriesEnd time.Time
}

// Bound is the 95% rule-of-three bound: with S samples any code path
// above a share of 3/S of the service's CPU would have been seen.
type Bound struct {
	Share float64
	// CPU says that the samples are of CPU time (a CPU profile), so that
	// Share is of the service's CPU; otherwise it is of its samples (a
	// wall-clock profile's are of time spent, running or waiting). A bound
	// with CPUSeconds is of CPU too.
	CPU        bool
	CPUSeconds float64
	// WindowSeconds is the time the observation windows cover.
	WindowSeconds float64
	Samples       int64
}

// ExposureResult is an exposure level and the rule that decided it.
type ExposureResult struct {
	Level Exposure `json:"level"`
	Rule  string   `json:"rule"`
}

// StoreRef is a store reachable from a service, with its sensitivity.
type StoreRef struct {
	Name   string
	Kind   string
	Labels []string
	// Via is the chain of services from the assessed one to the service
	// that calls the store.
	Via []string
}

// Vulns looks vulnerabilities up by id or alias.
type Vulns interface {
	Get(idOrAlias string) *vulndb.Vuln
}

// Assessor assesses findings against one snapshot of the runtime model.
type Assessor struct {
	cfg   Config
	vulns Vulns
	snap  *model.Snapshot
	// exposure and blast radius are per service, computed once.
	exposure map[string]ExposureResult
	blast    map[string]blast
	// producers and consumers are snap.Destinations(), computed once:
	// nil until needed.
	producers, consumers map[string][]string
	// unkept are the services that produce to destinations beyond
	// model.Config.MaxStores, and unkeptCalls their spans that did
	// (Overflow.Produces), set with producers.
	unkept      []string
	unkeptCalls int64
	// unkeptConsumers are the services that took messages from
	// destinations beyond model.Config.MaxStores (Overflow.Consumes),
	// and unlinked those whose links were not kept (Overflow.Links):
	// they may consume from a destination without being among its
	// consumers. Set with producers.
	unkeptConsumers, unlinked []string
}

// New returns an Assessor over snap. vulns may be nil when findings carry
// everything (no symbols are then known).
func New(cfg Config, vulns Vulns, snap *model.Snapshot) *Assessor {
	return &Assessor{cfg: cfg, vulns: vulns, snap: snap, exposure: make(map[string]ExposureResult), blast: make(map[string]blast)}
}

// Assess assesses each finding, in priority order (highest first).
func (a *Assessor) Assess(fs []findings.Finding) []Assessment {
	out := make([]Assessment, 0, len(fs))
	for _, f := range fs {
		out = append(out, a.One(f))
	}
	slices.SortStableFunc(out, ByPriority)
	return out
}

// Rank is an assessment's place in priority order: its tier, its score,
// then what identifies its finding, so that the order is total.
type Rank struct {
	Tier          string `json:"tier"`
	Score         int    `json:"score"`
	Service       string `json:"service"`
	Vulnerability string `json:"vuln"`
	PURL          string `json:"purl"`
}

// Rank returns the assessment's place in priority order.
func (a Assessment) Rank() Rank {
	return Rank{Tier: a.Priority.Tier, Score: a.Priority.Score, Service: a.Finding.Service, Vulnerability: a.Finding.Vulnerability.ID, PURL: a.Finding.Package.PURL}
}

// Compare orders ranks highest priority first: by tier, then by score
// (highest first), service, vulnerability and package.
func (r Rank) Compare(o Rank) int {
	return cmp.Or(cmp.Compare(r.Tier, o.Tier), cmp.Compare(o.Score, r.Score),
		cmp.Compare(r.Service, o.Service), cmp.Compare(r.Vulnerability, o.Vulnerability), cmp.Compare(r.PURL, o.PURL))
}

// ByPriority orders assessments highest priority first (Rank.Compare).
func ByPriority(x, y Assessment) int { return x.Rank().Compare(y.Rank()) }

// ServiceExposures decides the exposure of every service of the
// snapshot, whether or not a finding names it.
func (a *Assessor) ServiceExposures() map[string]ExposureResult {
	out := map[string]ExposureResult{}
	if a.snap == nil {
		return out
	}
	for _, s := range a.snap.Services {
		out[s.Name] = a.exposureOf(s.Name)
	}
	return out
}

// One assesses a single finding.
func (a *Assessor) One(f findings.Finding) Assessment {
	var v *vulndb.Vuln
	if a.vulns != nil {
		v = a.vulns.Get(f.Vulnerability.ID)
		for _, alias := range f.Vulnerability.Aliases {
			if v != nil {
				break
			}
			v = a.vulns.Get(alias)
		}
	}
	as := Assessment{Finding: f}
	if v != nil {
		as.KnownExploited = v.KnownExploited
		as.EPSS = v.EPSS
		if f.Severity.Level == "" || f.Severity.Level == "unknown" {
			as.Finding.Severity = findings.DBSeverity(v.Severity)
		}
	}
	svc := a.snap.Service(f.Service)
	as.Reachability = a.reachability(f, v, svc)
	as.Exposure = a.exposureOf(f.Service)
	b := a.blastRadius(f.Service)
	as.BlastRadius, as.BlastRadiusIncomplete = b.stores, b.incomplete
	as.Priority = priority(as)
	as.VEX = a.vex(as, svc)
	return as
}

func appendUnique(s []string, v string) []string {
	i := sort.SearchStrings(s, v)
	if i < len(s) && s[i] == v {
		return s
	}
	return slices.Insert(s, i, v)
}
