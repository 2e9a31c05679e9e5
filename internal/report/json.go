package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/vulndb"
)

// JSONVersion is the version of the JSON report schema (docs/report-json.md).
// It changes only when a field is removed or changes meaning.
const JSONVersion = 1

// jsonReport is the JSON report document.
type jsonReport struct {
	Version   int           `json:"version"`
	Tool      jsonTool      `json:"tool"`
	Generated time.Time     `json:"generated"`
	VulnDB    JSONVulnDB    `json:"vulndb"`
	Summary   JSONSummary   `json:"summary"`
	Services  []JSONService `json:"services"`
	Findings  []JSONFinding `json:"findings"`
}

// JSONVulnDB says which exploitation data an assessment was made with,
// as the JSON report and SARIF's run properties show it
// (docs/report-json.md): a finding's known_exploited means something
// only when KEV.Loaded, and its missing epss only when EPSS.Loaded.
type JSONVulnDB struct {
	KEV  jsonKEVData  `json:"kev"`
	EPSS jsonEPSSData `json:"epss"`
}

// jsonKEVData describes the CISA KEV catalog; all but Loaded are absent
// when none was loaded.
type jsonKEVData struct {
	Loaded   bool      `json:"loaded"`
	Version  string    `json:"version,omitempty"`
	Released time.Time `json:"released,omitzero"`
	Count    *int      `json:"count,omitempty"`
}

// jsonEPSSData describes FIRST's EPSS scores; all but Loaded are absent
// when none were loaded.
type jsonEPSSData struct {
	Loaded bool   `json:"loaded"`
	Model  string `json:"model,omitempty"`
	Date   string `json:"date,omitempty"`
	Count  *int   `json:"count,omitempty"`
}

// VulnDBJSON renders what s says of the KEV catalog and EPSS scores.
func VulnDBJSON(s vulndb.Stats) JSONVulnDB {
	var v JSONVulnDB
	if s.HasKEV() {
		v.KEV = jsonKEVData{Loaded: true, Version: s.KEVVersion, Released: s.KEVReleased, Count: &s.KEVCount}
	}
	if s.HasEPSS() {
		v.EPSS = jsonEPSSData{Loaded: true, Model: s.EPSSModel, Count: &s.EPSSCount}
		if !s.EPSSDate.IsZero() {
			v.EPSS.Date = s.EPSSDate.Format(time.DateOnly)
		}
	}
	return v
}

type jsonTool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// JSONSummary is the headline of a run as the JSON report and the HTTP
// API show it (docs/report-json.md).
type JSONSummary struct {
	Findings         int                    `json:"findings"`
	ByVerdict        map[assess.Verdict]int `json:"by_verdict"`
	ByTier           map[string]int         `json:"by_tier"`
	NeedAction       int                    `json:"need_action"`
	Decided          int                    `json:"decided"`
	DecidedShare     float64                `json:"decided_share"`
	Cleared          int                    `json:"cleared"`
	BacklogReduction float64                `json:"backlog_reduction"`
	// DecidedReduction is null when no finding is decided: a cut among
	// none is no number.
	DecidedReduction *float64 `json:"decided_reduction"`
}

// SummaryJSON renders a summary.
func SummaryJSON(s assess.Summary) JSONSummary {
	js := JSONSummary{
		Findings: s.Findings, ByVerdict: s.ByVerdict, ByTier: s.ByTier, NeedAction: s.NeedAction,
		Decided: s.Decided, DecidedShare: s.DecidedShare, Cleared: s.Cleared, BacklogReduction: s.BacklogReduction,
	}
	if s.Decided > 0 {
		js.DecidedReduction = &s.DecidedReduction
	}
	return js
}

// JSONService is one service of the runtime model as the JSON report and
// the HTTP API show it. Its and its packages' Samples count every
// profile's samples, an allocation profile's objects too; TimeSamples
// those of time-sampled profiles (CPU, wall clock), and a window's
// TimeSampled says which kind it is, as the reachability's do.
type JSONService struct {
	Name string `json:"name"`
	// Namespace is the service.namespace its telemetry carried, the
	// first one when it carried several; Namespaces lists them then:
	// services of one service.name in several namespaces, which evident
	// merges into this one, their telemetry and findings mixed.
	Namespace         string                `json:"namespace,omitempty"`
	Namespaces        []string              `json:"namespaces,omitempty"`
	Exposure          assess.ExposureResult `json:"exposure"`
	Samples           int64                 `json:"samples"`
	TimeSamples       int64                 `json:"time_samples"`
	UnattributedShare float64               `json:"unattributed_share"`
	Windows           []jsonWindow          `json:"windows"`
	Endpoints         []jsonEndpoint        `json:"endpoints"`
	Calls             []string              `json:"calls"`
	Stores            []jsonStore           `json:"stores"`
	Packages          []jsonPackage         `json:"packages"`
}

