package report

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
)

// writeCycloneDX renders the Runtime BOM as CycloneDX 1.6 (docs/priority.md):
//   - a component per product (the image or service a package is deployed
//     in) and, depending on it, a component per package in that product
//     that a finding names or that was seen running, with callstack
//     evidence and evident's figures as properties;
//   - the services seen in traces with their endpoints;
//   - per vulnerability, one entry per analysis state, whose affects are
//     BOM-Links (urn:cdx:<serial>/1#<bom-ref>) to the package components
//     in that state: each (vulnerability, component) has one analysis.
//
// The entries of a vulnerability come most cautious first (exploitable,
// in_triage, not_affected): Grype applies the first entry of an id,
// whatever its affects, and Trivy the last, matching its affects against
// the SBOM it scans, so each applies the not_affected entry only when it
// is exactly right for it. The serial number is derived from the content,
// so that the same result renders the same document.
func writeCycloneDX(w io.Writer, r *Result, opts Options) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = ""
	bom.Metadata = &cdx.Metadata{
		Timestamp: r.Generated.Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "evident", Version: r.Version,
		}}},
		Properties: &[]cdx.Property{{Name: "evident:backlog_reduction", Value: strconv.FormatFloat(r.Summary.BacklogReduction, 'f', 3, 64)}},
	}

	c := cdxComponents{byRef: map[string]*cdx.Component{}, deps: map[string][]string{}}
	instances := vexInstances(r, opts.Products, opts.Warn)
	refs := make([]string, len(instances))
	for i, in := range instances {
		refs[i] = c.pkg(in.Product, in.Package.PURL, in.Package.Name, in.Package.Version).BOMRef
		if in.Product.PURL != "" {
			for _, a := range in.Assessments {
				c.product(in.Product).addProperty("evident:service", a.Finding.Service)
			}
		}
	}
	var services []cdx.Service
	if r.Snapshot != nil {
		for _, s := range r.Snapshot.Services {
			for _, p := range productsOf(r, opts.Products, s.Name) {
				c.product(p).addProperty("evident:service", s.Name)
				observe(s, p, &c)
			}
			services = append(services, serviceOf(s))
		}
	}
	bom.Components, bom.Dependencies = c.list()
	if len(services) > 0 {
		bom.Services = &services
	}

	vulns, affects := vulnerabilitiesOf(instances, refs)
	bom.Vulnerabilities = &vulns

	// The serial number is a UUID (v5) of the document without it; the
	// affects then become BOM-Links that carry it.
	var buf bytes.Buffer
	if err := encodeCycloneDX(&buf, bom); err != nil {
		return err
	}
	bom.SerialNumber = uuid.NewSHA1(uuid.NameSpaceURL, buf.Bytes()).URN()
	for _, a := range affects {
		link, err := cdx.NewBOMLink(bom.SerialNumber, bom.Version, c.byRef[a.Ref])
		if err != nil {
			return fmt.Errorf("link %s: %w", a.Ref, err)
		}
		a.Ref = link.String()
	}
	return encodeCycloneDX(w, bom)
}

func encodeCycloneDX(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// cdxComponents collects the components of a BOM by bom-ref, with the
// package components each product depends on.
type cdxComponents struct {
	byRef map[string]*cdx.Component
	deps  map[string][]string // product bom-ref -> package bom-refs
}

type cdxComponent struct{ *cdx.Component }

func (c cdxComponent) addProperty(name, value string) {
	var props []cdx.Property
	if c.Properties != nil {
		props = *c.Properties
	}
	if !slices.Contains(props, cdx.Property{Name: name, Value: value}) {
		props = append(props, cdx.Property{Name: name, Value: value})
	}
	c.Properties = &props
}

// product returns the component of a product. Its bom-ref is not a bare
// package URL: Trivy reads a reference that starts with "pkg:" as one.
func (c *cdxComponents) product(p product) cdxComponent {
	ref := "product:" + p.PURL
	comp := c.byRef[ref]
	if comp == nil {
		typ := cdx.ComponentTypeApplication
		if p.Container {
			typ = cdx.ComponentTypeContainer
		}
		comp = &cdx.Component{BOMRef: ref, Type: typ, Name: p.Name, PackageURL: p.PURL}
		c.byRef[ref] = comp
		c.deps[ref] = []string{}
	}
	return cdxComponent{comp}
}

// pkg returns the component of a package in a product; without a
// product, the package's own.
func (c *cdxComponents) pkg(p product, purl, name, version string) cdxComponent {
	ref := purl
	if p.PURL != "" {
		parent := c.product(p).BOMRef
		ref = parent + "#" + purl
		if !slices.Contains(c.deps[parent], ref) {
			c.deps[parent] = append(c.deps[parent], ref)
		}
	}
	comp := c.byRef[ref]
	if comp == nil {
		comp = &cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: name, Version: version, PackageURL: purl}
		c.byRef[ref] = comp
	}
	return cdxComponent{comp}
}

