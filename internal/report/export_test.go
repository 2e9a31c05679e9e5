package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	"github.com/openvex/go-vex/pkg/vex"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
	"github.com/xeipuuv/gojsonschema"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/manifest"
)

func render(t *testing.T, format string, opts Options) []byte {
	t.Helper()
	f, err := Lookup(format, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf, result(t)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSARIFSchema validates the SARIF output against the SARIF 2.1.0
// schema, then checks what GitHub code scanning reads: the manifest
// line, security-severity, suppressions and fingerprints.
func TestSARIFSchema(t *testing.T) {
	tree, skipped, err := manifest.Scan(filepath.Join("testdata", "src"), manifest.Ecosystems())
	if err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	out := render(t, "sarif", Options{Manifests: tree})
	golden(t, "report.sarif.golden", out)
	rep := validSARIF(t, out)
	// Without a source tree, locations have a file and no line.
	validSARIF(t, render(t, "sarif", Options{}))

	type result struct {
		level, uri   string
		line         int
		suppressed   string
		fingerprints int
	}
	var results []result
	for _, r := range rep.Runs[0].Results {
		pl := r.Locations[0].PhysicalLocation
		res := result{level: r.Level, uri: *pl.ArtifactLocation.URI, fingerprints: len(r.PartialFingerprints)}
		if pl.Region != nil {
			res.line = *pl.Region.StartLine
		}
		for _, s := range r.Suppressions {
			res.suppressed = *s.Kind + ": " + *s.Justification
		}
		results = append(results, res)
	}
	wantResults := []result{
		{level: "error", uri: "go.mod", line: 7, fingerprints: 2},
		{level: "warning", uri: "go.mod", line: 6, fingerprints: 2,
			suppressed: "external: not_affected (vulnerable_code_not_in_execute_path): evident observed gateway in production profiles: vulnerable package ran but no vulnerable function was seen in 10000 samples (bound <0.03% of CPU, 0.03s CPU over 2h0m0s)"},
		{level: "warning", uri: "orders/go.mod", line: 5, fingerprints: 2},
	}
	if diff := cmp.Diff(wantResults, results, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	var severities []string
	for _, rule := range rep.Runs[0].Tool.Driver.Rules {
		severities = append(severities, fmt.Sprint(rule.Properties.Properties["security-severity"]))
	}
	if diff := cmp.Diff([]string{"7.5", "7.5", "5.5"}, severities); diff != "" {
		t.Errorf("security-severity (-want +got):\n%s", diff)
	}
}

// validSARIF validates SARIF against the 2.1.0 schema go-sarif embeds,
// after checking that go-sarif's model keeps every field we wrote, so
// that the validation covers all of it.
func validSARIF(t *testing.T, out []byte) *sarif.Report {
	t.Helper()
	// go-sarif's Validate marshals its own model, which needs the arrays
	// that FromBytes initialises in its default (non-strict) mode.
	rep, err := sarif.FromBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Validate(); err != nil {
		t.Fatalf("SARIF does not validate: %v", err)
	}
	var roundTrip bytes.Buffer
	if err := rep.Write(&roundTrip); err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(roundTrip.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if m := missing("", want, got); len(m) > 0 {
		t.Errorf("go-sarif's model drops fields we write, so the schema check would miss them: %v", m)
	}
	return rep
}

// TestSARIFStableAcrossRuns checks that an alert keeps its fingerprint
// when the package's version changes and that services sharing a
// manifest line keep apart.
func TestSARIFStableAcrossRuns(t *testing.T) {
	r := result(t)
	bumped := result(t)
	bumped.Assessments[0].Finding.Package.Version = "v0.3.6"
	bumped.Assessments[0].Finding.Package.PURL = "pkg:golang/golang.org/x/text@v0.3.6"
	other := result(t)
	other.Assessments[0].Finding.Service = "catalog"
	key := func(r *Result) string {
		var buf bytes.Buffer
		if err := writeSARIF(&buf, r, nil); err != nil {
			t.Fatal(err)
		}
		rep, err := sarif.FromBytes(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return rep.Runs[0].Results[0].PartialFingerprints["primaryLocationLineHash"]
	}
	if a, b := key(r), key(bumped); a != b {
		t.Errorf("a version bump changed the fingerprint: %s, %s", a, b)
	}
	if a, b := key(r), key(other); a == b {
		t.Errorf("two services share the fingerprint %s", a)
	}
}

// TestSARIFSecuritySeverity checks the stand-ins for a missing CVSS score.
func TestSARIFSecuritySeverity(t *testing.T) {
	tests := []struct {
		name     string
		severity findings.Severity
		tier     string
		want     string
	}{
		{"CVSS", findings.Severity{Level: "high", Score: 7.5}, "P4", "7.5"},
		{"level without CVSS", findings.Severity{Level: "critical"}, "P4", "9.5"},
		{"priority without either", findings.Severity{Level: "unknown"}, "P2", "8.0"},
		{"priority P4", findings.Severity{}, "P4", "2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := assess.Assessment{Finding: findings.Finding{Vulnerability: findings.Vulnerability{ID: "X"}, Severity: tt.severity}}
			if got := sarifRuleOf(a, tt.tier).Properties.SecuritySeverity; got != tt.want {
				t.Errorf("security-severity = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestOpenVEXParsesBack reads the OpenVEX output with go-vex and checks
// that Trivy-style matching (product + subcomponent PURL) finds the
// statements.
func TestOpenVEXParsesBack(t *testing.T) {
	for _, tt := range []struct {
		name     string
		products map[string]string
	}{
		{"package as product", nil},
		{"service product with subcomponents", map[string]string{"gateway": "pkg:oci/gateway@sha256%3Aabc", "orders": "pkg:oci/orders@sha256%3Adef"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, "openvex", Options{Products: tt.products})
			doc, err := vex.Parse(out)
			if err != nil {
				t.Fatalf("go-vex cannot parse the output: %v", err)
			}
			if len(doc.Statements) != 3 {
				t.Fatalf("statements = %d, want 3", len(doc.Statements))
			}
			for _, st := range doc.Statements {
				if err := st.Validate(); err != nil {
					t.Errorf("statement %s: %v", st.Vulnerability.Name, err)
				}
			}
			product, sub := "pkg:golang/golang.org/x/text@v0.3.5", ""
			if tt.products != nil {
				product, sub = tt.products["gateway"], "pkg:golang/golang.org/x/text@v0.3.5"
			}
			var subs []string
			if sub != "" {
				subs = []string{sub}
			}
			m := doc.Matches("GO-2021-0113", product, subs)
			if len(m) != 1 || m[0].Status != vex.StatusAffected {
				t.Errorf("matches for GO-2021-0113 = %+v, want one affected statement", m)
			}
			if m := doc.Matches("CVE-2021-38561", product, subs); len(m) != 1 {
				t.Errorf("the alias does not match: %+v", m)
			}
			if !strings.HasPrefix(doc.Context, "https://openvex.dev/ns/v0.2.0") {
				t.Errorf("@context = %q", doc.Context)
			}
		})
	}
}

// TestCycloneDXSchema decodes the CycloneDX output with cyclonedx-go and
// validates it against the 1.6 JSON schema shipped with cyclonedx-go.
func TestCycloneDXSchema(t *testing.T) {
	out := render(t, "cyclonedx", Options{})
	golden(t, "report.cdx.golden", out)
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("cyclonedx-go cannot decode the output: %v", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Errorf("spec version = %v", bom.SpecVersion)
	}
	states := map[string]cdx.ImpactAnalysisState{}
	for _, v := range *bom.Vulnerabilities {
		states[v.ID] = v.Analysis.State
	}
	want := map[string]cdx.ImpactAnalysisState{"GO-2021-0113": cdx.IASExploitable, "GO-2023-1571": cdx.IASNotAffected, "GO-2022-0956": cdx.IASInTriage}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("analysis states (-want +got):\n%s", diff)
	}
	var evidence bool
	for _, c := range *bom.Components {
		if c.PackageURL == "pkg:golang/golang.org/x/text@v0.3.5" && c.Evidence != nil && c.Evidence.Callstack != nil {
			evidence = true
		}
	}
	if !evidence {
		t.Error("the executed component has no callstack evidence")
	}

	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil || len(bytes.TrimSpace(dir)) == 0 {
		t.Skipf("cyclonedx-go's schema directory is not in the module cache (%v); decoding was checked", err)
	}
	// The schema refers to its SPDX and JSF companions by URL: load them
	// from the same directory, so the test needs no network.
	file := func(name string) gojsonschema.JSONLoader {
		return gojsonschema.NewReferenceLoader("file://" + filepath.ToSlash(filepath.Join(strings.TrimSpace(string(dir)), "schema", name)))
	}
	sl := gojsonschema.NewSchemaLoader()
	if err := sl.AddSchema("http://cyclonedx.org/schema/spdx.schema.json", file("spdx.schema.json")); err != nil {
		t.Fatal(err)
	}
	if err := sl.AddSchema("http://cyclonedx.org/schema/jsf-0.82.schema.json", file("jsf-0.82.schemax.json")); err != nil {
		t.Fatal(err)
	}
	schema, err := sl.Compile(file("bom-1.6.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := schema.Validate(gojsonschema.NewBytesLoader(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors() {
		t.Errorf("schema: %s", e)
	}
}

func TestVEXStatusesCovered(t *testing.T) {
	for _, s := range []string{assess.StatusAffected, assess.StatusNotAffected, assess.StatusUnderInvestigation} {
		if _, ok := cdxStates[s]; !ok {
			t.Errorf("VEX status %s has no CycloneDX state", s)
		}
	}
}

// missing lists the paths of want that got lacks or holds differently:
// go-sarif adds defaults of its own, but must keep everything we wrote.
func missing(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range w {
			out = append(out, missing(path+"."+k, v, g[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{path}
		}
		var out []string
		for i := range w {
			out = append(out, missing(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if !cmp.Equal(want, got) {
		return []string{path}
	}
	return nil
}

// TestSARIFFallbackLocations checks where a finding goes when no
// manifest declares its package: always a file, since GitHub rejects an
// upload with a result that has none.
func TestSARIFFallbackLocations(t *testing.T) {
	tree, _, err := manifest.Scan(filepath.Join("testdata", "src"), manifest.Ecosystems())
	if err != nil {
		t.Fatal(err)
	}
	crate := findings.Package{Ecosystem: "crates.io", Name: "serde", Version: "1.0.0"}
	tests := []struct {
		name string
		f    findings.Finding
		tree *manifest.Tree
		want sarifPhysical
	}{
		{"undeclared Go module: the service's go.mod, no line",
			findings.Finding{Service: "orders", Package: findings.Package{Ecosystem: "Go", Name: "golang.org/x/crypto", Version: "v0.1.0"}}, tree,
			sarifPhysical{ArtifactLocation: sarifArtifact{URI: "orders/go.mod", URIBaseID: srcRoot}}},
		{"no manifest: the report it came from",
			findings.Finding{Package: crate, Sources: []findings.Source{{Tool: "trivy", File: filepath.Join("testdata", "src", "reports", "trivy.json")}}}, tree,
			sarifPhysical{ArtifactLocation: sarifArtifact{URI: "reports/trivy.json", URIBaseID: srcRoot}}},
		{"a report outside the root: the conventional manifest",
			findings.Finding{Package: crate, Sources: []findings.Source{{Tool: "trivy", File: "trivy.json"}}}, tree,
			sarifPhysical{ArtifactLocation: sarifArtifact{URI: "Cargo.lock", URIBaseID: srcRoot}}},
		{"no source tree",
			findings.Finding{Package: findings.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}}, nil,
			sarifPhysical{ArtifactLocation: sarifArtifact{URI: "go.mod", URIBaseID: srcRoot}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, sarifPhysicalOf(tt.f, tt.tree)); diff != "" {
				t.Errorf("location (-want +got):\n%s", diff)
			}
		})
	}
}
