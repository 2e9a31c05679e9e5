package findings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"

	"github.com/evidentsec/evident/internal/osv"
)

// cdxBOM is a decoded CycloneDX BOM, reduced to what the importer reads.
// The records keep their position in the input so that errors name it.
type cdxBOM struct {
	metadata   *cdx.Component
	components []cdxComponent
	vulns      []cdxVulnerability
	// scanned is true when the BOM carries vulnerabilities: a scanner's
	// verdict or a VEX, whose vulnerabilities are the findings and whose
	// other components are not matched.
	scanned bool
	// compErrs and vulnErrs are the records that did not decode.
	compErrs, vulnErrs []error
}

type cdxComponent struct {
	path string // "components[3]", "metadata.component"
	c    cdx.Component
}

type cdxVulnerability struct {
	index int
	v     cdx.Vulnerability
}

// ParseCycloneDX reads a CycloneDX BOM: JSON (spec 1.2 to 1.7) or XML.
//
// A BOM that carries vulnerabilities (a scanner's output, or a VEX) yields
// one finding per vulnerability and affected component (affects[].ref, a
// bom-ref of this BOM or a BOM-Link to one); its ratings give the
// severity and its references the aliases. A vulnerability that its
// analysis triages as not_affected, false_positive or resolved is left
// out, as scanners honour a VEX. When m is not nil, the database record
// that is the same vulnerability supplies the fixed version and its ids
// as aliases. A BOM's vulnerabilities carry no reachability analysis,
// so their findings claim none (Static unknown).
// A BOM without vulnerabilities is an SBOM: each component is looked up
// in m, and each record that affects it is a finding with Static
// required, since the BOM shows the component in the build and no more.
// An empty vulnerabilities array carries no scan results, so such a BOM is
// an SBOM too: Trivy writes one into every CycloneDX SBOM, scanned or not,
// and reading it as a clean scan would hide every vulnerability of its
// components.
// The name of metadata.component, the BOM's subject, is the sources'
// Artifact.
//
// Records that cannot be used, such as a library with no package URL or a
// vulnerability affecting no component, are reported as *RecordError
// naming the component's bom-ref or the vulnerability's id, and skipped.
// The subject, or a component of type application, without a version (a
// Go development build; a service in evident's own BOM) is left out
// without one, as any Go module at (devel) is.
// An input that is not a CycloneDX BOM is one error wrapping
// ErrWrongFormat; broken JSON or XML one wrapping ErrMalformed.
func ParseCycloneDX(r io.Reader, name string, m Matcher) ([]Finding, []error) {
	bom, err := decodeCycloneDX(r, name)
	if err != nil {
		return nil, []error{err}
	}
	comps, byRef, cerrs := bom.collect(name)
	errs := append(append(bom.compErrs, cerrs...), bom.vulnErrs...)
	var artifact string
	if bom.metadata != nil {
		artifact = bom.metadata.Name
	}
	if !bom.scanned {
		fs, merrs := matchComponents(comps, m, string(FormatCycloneDX), name)
		return withArtifact(fs, artifact), append(errs, merrs...)
	}
	var out []Finding
	for _, vr := range bom.vulns {
		fs, verrs := vulnerabilityFindings(vr, byRef, m, name)
		out = append(out, fs...)
		errs = append(errs, verrs...)
	}
	return Merge(withArtifact(out, artifact)), errs
}

// decodeCycloneDX decodes a BOM. JSON is decoded record by record, so
// that one malformed component or vulnerability is reported and the rest
// load; XML is decoded whole by cyclonedx-go.
func decodeCycloneDX(r io.Reader, name string) (*cdxBOM, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read CycloneDX BOM %s: %w", name, err)
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '<' {
		return decodeCycloneDXXML(trimmed, name)
	}
	var top struct {
		BOMFormat   string          `json:"bomFormat"`
		SpecVersion json.RawMessage `json:"specVersion"`
		Metadata    *struct {
			Component json.RawMessage `json:"component"`
		} `json:"metadata"`
		Components      []json.RawMessage `json:"components"`
		Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%s: not a CycloneDX BOM (neither a JSON object nor XML): %w", name, ErrWrongFormat)
	}
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, fmt.Errorf("%s: CycloneDX JSON: %s: %w", name, jsonError(err), ErrMalformed)
	}
	if top.BOMFormat != "CycloneDX" {
		return nil, fmt.Errorf("%s: bomFormat %q, want \"CycloneDX\": %w", name, top.BOMFormat, ErrWrongFormat)
	}
	var spec cdx.SpecVersion
	if top.SpecVersion == nil {
		return nil, fmt.Errorf("%s: no specVersion: %w", name, ErrWrongFormat)
	}
	if err := json.Unmarshal(top.SpecVersion, &spec); err != nil {
		return nil, fmt.Errorf("%s: specVersion %s: %v: %w", name, top.SpecVersion, err, ErrWrongFormat)
	}
	bom := &cdxBOM{scanned: len(top.Vulnerabilities) > 0}
	if top.Metadata != nil && len(top.Metadata.Component) > 0 && string(top.Metadata.Component) != "null" {
		var c cdx.Component
		if err := json.Unmarshal(top.Metadata.Component, &c); err != nil {
			bom.compErrs = append(bom.compErrs, recordErr(name, "metadata.component", "%v", err))
		} else {
			bom.metadata = &c
		}
	}
	for i, raw := range top.Components {
		var c cdx.Component
		if err := json.Unmarshal(raw, &c); err != nil {
			bom.compErrs = append(bom.compErrs, recordErr(name, fmt.Sprintf("components[%d]", i), "%v", err))
			continue
		}
		bom.components = append(bom.components, cdxComponent{path: fmt.Sprintf("components[%d]", i), c: c})
	}
	for i, raw := range top.Vulnerabilities {
		var v cdx.Vulnerability
		if err := json.Unmarshal(raw, &v); err != nil {
			bom.vulnErrs = append(bom.vulnErrs, recordErr(name, fmt.Sprintf("vulnerabilities[%d]", i), "%v", err))
			continue
		}
		bom.vulns = append(bom.vulns, cdxVulnerability{index: i, v: v})
	}
	return bom, nil
}