// list returns the components and the dependencies of the products, by
// bom-ref.
func (c *cdxComponents) list() (*[]cdx.Component, *[]cdx.Dependency) {
	comps := make([]cdx.Component, 0, len(c.byRef))
	for _, comp := range c.byRef {
		comps = append(comps, *comp)
	}
	slices.SortFunc(comps, func(a, b cdx.Component) int { return cmp.Compare(a.BOMRef, b.BOMRef) })
	deps := make([]cdx.Dependency, 0, len(c.deps))
	for ref, on := range c.deps {
		slices.Sort(on)
		deps = append(deps, cdx.Dependency{Ref: ref, Dependencies: &on})
	}
	slices.SortFunc(deps, func(a, b cdx.Dependency) int { return cmp.Compare(a.Ref, b.Ref) })
	if len(deps) == 0 {
		return &comps, nil
	}
	return &comps, &deps
}

// observe adds the Go modules a service was seen running as components
// of its product, with the heaviest stack through each as callstack
// evidence.
func observe(s *model.Service, p product, c *cdxComponents) {
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
		comp := c.pkg(p, purl, fn.Module, fn.Version)
		for _, prop := range []cdx.Property{
			{Name: "evident:service", Value: s.Name},
			{Name: "evident:heaviest_function", Value: fn.Package + "." + fn.Symbol},
			{Name: "evident:heaviest_function_samples", Value: strconv.FormatInt(fn.Samples, 10)},
			{Name: "evident:heaviest_function_time_samples", Value: strconv.FormatInt(fn.TimeSamples, 10)},
			{Name: "evident:first_seen", Value: fn.First.Format(time.RFC3339)},
			{Name: "evident:last_seen", Value: fn.Last.Format(time.RFC3339)},
		} {
			comp.addProperty(prop.Name, prop.Value)
		}
		if comp.Evidence == nil {
			frames := make([]cdx.CallstackFrame, 0, len(fn.Stack))
			for _, f := range fn.Stack {
				// The schema requires a module: first-party code whose
				// module is unknown is named by its package.
				frames = append(frames, cdx.CallstackFrame{Package: f.Package, Module: cmp.Or(f.Module, f.Package, "unknown"), Function: f.Symbol})
			}
			comp.Evidence = &cdx.Evidence{Callstack: &cdx.Callstack{Frames: &frames}}
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
		// profile_samples counts every profile's, an allocation profile's
		// objects too; profile_time_samples those of CPU and wall-clock
		// profiles, which alone measure the service's time.
		props = append(props,
			cdx.Property{Name: "evident:profile_samples", Value: strconv.FormatInt(s.Samples, 10)},
			cdx.Property{Name: "evident:profile_time_samples", Value: strconv.FormatInt(s.TimeSamples, 10)})
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

// vulnerabilitiesOf returns, for each id (a record's or an alias), one
// entry per VEX status of the instances of every record with that id,
// most cautious first, whose affects name the bom-refs of the instances
// in that status;
// and those affects, for the caller to turn into BOM-Links. Grype and
// Trivy match a CycloneDX VEX by id alone, not by alias, and name a
// vulnerability by its CVE or GHSA id rather than the OSV record's.
func vulnerabilitiesOf(instances []*instance, refs []string) ([]cdx.Vulnerability, []*cdx.Affects) {
	// The instances of each id, the record's or an alias, in the order
	// the ids come: an id that two records share (CVE-2023-44487, of
	// golang.org/x/net's record and of grpc's) gets one entry per status
	// for the instances of both, so that its bom-refs are unique and its
	// most cautious status comes first, whichever record it came from.
	byID := map[string][]int{}
	var order []string
	for i, in := range instances {
		for _, id := range append([]string{in.Vulnerability.ID}, in.Vulnerability.Aliases...) {
			if _, ok := byID[id]; !ok {
				order = append(order, id)
			}
			if !slices.Contains(byID[id], i) {
				byID[id] = append(byID[id], i)
			}
		}
	}
	var vulns []cdx.Vulnerability
	for _, id := range order {
		// The entry's references: the other ids of its instances.
		ids := []string{id}
		for _, i := range byID[id] {
			for _, other := range append([]string{instances[i].Vulnerability.ID}, instances[i].Vulnerability.Aliases...) {
				if !slices.Contains(ids, other) {
					ids = append(ids, other)
				}
			}
		}
		for _, status := range []string{assess.StatusAffected, assess.StatusUnderInvestigation, assess.StatusNotAffected} {
			var group []int
			for _, i := range byID[id] {
				if instances[i].Status == status {
					group = append(group, i)
				}
			}
			if len(group) > 0 {
				vulns = append(vulns, vulnerabilityOf(id, ids, status, instances, refs, group))
			}
		}
	}
	var affects []*cdx.Affects
	for i := range vulns {
		for j := range *vulns[i].Affects {
			affects = append(affects, &(*vulns[i].Affects)[j])
		}
	}
	return vulns, affects
}

// vulnerabilityOf is the entry of vulnerability id (one of ids) for the
// instances group, all in status.
func vulnerabilityOf(id string, ids []string, status string, instances []*instance, refs []string, group []int) cdx.Vulnerability {
	first := instances[group[0]]
	v := cdx.Vulnerability{
		BOMRef:   id + "/" + string(cdxStates[status]),
		ID:       id,
		Source:   &cdx.Source{Name: "OSV", URL: "https://osv.dev/vulnerability/" + id},
		Analysis: &cdx.VulnerabilityAnalysis{State: cdxStates[status]},
	}
	var affects []cdx.Affects
	var details, recommendations []string
	var props []cdx.Property
	for _, i := range group {
		in := instances[i]
		affects = append(affects, cdx.Affects{Ref: refs[i]})
		if d := in.statement(); !slices.Contains(details, d) {
			details = append(details, d)
		}
		for _, a := range in.Assessments {
			f := a.Finding
			if f.FixedVersion != "" && status == assess.StatusAffected {
				if rec := "Update " + f.Package.Name + " to " + f.FixedVersion; !slices.Contains(recommendations, rec) {
					recommendations = append(recommendations, rec)
				}
			}
			props = append(props, cdx.Property{Name: "evident:finding", Value: fmt.Sprintf("%s %s verdict=%s exposure=%s vex=%s tier=%s score=%d",
				cmp.Or(f.Service, "-"), f.Package.PURL, a.Reachability.Verdict, a.Exposure.Level, a.VEX.Status, a.Priority.Tier, a.Priority.Score)})
		}
	}
	v.Affects = &affects
	v.Analysis.Detail = strings.Join(details, "\n")
	v.Recommendation = strings.Join(recommendations, "; ")
	v.Properties = &props
	switch status {
	case assess.StatusNotAffected:
		v.Analysis.Justification = cdx.IAJCodeNotReachable
	case assess.StatusAffected:
		v.Analysis.Response = &[]cdx.ImpactAnalysisResponse{cdx.IARUpdate}
	}
	var others []cdx.VulnerabilityReference
	for _, other := range ids {
		if other != id {
			others = append(others, cdx.VulnerabilityReference{ID: other, Source: &cdx.Source{URL: "https://osv.dev/vulnerability/" + other}})
		}
	}
	if len(others) > 0 {
		v.References = &others
	}
	// Findings of one vulnerability share its rating.
	f := first.Assessments[0].Finding
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
