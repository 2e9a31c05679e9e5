package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
)

// writeCycloneDX renders the Runtime BOM as CycloneDX 1.6: the services
// seen in traces with their endpoints, the components that findings name
// or that were seen running (with callstack evidence and evident's
// figures as properties), and one vulnerability per finding with the VEX
// analysis.
func writeCycloneDX(w io.Writer, r *Result) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = ""
	bom.Metadata = &cdx.Metadata{
		Timestamp: r.Generated.Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "evident", Version: r.Version,
		}}},
		Properties: &[]cdx.Property{{Name: "evident:backlog_reduction", Value: strconv.FormatFloat(r.Summary.BacklogReduction, 'f', 3, 64)}},
	}

	components := map[string]*cdx.Component{}
	component := func(purl, name, version string) *cdx.Component {
		c := components[purl]
		if c == nil {
			c = &cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: name, Version: version, PackageURL: purl}
			components[purl] = c
		}
		return c
	}
	for _, a := range r.Assessments {
		f := a.Finding
		component(f.Package.PURL, f.Package.Name, f.Package.Version)
	}
	var services []cdx.Service
	if r.Snapshot != nil {
		for _, s := range r.Snapshot.Services {
			observe(s, component)
			services = append(services, serviceOf(s))
		}
	}
	comps := make([]cdx.Component, 0, len(components))
	for _, c := range components {
		comps = append(comps, *c)
	}
	slices.SortFunc(comps, func(a, b cdx.Component) int { return cmp.Compare(a.BOMRef, b.BOMRef) })
	bom.Components = &comps
	if len(services) > 0 {
		bom.Services = &services
	}

	vulns := make([]cdx.Vulnerability, 0, len(r.Assessments))
	for i, a := range r.Assessments {
		vulns = append(vulns, vulnerabilityOf(i, a))
	}
	bom.Vulnerabilities = &vulns
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// observe adds the Go modules a service was seen running as components,
// with the heaviest stack through each as callstack evidence.
func observe(s *model.Service, component func(purl, name, version string) *cdx.Component) {
	done := map[string]bool{}
	for _, fn := range s.Functions { // heaviest first
		if fn.Language != attribution.Go || fn.Module == "" || fn.Version == "" {
			continue
		}
		purl, err := osv.PURL(osv.EcosystemGo, fn.Module, fn.Version)
		if err != nil || done[purl] {
			continue
		}
		done[purl] = true
		c := component(purl, fn.Module, fn.Version)
		props := []cdx.Property{
			{Name: "evident:service", Value: s.Name},
			{Name: "evident:heaviest_function", Value: fn.Package + "." + fn.Symbol},
			{Name: "evident:heaviest_function_samples", Value: strconv.FormatInt(fn.Samples, 10)},
			{Name: "evident:first_seen", Value: fn.First.Format(time.RFC3339)},
			{Name: "evident:last_seen", Value: fn.Last.Format(time.RFC3339)},
		}
		if c.Properties != nil {
			props = append(*c.Properties, props...)
		}
		c.Properties = &props
		if c.Evidence == nil {
			frames := make([]cdx.CallstackFrame, 0, len(fn.Stack))
			for _, f := range fn.Stack {
				frames = append(frames, cdx.CallstackFrame{Package: f.Package, Module: f.Module, Function: f.Symbol})
			}
			c.Evidence = &cdx.Evidence{Callstack: &cdx.Callstack{Frames: &frames}}
		}
	}
}

func serviceOf(s *model.Service) cdx.Service {
	svc := cdx.Service{BOMRef: "service:" + s.Name, Name: s.Name}
	if len(s.Endpoints) > 0 {
		eps := make([]string, 0, len(s.Endpoints))
		for _, e := range s.Endpoints {
			eps = append(eps, e.Name())
		}
		svc.Endpoints = &eps
	}
	var props []cdx.Property
	for _, e := range s.Edges {
		props = append(props, cdx.Property{Name: "evident:calls", Value: e.To})
	}
	for _, st := range s.Stores {
		props = append(props, cdx.Property{Name: "evident:store", Value: st.Name})
	}
	if s.Samples > 0 {
		props = append(props, cdx.Property{Name: "evident:profile_samples", Value: strconv.FormatInt(s.Samples, 10)})
	}
	if len(props) > 0 {
		svc.Properties = &props
	}
	return svc
}

// cdxStates maps evident's VEX status to CycloneDX impact analysis.
var cdxStates = map[string]cdx.ImpactAnalysisState{
	assess.StatusAffected:           cdx.IASExploitable,
	assess.StatusNotAffected:        cdx.IASNotAffected,
	assess.StatusUnderInvestigation: cdx.IASInTriage,
}

var cdxSeverities = map[string]cdx.Severity{
	"critical": cdx.SeverityCritical, "high": cdx.SeverityHigh, "medium": cdx.SeverityMedium, "low": cdx.SeverityLow,
}

func vulnerabilityOf(i int, a assess.Assessment) cdx.Vulnerability {
	f := a.Finding
	v := cdx.Vulnerability{
		BOMRef: fmt.Sprintf("finding-%d", i+1),
		ID:     f.Vulnerability.ID,
		Source: &cdx.Source{Name: "OSV", URL: "https://osv.dev/vulnerability/" + f.Vulnerability.ID},
		Analysis: &cdx.VulnerabilityAnalysis{
			State:  cdxStates[a.VEX.Status],
			Detail: a.VEX.Statement,
		},
		Affects: &[]cdx.Affects{{Ref: f.Package.PURL}},
		Properties: &[]cdx.Property{
			{Name: "evident:service", Value: f.Service},
			{Name: "evident:verdict", Value: string(a.Reachability.Verdict)},
			{Name: "evident:exposure", Value: string(a.Exposure.Level)},
			{Name: "evident:tier", Value: a.Priority.Tier},
			{Name: "evident:score", Value: strconv.Itoa(a.Priority.Score)},
		},
	}
	if a.VEX.Status == assess.StatusNotAffected {
		v.Analysis.Justification = cdx.IAJCodeNotReachable
	}
	if a.VEX.Status == assess.StatusAffected {
		v.Analysis.Response = &[]cdx.ImpactAnalysisResponse{cdx.IARUpdate}
		if f.FixedVersion != "" {
			v.Recommendation = "Update " + f.Package.Name + " to " + f.FixedVersion
		}
	}
	if len(f.Vulnerability.Aliases) > 0 {
		refs := make([]cdx.VulnerabilityReference, 0, len(f.Vulnerability.Aliases))
		for _, alias := range f.Vulnerability.Aliases {
			refs = append(refs, cdx.VulnerabilityReference{ID: alias, Source: &cdx.Source{URL: "https://osv.dev/vulnerability/" + alias}})
		}
		v.References = &refs
	}
	if sev, ok := cdxSeverities[f.Severity.Level]; ok {
		rating := cdx.VulnerabilityRating{Severity: sev, Vector: f.Severity.Vector}
		if f.Severity.Score > 0 {
			score := f.Severity.Score
			rating.Score = &score
		}
		v.Ratings = &[]cdx.VulnerabilityRating{rating}
	}
	return v
}