type jsonWindow struct {
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Samples       int64     `json:"samples"`
	TimeSampled   bool      `json:"time_sampled"`
	Languages     []string  `json:"languages,omitempty"`
	PeriodSeconds float64   `json:"period_seconds,omitempty"`
	SampleType    string    `json:"sample_type,omitempty"`
	Source        string    `json:"source,omitempty"`
}

type jsonEndpoint struct {
	Name   string `json:"name"`
	Calls  int64  `json:"calls"`
	Errors int64  `json:"errors"`
}

type jsonStore struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Labels []string `json:"labels"`
	Via    []string `json:"via,omitempty"`
	Calls  int64    `json:"calls,omitempty"`
}

type jsonPackage struct {
	Language    string `json:"language"`
	Package     string `json:"package"`
	Module      string `json:"module,omitempty"`
	Version     string `json:"version,omitempty"`
	Samples     int64  `json:"samples"`
	TimeSamples int64  `json:"time_samples"`
}

// JSONFinding is one finding as the JSON report and the HTTP API show it
// (docs/report-json.md).
type JSONFinding struct {
	ID             string                 `json:"id"`
	Vulnerability  findings.Vulnerability `json:"vulnerability"`
	Package        findings.Package       `json:"package"`
	Service        string                 `json:"service"`
	Severity       findings.Severity      `json:"severity"`
	FixedVersion   string                 `json:"fixed_version,omitempty"`
	KnownExploited bool                   `json:"known_exploited"`
	EPSS           *jsonEPSS              `json:"epss,omitempty"`
	Static         findings.StaticReach   `json:"static,omitempty"`
	Sources        []findings.Source      `json:"sources"`
	Reachability   jsonReachability       `json:"reachability"`
	Exposure       assess.ExposureResult  `json:"exposure"`
	BlastRadius    jsonBlastRadius        `json:"blast_radius"`
	Priority       jsonPriority           `json:"priority"`
	VEX            jsonVEX                `json:"vex"`
}

type jsonEPSS struct {
	CVE         string  `json:"cve"`
	Probability float64 `json:"probability"`
	Percentile  float64 `json:"percentile"`
	Date        string  `json:"date"`
}

// jsonReachability is assess.Reachability. Its and its evidence's
// TimeSamples count, of Samples, those of time-sampled profiles (CPU, wall
// clock): Samples counts an allocation profile's objects and a contention
// profile's waits too.
type jsonReachability struct {
	Verdict     assess.Verdict `json:"verdict"`
	Basis       assess.Basis   `json:"basis"`
	Symbols     []string       `json:"symbols"`
	Samples     int64          `json:"samples"`
	TimeSamples int64          `json:"time_samples"`
	Endpoints   []string       `json:"endpoints"`
	SpanNames   []string       `json:"span_names"`
	Evidence    []jsonEvidence `json:"evidence,omitempty"`
	Bound       *jsonBound     `json:"bound,omitempty"`
	Reason      string         `json:"reason"`
}

type jsonEvidence struct {
	Symbol      string               `json:"symbol"`
	Samples     int64                `json:"samples"`
	TimeSamples int64                `json:"time_samples"`
	CPUSeconds  float64              `json:"cpu_seconds"`
	FirstSeen   time.Time            `json:"first_seen"`
	LastSeen    time.Time            `json:"last_seen"`
	Endpoints   []model.NamedSamples `json:"endpoints,omitempty"`
	SpanNames   []model.NamedSamples `json:"span_names,omitempty"`
	Stack       []string             `json:"stack"`
	Series      []model.Bucket       `json:"series,omitempty"`
	SeriesEnd   time.Time            `json:"series_end,omitzero"`
}