func decodeCycloneDXXML(data []byte, name string) (*cdxBOM, error) {
	var b cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatXML).Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: CycloneDX XML: %v: %w", name, err, ErrMalformed)
	}
	if !strings.HasPrefix(b.XMLNS, "http://cyclonedx.org/schema/bom/") {
		return nil, fmt.Errorf("%s: XML namespace %q is not CycloneDX's: %w", name, b.XMLNS, ErrWrongFormat)
	}
	bom := &cdxBOM{scanned: b.Vulnerabilities != nil && len(*b.Vulnerabilities) > 0}
	if b.Metadata != nil {
		bom.metadata = b.Metadata.Component
	}
	if b.Components != nil {
		for i, c := range *b.Components {
			bom.components = append(bom.components, cdxComponent{path: fmt.Sprintf("components[%d]", i), c: c})
		}
	}
	if b.Vulnerabilities != nil {
		for i, v := range *b.Vulnerabilities {
			bom.vulns = append(bom.vulns, cdxVulnerability{index: i, v: v})
		}
	}
	return bom, nil
}

// collect flattens the BOM's components (main component, then each
// component followed by its nested ones) and converts them. byRef maps
// the bom-refs of the components that converted; a bom-ref of a
// component that did not maps to nil, so that vulnerabilities affecting
// it are reported as such.
func (b *cdxBOM) collect(name string) ([]Component, map[string]*Component, []error) {
	type entry struct {
		path string
		c    *cdx.Component
	}
	var (
		out   []Component
		errs  []error
		refs  = make(map[string]int, len(b.components)) // bom-ref → index in out, or -1
		order = make([]entry, 0, len(b.components)+1)
	)
	var walk func(path string, c *cdx.Component)
	walk = func(path string, c *cdx.Component) {
		order = append(order, entry{path, c})
		if c.Components != nil {
			for j := range *c.Components {
				walk(fmt.Sprintf("%s.components[%d]", path, j), &(*c.Components)[j])
			}
		}
	}
	if b.metadata != nil {
		walk("metadata.component", b.metadata)
	}
	for i := range b.components {
		walk(b.components[i].path, &b.components[i].c)
	}
	out = make([]Component, 0, len(order))
	for _, e := range order {
		rec := cdxComponentRecord(e.path, e.c)
		if ref := e.c.BOMRef; ref != "" {
			if _, dup := refs[ref]; dup {
				errs = append(errs, recordErr(name, rec, "bom-ref %q is not unique", ref))
				continue
			}
			refs[ref] = -1
		}
		comp, ok, err := cdxToComponent(e.c)
		switch {
		case err != nil && (e.c == b.metadata || e.c.Type == cdx.ComponentTypeApplication) && errors.Is(err, errNoVersion):
			// The BOM's subject, or an application, without a version is
			// the software the BOM describes, not a release of a package
			// that advisories name: cyclonedx-gomod bin of a build
			// without version control information writes the main
			// module so, and evident's own BOM each service it observed
			// (pkg:generic/shop/gateway), its packages nested under it.
			// Nothing names it to match, as (devel).
			continue
		case err != nil:
			errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
			continue
		}
		if !ok {
			continue
		}
		if e.c.BOMRef != "" {
			refs[e.c.BOMRef] = len(out)
		}
		out = append(out, comp)
	}
	byRef := make(map[string]*Component, len(refs))
	for ref, i := range refs {
		if i >= 0 {
			byRef[ref] = &out[i]
		} else {
			byRef[ref] = nil
		}
	}
	return out, byRef, errs
}

