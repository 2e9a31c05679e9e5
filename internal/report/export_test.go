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
// schema (the OASIS errata01 schema go-sarif embeds), after checking
// that go-sarif's model keeps every field we wrote, so that the
// validation covers all of it.
func TestSARIFSchema(t *testing.T) {
	out := render(t, "sarif", Options{})
	golden(t, "report.sarif.golden", out)
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
	if n := len(rep.Runs[0].Results); n != 3 {
		t.Errorf("results = %d, want 3", n)
	}
	if lvl := rep.Runs[0].Results[0].Level; lvl != "error" {
		t.Errorf("P1 level = %s, want error", lvl)
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