type jsonBound struct {
	Share         float64 `json:"share"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	WindowSeconds float64 `json:"window_seconds"`
	Samples       int64   `json:"samples"`
}

type jsonBlastRadius struct {
	Stores []jsonStore `json:"stores"`
	// Incomplete says why Stores may not be all (assess.Assessment.BlastRadiusIncomplete).
	Incomplete string `json:"incomplete,omitempty"`
}

type jsonPriority struct {
	Tier    string   `json:"tier"`
	Score   int      `json:"score"`
	Reasons []string `json:"reasons"`
}

type jsonVEX struct {
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
	Statement     string `json:"statement,omitempty"`
}

func writeJSON(w io.Writer, r *Result) error {
	doc := jsonReport{
		Version:   JSONVersion,
		Tool:      jsonTool{Name: "evident", Version: r.Version},
		Generated: r.Generated,
		VulnDB:    VulnDBJSON(r.VulnDB),
		Summary:   SummaryJSON(r.Summary),
		Services:  ServicesJSON(r),
		Findings:  make([]JSONFinding, 0, len(r.Assessments)),
	}
	for _, a := range r.Assessments {
		doc.Findings = append(doc.Findings, FindingJSON(a))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// FindingJSON renders one assessment.
func FindingJSON(a assess.Assessment) JSONFinding {
	f := a.Finding
	r := a.Reachability
	jf := JSONFinding{
		ID:            FindingID(f),
		Vulnerability: f.Vulnerability, Package: f.Package, Service: f.Service, Severity: f.Severity,
		FixedVersion: f.FixedVersion, KnownExploited: a.KnownExploited, Static: f.Static, Sources: f.Sources,
		Reachability: jsonReachability{
			Verdict: r.Verdict, Basis: r.Basis, Symbols: nonNil(r.Symbols), Samples: r.Samples, TimeSamples: r.TimeSamples,
			Endpoints: nonNil(r.Endpoints), SpanNames: nonNil(r.SpanNames), Reason: r.Reason,
		},
		Exposure:    a.Exposure,
		BlastRadius: jsonBlastRadius{Stores: jsonStores(a.BlastRadius), Incomplete: a.BlastRadiusIncomplete},
		Priority:    jsonPriority{Tier: a.Priority.Tier, Score: a.Priority.Score, Reasons: nonNil(a.Priority.Reasons)},
		VEX:         jsonVEX{Status: a.VEX.Status, Justification: a.VEX.Justification, Statement: a.VEX.Statement},
	}
	if e := a.EPSS; e != nil {
		jf.EPSS = &jsonEPSS{CVE: e.CVE, Probability: e.Probability, Percentile: e.Percentile, Date: e.Date.Format(time.DateOnly)}
	}
	for _, e := range r.Evidence {
		jf.Reachability.Evidence = append(jf.Reachability.Evidence, jsonEvidence{
			Symbol: e.Symbol, Samples: e.Samples, TimeSamples: e.TimeSamples, CPUSeconds: e.CPUSeconds,
			FirstSeen: e.First, LastSeen: e.Last, Endpoints: e.Endpoints, SpanNames: e.SpanNames, Stack: e.Stack,
			Series: e.Series, SeriesEnd: e.SeriesEnd,
		})
	}
	if b := r.Bound; b != nil {
		jf.Reachability.Bound = &jsonBound{Share: b.Share, CPUSeconds: b.CPUSeconds, WindowSeconds: b.WindowSeconds, Samples: b.Samples}
	}
	return jf
}

func jsonStores(bs []assess.StoreRef) []jsonStore {
	out := make([]jsonStore, 0, len(bs))
	for _, s := range bs {
		out = append(out, jsonStore{Name: s.Name, Kind: s.Kind, Labels: nonNil(s.Labels), Via: s.Via})
	}
	return out
}

// ServicesJSON describes every service of the model with the exposure
// decided for it, whether or not a finding names it.
func ServicesJSON(r *Result) []JSONService {
	labels := map[string][]string{}
	for _, a := range r.Assessments {
		for _, st := range a.BlastRadius {
			labels[st.Name] = st.Labels
		}
	}
	out := []JSONService{}
	if r.Snapshot == nil {
		return out
	}
	for _, s := range r.Snapshot.Services {
		js := JSONService{
			Name: s.Name, Namespace: s.Namespace, Namespaces: s.Namespaces, Exposure: r.Exposure[s.Name], Samples: s.Samples, TimeSamples: s.TimeSamples,
			Windows: []jsonWindow{}, Endpoints: []jsonEndpoint{}, Calls: []string{}, Stores: []jsonStore{}, Packages: []jsonPackage{},
		}
		if s.Samples > 0 {
			js.UnattributedShare = float64(s.Unattributed) / float64(s.Samples)
		}
		for _, w := range s.Windows {
			jw := jsonWindow{Start: w.Start, End: w.End, Samples: w.Samples, TimeSampled: w.TimeSampled, SampleType: w.SampleType, Source: w.Source}
			if w.Unit == "nanoseconds" {
				jw.PeriodSeconds = float64(w.Period) / 1e9
			}
			for _, l := range w.Languages {
				jw.Languages = append(jw.Languages, cmp.Or(l.String(), "unknown"))
			}
			js.Windows = append(js.Windows, jw)
		}
		for _, e := range s.Endpoints {
			js.Endpoints = append(js.Endpoints, jsonEndpoint{Name: e.Name(), Calls: e.Calls, Errors: e.Errors})
		}
		for _, e := range s.Edges {
			js.Calls = append(js.Calls, e.To)
		}
		for _, st := range s.Stores {
			js.Stores = append(js.Stores, jsonStore{Name: st.Name, Kind: st.Kind, Labels: nonNil(labels[st.Name]), Calls: st.Calls})
		}
		for _, p := range s.Packages {
			js.Packages = append(js.Packages, jsonPackage{Language: p.Language.String(), Package: p.Package, Module: p.Module, Version: p.Version, Samples: p.Samples, TimeSamples: p.TimeSamples})
		}
		out = append(out, js)
	}
	return out
}

// nonNil makes empty lists render as [] rather than null, so consumers
// can iterate without checks.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// FindingID is the stable identity of a finding across runs: the same
// vulnerability in the same package version of the same service.
func FindingID(f findings.Finding) string {
	sum := sha256.Sum256([]byte(f.Service + "\x00" + f.Vulnerability.ID + "\x00" + f.Package.PURL))
	return hex.EncodeToString(sum[:8])
}