// cdxComponentRecord names a component in errors: its path and bom-ref,
// or its name when it has no bom-ref.
func cdxComponentRecord(path string, c *cdx.Component) string {
	switch {
	case c.BOMRef != "":
		return fmt.Sprintf("%s (bom-ref %s)", path, c.BOMRef)
	case c.Name != "":
		return fmt.Sprintf("%s (%s)", path, c.Name)
	}
	return path
}

// cdxToComponent converts a component that names a package. Components
// that are not packages (files, containers, operating systems, devices,
// data) and have no package URL are skipped without error: an SBOM lists
// them as context, and so are applications (Trivy lists its lock files
// as such). A library or framework without a package URL cannot be
// matched, and is an error.
func cdxToComponent(c *cdx.Component) (Component, bool, error) {
	if c.PackageURL == "" {
		switch c.Type {
		case cdx.ComponentTypeLibrary, cdx.ComponentTypeFramework:
			return Component{}, false, errors.New("no package URL")
		}
		return Component{}, false, nil
	}
	pkg, err := componentPackage(c.PackageURL, c.Version)
	switch {
	case errors.Is(err, errDevel):
		return Component{}, false, nil
	case err != nil:
		return Component{}, false, err
	}
	comp := Component{Ref: c.BOMRef, Package: pkg, VersionUnknown: syftStub(c.PackageURL, c.Version)}
	comp.SourceName, comp.SourceVersion = distroSource(c.PackageURL)
	if comp.SourceName == "" && c.Properties != nil && sourceNamed(c.PackageURL) {
		comp.SourceName, comp.SourceVersion = trivySource(*c.Properties)
	}
	if pkg.Ecosystem == osv.EcosystemGo {
		// cyclonedx-gomod records the build's platform in the package URL,
		// and with -packages lists the packages of each module as its
		// subcomponents, typed "package": the module is the unit that
		// advisories name.
		if p, err := packageurl.FromString(c.PackageURL); err == nil {
			q := p.Qualifiers.Map()
			if q["type"] == "package" {
				return Component{}, false, nil
			}
			comp.GOOS, comp.GOARCH = q["goos"], q["goarch"]
		}
	}
	return comp, true, nil
}

// trivySource is the source package that Trivy names in a distribution
// package's properties (its package URL has no upstream qualifier):
// SrcName, and SrcVersion-SrcRelease with SrcEpoch.
func trivySource(props []cdx.Property) (name, version string) {
	q := map[string]string{}
	for _, p := range props {
		if k, ok := strings.CutPrefix(p.Name, "aquasecurity:trivy:"); ok {
			q[k] = p.Value
		}
	}
	if q["SrcName"] == "" || q["SrcVersion"] == "" {
		return q["SrcName"], ""
	}
	version = q["SrcVersion"]
	if q["SrcRelease"] != "" {
		version += "-" + q["SrcRelease"]
	}
	return q["SrcName"], withEpoch(version, q["SrcEpoch"])
}

// vulnerabilityFindings turns one BOM vulnerability into a finding for
// each component it affects.
func vulnerabilityFindings(vr cdxVulnerability, byRef map[string]*Component, m Matcher, name string) ([]Finding, []error) {
	v := vr.v
	rec := fmt.Sprintf("vulnerabilities[%d]", vr.index)
	if v.ID == "" {
		return nil, []error{recordErr(name, rec, "no id")}
	}
	rec += " (" + v.ID + ")"
	if v.Affects == nil || len(*v.Affects) == 0 {
		return nil, []error{recordErr(name, rec, "affects no component")}
	}
	ids := []string{v.ID}
	if v.References != nil {
		for _, ref := range *v.References {
			ids = append(ids, ref.ID)
		}
	}
	if a := v.Analysis; a != nil && !cdxApplies(a.State) {
		return nil, nil
	}
	sev := cdxSeverity(v.Ratings)
	var (
		out  []Finding
		errs []error
	)
	for j, aff := range *v.Affects {
		comp, err := resolveRef(aff.Ref, byRef)
		if err != nil {
			errs = append(errs, recordErr(name, rec, "affects[%d]: %v", j, err))
			continue
		}
		f := Finding{
			Package:       comp.Package,
			Vulnerability: Vulnerability{ID: v.ID, Aliases: sortedSet(slices.DeleteFunc(slices.Clone(ids[1:]), func(s string) bool { return s == v.ID }))},
			Severity:      sev,
			// A BOM's vulnerability says the component is affected,
			// not whether its code is reachable: no static claim, as
			// for Trivy's and Grype's reports.
			Static:  StaticUnknown,
			Sources: []Source{{Tool: string(FormatCycloneDX), File: name}},
		}
		enrich(&f, m, ids)
		out = append(out, f)
	}
	return out, errs
}

// cdxApplies reports whether a vulnerability whose analysis has state s
// still applies. The BOM's author has triaged not_affected and
// false_positive as not applying, and resolved ones as remediated in the
// component as shipped (a backported fix, say), so those are not
// findings; exploitable, in_triage and no state are.
func cdxApplies(s cdx.ImpactAnalysisState) bool {
	switch s {
	case cdx.IASNotAffected, cdx.IASFalsePositive, cdx.IASResolved, cdx.IASResolvedWithPedigree:
		return false
	}
	return true
}

// resolveRef finds the component a vulnerability's affects[].ref names: a
// bom-ref of this BOM, or a BOM-Link whose reference is one (VEX documents
// link to the SBOM they describe; the link is followed only into this
// BOM, whatever its serial number).
func resolveRef(ref string, byRef map[string]*Component) (*Component, error) {
	if ref == "" {
		return nil, errors.New("no ref")
	}
	c, ok := byRef[ref]
	if !ok && cdx.IsBOMLink(ref) {
		if link, err := cdx.ParseBOMLink(ref); err == nil && link.Reference() != "" {
			c, ok = byRef[link.Reference()]
		}
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("ref %q names no component of the BOM", ref)
	case c == nil:
		return nil, fmt.Errorf("ref %q names a component that was skipped", ref)
	}
	return c, nil
}

// enrich completes a finding that a report named with the database records
// for the same vulnerability that affect the package (sameRecords): their
// ids and aliases join the aliases, they give the fixed version, and the
// severity when the report gave none.
func enrich(f *Finding, m Matcher, ids []string) {
	p := f.Package
	for _, v := range sameRecords(p, ids, m) {
		f.Vulnerability.Aliases = sortedSet(slices.DeleteFunc(append(f.Vulnerability.Aliases, recordIDs(v)...), func(s string) bool { return s == f.Vulnerability.ID }))
		if fix := m.FixedVersion(v, p.Ecosystem, p.Name, p.Version); fix != "" && f.FixedVersion == "" {
			if p.Ecosystem == osv.EcosystemGo {
				fix = goVersion(fix)
			}
			f.FixedVersion = fix
		}
		if f.Severity.Level == LevelUnknown && v.Severity.Level != "" {
			f.Severity = DBSeverity(v.Severity)
		}
	}
}

// cdxSeverity is the highest severity of a vulnerability's ratings. A
// CVSS vector is scored (its score and level win over the stated ones,
// which tools round or take from elsewhere); otherwise the stated
// severity, or the level of a CVSS score, is used.
func cdxSeverity(ratings *[]cdx.VulnerabilityRating) Severity {
	best := Severity{Level: LevelUnknown}
	if ratings == nil {
		return best
	}
	for _, r := range *ratings {
		cand := Severity{Level: LevelUnknown}
		if vec := cdxVector(r.Method, r.Vector); vec != "" {
			if score, err := osv.ScoreVector(vec); err == nil {
				cand = Severity{Level: osv.LevelOf(score), Score: score, Vector: vec}
			}
		}
		if cand.Level == LevelUnknown {
			cand.Level = cdxLevel(r.Severity)
			if r.Score != nil && isCVSS(r.Method) {
				cand.Score = *r.Score
				if cand.Level == LevelUnknown {
					cand.Level = osv.LevelOf(*r.Score)
				}
			}
		}
		if higherSeverity(cand, best) {
			best = cand
		}
	}
	return best
}

func isCVSS(m cdx.ScoringMethod) bool {
	switch m {
	case cdx.ScoringMethodCVSSv2, cdx.ScoringMethodCVSSv3, cdx.ScoringMethodCVSSv31, cdx.ScoringMethodCVSSv4:
		return true
	}
	return false
}

// cdxVector returns a rating's CVSS vector with the version prefix that
// scoreVector needs; tools write v3 and v4 vectors with or without it.
func cdxVector(method cdx.ScoringMethod, vector string) string {
	if vector == "" || strings.HasPrefix(vector, "CVSS:") {
		return vector
	}
	switch method {
	case cdx.ScoringMethodCVSSv2:
		return strings.TrimSuffix(strings.TrimPrefix(vector, "("), ")")
	case cdx.ScoringMethodCVSSv3:
		return "CVSS:3.0/" + vector
	case cdx.ScoringMethodCVSSv31:
		return "CVSS:3.1/" + vector
	case cdx.ScoringMethodCVSSv4:
		return "CVSS:4.0/" + vector
	}
	return ""
}

// cdxLevel maps a CycloneDX severity to a level; "info" and "none" are
// below low, and rank as low.
func cdxLevel(s cdx.Severity) string {
	if s == cdx.SeverityInfo {
		return LevelLow
	}
	return normalizeLevel(string(s))
}
