package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	"github.com/openvex/go-vex/pkg/vex"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
	"github.com/xeipuuv/gojsonschema"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/manifest"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
)

// render writes r in format.
func render(t *testing.T, format string, opts Options, r *Result) []byte {
	t.Helper()
	f, err := Lookup(format, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSARIFSchema validates the SARIF output against the SARIF 2.1.0
// schema, then checks what GitHub code scanning reads: the manifest
// line, security-severity, suppressions and fingerprints.
func TestSARIFSchema(t *testing.T) {
	tree, skipped, err := manifest.Scan(filepath.Join("testdata", "src"), []string{osv.EcosystemGo})
	if err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	out := render(t, "sarif", Options{Manifests: tree}, result(t))
	golden(t, "report.sarif.golden", out)
	rep := validSARIF(t, out)
	// Without a source tree, locations have a file and no line.
	validSARIF(t, render(t, "sarif", Options{}, result(t)))

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
			suppressed: "external: not_affected (vulnerable_code_not_in_execute_path): evident observed gateway in the profiles it received: vulnerable package ran but no vulnerable function was seen in 10000 samples (bound <0.03% of the service's CPU, 0.03s CPU over 2h0m0s)"},
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
	results := func(r *Result) []*sarif.Result {
		var buf bytes.Buffer
		if err := writeSARIF(&buf, r, nil); err != nil {
			t.Fatal(err)
		}
		rep, err := sarif.FromBytes(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return rep.Runs[0].Results
	}
	key := func(r *Result) string {
		return results(r)[0].PartialFingerprints["primaryLocationLineHash"]
	}
	if a, b := key(r), key(bumped); a != b {
		t.Errorf("a version bump changed the fingerprint: %s, %s", a, b)
	}
	if a, b := key(r), key(other); a == b {
		t.Errorf("two services share the fingerprint %s", a)
	}
	// A distribution package's ecosystem names its release since
	// 2026-12-07 ("Debian:11", before "Debian"), and an image moved to
	// the next release that is still vulnerable is the same alert, as a
	// version bump is: neither reopens an alert that was dismissed.
	deb := func(eco, version string) *Result {
		r := result(t)
		r.Assessments[0].Finding.Package = findings.Package{PURL: "pkg:deb/debian/openssl@" + version, Ecosystem: eco, Name: "openssl", Version: version}
		return r
	}
	if a, b, c := key(deb("Debian", "1.1.1n-0+deb11u1")), key(deb("Debian:11", "1.1.1n-0+deb11u1")), key(deb("Debian:12", "3.0.11-1~deb12u2")); a != b || b != c {
		t.Errorf("the release changed the fingerprint: Debian %s, Debian:11 %s, Debian:12 %s", a, b, c)
	}
	// Two versions of the package in one service at once (an npm package
	// nested at another version): two alerts, which GitHub would merge
	// into one under one fingerprint.
	twice := result(t)
	copy2 := twice.Assessments[0]
	copy2.Finding.Package.Version = "v0.3.6"
	copy2.Finding.Package.PURL = "pkg:golang/golang.org/x/text@v0.3.6"
	twice.Assessments = append(twice.Assessments, copy2)
	seen := map[string]string{}
	for _, res := range results(twice) {
		k := *res.RuleID + " " + res.PartialFingerprints["primaryLocationLineHash"]
		if prev, dup := seen[k]; dup {
			t.Errorf("results %q and %q share rule and fingerprint %s", prev, *res.Message.Text, k)
		}
		seen[k] = *res.Message.Text
	}
}

// TestSARIFURI: artifact locations are URI references, not paths.
func TestSARIFURI(t *testing.T) {
	for path, want := range map[string]string{
		"go.mod":                  "go.mod",
		"examples/shop/go.mod":    "examples/shop/go.mod",
		"svc a/package-lock.json": "svc%20a/package-lock.json",
		"a#b/go.mod":              "a%23b/go.mod",
		"100%/go.mod":             "100%25/go.mod",
		"a:b/go.mod":              "./a:b/go.mod",
	} {
		if got := sarifURI(path); got != want {
			t.Errorf("sarifURI(%q) = %q, want %q", path, got, want)
		}
		if u, err := url.Parse(sarifURI(path)); err != nil || u.Scheme != "" || strings.TrimPrefix(u.Path, "./") != path {
			t.Errorf("sarifURI(%q) reads back as %+v, %v", path, u, err)
		}
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

// grypeStatus is the status Grype (grype/vex/openvex, v0.116 to v0.121)
// applies to a match: the first statement whose product is one of the
// scanned artifact's identifiers with the package as subcomponent, else
// the first whose product is the package itself. "" when none matches.
func grypeStatus(doc *vex.VEX, vuln string, artifact []string, pkg string) vex.Status {
	for _, p := range artifact {
		if m := doc.Matches(vuln, p, []string{pkg}); len(m) > 0 {
			return m[0].Status
		}
	}
	if m := doc.Matches(vuln, pkg, nil); len(m) > 0 {
		return m[0].Status
	}
	return ""
}

// trivyStatus is the status Trivy (pkg/vex/openvex.go, v0.74) applies: the
// package as product first, then the scanned artifact (the SBOM's root
// component) as product with the package as subcomponent; the last
// matching statement wins. "" when none matches.
func trivyStatus(doc *vex.VEX, vuln, root, pkg string) vex.Status {
	for _, try := range []struct {
		product string
		sub     []string
	}{{pkg, []string{""}}, {root, []string{pkg}}} {
		if m := doc.Matches(vuln, try.product, try.sub); len(m) > 0 {
			if st := m[len(m)-1].Status; st == vex.StatusNotAffected || st == vex.StatusFixed {
				return st
			}
		}
	}
	return ""
}

// TestOpenVEXProducts checks the identity of OpenVEX statements: each is
// scoped to the product a service runs as, one status per vulnerability
// and product, and Grype's and Trivy's matching (through go-vex) applies
// each service's own status to it and to no other.
func TestOpenVEXProducts(t *testing.T) {
	const (
		xtext = "pkg:golang/golang.org/x/text@v0.3.5"
		xnet  = "pkg:golang/golang.org/x/net@v0.0.0-20220906165146-f3363e06e74c"
		yaml  = "pkg:golang/gopkg.in/yaml.v2@v2.2.2"
	)
	// moved returns a copy of the assessment of vuln, for another service
	// and VEX status: the report layer only groups what assess decided.
	moved := func(r *Result, vuln, service, status string) assess.Assessment {
		i := slices.IndexFunc(r.Assessments, func(a assess.Assessment) bool { return a.Finding.Vulnerability.ID == vuln })
		a := r.Assessments[i]
		a.Finding.Service = service
		a.VEX = assess.VEX{Status: status, Statement: status + " in " + service}
		if status == assess.StatusNotAffected {
			a.VEX.Justification = assess.JustificationNotInPath
		}
		return a
	}
	type check struct {
		vuln, pkg string
		// artifact is how the scanners identify what they scan: Grype's
		// product identifiers, Trivy's root component purl.
		grype []string
		trivy string
		want  vex.Status // "" when nothing may match
	}
	tests := []struct {
		name     string
		products map[string]string
		edit     func(r *Result)
		checks   []check
		warnings int
	}{
		{
			name: "service name as product",
			edit: func(r *Result) {
				// The same package and vulnerability in another service,
				// with another status.
				r.Assessments = append(r.Assessments, moved(r, "GO-2023-1571", "orders", assess.StatusUnderInvestigation))
			},
			checks: []check{
				{"GO-2021-0113", xtext, []string{"pkg:generic/gateway@1.0.0"}, "pkg:generic/gateway@1.0.0", vex.StatusAffected},
				{"CVE-2021-38561", xtext, []string{"pkg:generic/gateway@1.0.0"}, "pkg:generic/gateway", vex.StatusAffected},
				{"GO-2023-1571", xnet, []string{"pkg:generic/gateway@1.0.0"}, "pkg:generic/gateway@1.0.0", vex.StatusNotAffected},
				{"GO-2023-1571", xnet, []string{"pkg:generic/orders@1.0.0"}, "pkg:generic/orders@1.0.0", vex.StatusUnderInvestigation},
				{"GO-2023-1571", xnet, []string{"pkg:generic/catalog@1.0.0"}, "pkg:generic/catalog@1.0.0", ""},
				{"GO-2022-0956", yaml, []string{"pkg:generic/orders@2"}, "pkg:generic/orders@2", vex.StatusUnderInvestigation},
			},
		},
		{
			name: "container images from telemetry",
			edit: func(r *Result) {
				r.Snapshot.Service("gateway").Images = []telemetry.Image{{Name: "registry.example.com/shop/gateway", Digest: "sha256:0123", Tags: []string{"v1"}}}
			},
			checks: []check{
				// Grype's identifiers of an image pulled by digest, Trivy's
				// root purl of the same image.
				{"GO-2023-1571", xnet, []string{"registry.example.com/shop/gateway@sha256:0123", "pkg:oci/gateway@sha256%3A0123?repository_url=registry.example.com%2Fshop"},
					"pkg:oci/gateway@sha256%3A0123?arch=amd64&repository_url=registry.example.com%2Fshop%2Fgateway", vex.StatusNotAffected},
				{"GO-2021-0113", xtext, []string{"pkg:oci/gateway@sha256%3A0123"}, "pkg:oci/gateway@sha256%3A0123", vex.StatusAffected},
				{"GO-2023-1571", xnet, []string{"pkg:oci/gateway@sha256%3A4567"}, "pkg:oci/gateway@sha256%3A4567", ""},
				{"GO-2023-1571", xnet, []string{"pkg:generic/gateway@1.0.0"}, "pkg:generic/gateway", ""},
			},
		},
		{
			// api in shop and api in billing, merged into one service,
			// are each the product of its statements.
			name: "services of one name in two namespaces",
			edit: func(r *Result) {
				s := r.Snapshot.Service("orders")
				s.Namespace, s.Namespaces = "shop", []string{"shop", "billing"}
			},
			checks: []check{
				{"GO-2022-0956", yaml, []string{"pkg:generic/shop/orders@2"}, "pkg:generic/shop/orders@2", vex.StatusUnderInvestigation},
				{"GO-2022-0956", yaml, []string{"pkg:generic/billing/orders@2"}, "pkg:generic/billing/orders@2", vex.StatusUnderInvestigation},
				{"GO-2022-0956", yaml, []string{"pkg:generic/orders@2"}, "pkg:generic/orders@2", ""},
			},
		},
		{
			name:     "configured products, one shared by two services",
			products: map[string]string{"gateway": "pkg:oci/shop@sha256%3Aabc", "orders": "pkg:oci/shop@sha256%3Aabc"},
			edit: func(r *Result) {
				// gateway has GO-2023-1571 not_affected; orders, running
				// the same image, has it affected.
				r.Assessments = append(r.Assessments, moved(r, "GO-2023-1571", "orders", assess.StatusAffected))
			},
			checks: []check{
				{"GO-2023-1571", xnet, []string{"pkg:oci/shop@sha256%3Aabc"}, "pkg:oci/shop@sha256%3Aabc", vex.StatusAffected},
				{"GO-2021-0113", xtext, []string{"pkg:oci/shop@sha256%3Aabc"}, "pkg:oci/shop@sha256%3Aabc", vex.StatusAffected},
			},
		},
		{
			// Trivy and Syft keep the dot of ruamel.yaml in its package
			// URL, and go-vex compares names as packageurl-go reads
			// them (lower case, "_" as "-"): the statement names both.
			name: "a PyPI name with a dot",
			edit: func(r *Result) {
				a := moved(r, "GO-2023-1571", "gateway", assess.StatusNotAffected)
				a.Finding.Vulnerability = findings.Vulnerability{ID: "CVE-2019-20478"}
				a.Finding.Package = findings.Package{PURL: "pkg:pypi/ruamel-yaml@0.16.5", Ecosystem: "PyPI", Name: "ruamel-yaml", Version: "0.16.5",
					ScannerPURL: "pkg:pypi/ruamel.yaml@0.16.5"}
				r.Assessments = append(r.Assessments, a)
			},
			checks: []check{
				{"CVE-2019-20478", "pkg:pypi/ruamel.yaml@0.16.5", []string{"pkg:generic/gateway@1.0.0"}, "pkg:generic/gateway@1.0.0", vex.StatusNotAffected},
				{"CVE-2019-20478", "pkg:pypi/ruamel-yaml@0.16.5", []string{"pkg:generic/gateway@1.0.0"}, "pkg:generic/gateway@1.0.0", vex.StatusNotAffected},
				{"CVE-2019-20478", "pkg:pypi/ruamel.yaml@0.16.5", []string{"pkg:generic/orders@1.0.0"}, "pkg:generic/orders@1.0.0", ""},
			},
		},
		{
			name: "a finding without a service",
			edit: func(r *Result) {
				r.Assessments = append(r.Assessments, moved(r, "GO-2023-1571", "", assess.StatusNotAffected))
			},
			checks: []check{
				// Stated for the package everywhere, and never not_affected.
				{"GO-2023-1571", xnet, []string{"pkg:generic/other@1"}, "pkg:generic/other@1", vex.StatusUnderInvestigation},
			},
			warnings: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := result(t)
			tt.edit(r)
			var warnings []error
			f, err := Lookup("openvex", Options{Products: tt.products, Warn: func(err error) { warnings = append(warnings, err) }})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := f.Write(&buf, r); err != nil {
				t.Fatal(err)
			}
			doc, err := vex.Parse(buf.Bytes())
			if err != nil {
				t.Fatalf("go-vex cannot parse the output: %v", err)
			}
			if !strings.HasPrefix(doc.Context, "https://openvex.dev/ns/v0.2.0") || doc.Timestamp == nil || doc.ID == "" {
				t.Errorf("document metadata: @context %q, timestamp %v, @id %q", doc.Context, doc.Timestamp, doc.ID)
			}
			// go-vex's model keeps every field we write: what it writes back
			// is what we wrote.
			var again bytes.Buffer
			if err := doc.ToJSON(&again); err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(buf.Bytes(), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("go-vex round trip changes the document (-ours +go-vex):\n%s", diff)
			}
			seen := map[string]vex.Status{}
			for _, st := range doc.Statements {
				if err := st.Validate(); err != nil {
					t.Errorf("statement %s: %v", st.Vulnerability.Name, err)
				}
				if len(st.Products) != 1 {
					t.Fatalf("statement %s has %d products, want 1", st.Vulnerability.Name, len(st.Products))
				}
				p := st.Products[0]
				if len(p.Subcomponents) == 0 && st.Status == vex.StatusNotAffected {
					t.Errorf("statement %s: not_affected for the package %s alone", st.Vulnerability.Name, p.ID)
				}
				k := string(st.Vulnerability.Name) + " " + p.ID
				if prev, dup := seen[k]; dup {
					t.Errorf("two statements for %s: %s and %s", k, prev, st.Status)
				}
				seen[k] = st.Status
			}
			for _, c := range tt.checks {
				if got := grypeStatus(doc, c.vuln, c.grype, c.pkg); got != c.want {
					t.Errorf("Grype: %s in %s on %v = %q, want %q", c.vuln, c.pkg, c.grype, got, c.want)
				}
				want := c.want
				if want != vex.StatusNotAffected {
					want = "" // Trivy acts on not_affected and fixed only
				}
				if got := trivyStatus(doc, c.vuln, c.trivy, c.pkg); got != want {
					t.Errorf("Trivy: %s in %s on %s = %q, want %q", c.vuln, c.pkg, c.trivy, got, want)
				}
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings = %v, want %d", warnings, tt.warnings)
			}
		})
	}
}

// TestCycloneDXSchema validates the CycloneDX output against the 1.6 JSON
// schema shipped with cyclonedx-go (the schema the strict validator of
// @cyclonedx/cyclonedx-library uses for 1.6), and checks what Trivy and
// Grype need of it: a serial number, affects that are BOM-Links into the
// document, and one analysis per vulnerability and component.
func TestCycloneDXSchema(t *testing.T) {
	out := render(t, "cyclonedx", Options{}, result(t))
	golden(t, "report.cdx.golden", out)

	// A harder case: first-party frames with no known module, one
	// service known by its image, and one vulnerability in two states.
	r := result(t)
	gw := r.Snapshot.Service("gateway")
	gw.Images = []telemetry.Image{{Name: "registry.example.com/shop/gateway", Digest: "sha256:0123"}}
	gw.Functions[0].Stack = append(gw.Functions[0].Stack, attribution.Func{Language: attribution.Go, Package: "main", Symbol: "main"})
	i := slices.IndexFunc(r.Assessments, func(a assess.Assessment) bool { return a.Finding.Vulnerability.ID == "GO-2023-1571" })
	orders := r.Assessments[i]
	orders.Finding.Service = "orders"
	orders.VEX = assess.VEX{Status: assess.StatusUnderInvestigation, Statement: "no profiles"}
	r.Assessments = append(r.Assessments, orders)
	// Another record of the same CVE (GitHub's, as Grype names it), on
	// another package of gateway, not_affected: its id sorts first, and
	// its CVE entry must neither repeat a bom-ref nor come before the
	// more cautious ones of GO-2023-1571's.
	j := slices.IndexFunc(r.Assessments, func(a assess.Assessment) bool { return a.Finding.Vulnerability.ID == "GO-2021-0113" })
	ghsa := r.Assessments[j]
	ghsa.Finding.Vulnerability = findings.Vulnerability{ID: "GHSA-vvpx-j8f3-3w6h", Aliases: []string{"CVE-2022-41723"}}
	ghsa.VEX = assess.VEX{Status: assess.StatusNotAffected, Justification: assess.JustificationNotInPath, Statement: "not seen"}
	r.Assessments = append(r.Assessments, ghsa)
	edited := render(t, "cyclonedx", Options{}, r)

	for name, out := range map[string][]byte{"golden": out, "edited": edited} {
		t.Run(name, func(t *testing.T) {
			validateCycloneDX(t, out)
			var bom cdx.BOM
			if err := cdx.NewBOMDecoder(bytes.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
				t.Fatalf("cyclonedx-go cannot decode the output: %v", err)
			}
			if bom.SpecVersion != cdx.SpecVersion1_6 {
				t.Errorf("spec version = %v", bom.SpecVersion)
			}
			refs := map[string]bool{}
			for _, c := range *bom.Components {
				refs[c.BOMRef] = true
			}
			analyses := map[string]cdx.ImpactAnalysisState{}
			bomRefs := map[string]bool{}
			for _, v := range *bom.Vulnerabilities {
				if bomRefs[v.BOMRef] {
					t.Errorf("bom-ref %s given twice", v.BOMRef)
				}
				bomRefs[v.BOMRef] = true
				for _, a := range *v.Affects {
					link, err := cdx.ParseBOMLink(a.Ref)
					if err != nil || link.SerialNumber() != bom.SerialNumber || link.Version() != bom.Version || !refs[link.Reference()] {
						t.Errorf("%s: affects %q is no BOM-Link to a component of this BOM (%v)", v.ID, a.Ref, err)
						continue
					}
					k := v.ID + " " + link.Reference()
					if prev, dup := analyses[k]; dup {
						t.Errorf("two analyses for %s: %s and %s", k, prev, v.Analysis.State)
					}
					analyses[k] = v.Analysis.State
				}
			}
		})
	}

	// What the scanners make of the edited document, for the packages of
	// each service (Trivy scanning this BOM matches its VEX by bom-ref).
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(edited), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	const xnet = "pkg:golang/golang.org/x/net@v0.0.0-20220906165146-f3363e06e74c"
	tests := []struct {
		vuln, ref     string
		trivy, grype  bool // suppressed
		wantComponent bool
	}{
		{"GO-2023-1571", "product:pkg:oci/gateway@sha256:0123#" + xnet, true, false, true},
		{"GO-2023-1571", "product:pkg:generic/orders#" + xnet, false, false, true},
		// Trivy and Grype name it by its CVE.
		{"CVE-2022-41723", "product:pkg:oci/gateway@sha256:0123#" + xnet, true, false, true},
		{"GO-2021-0113", "product:pkg:oci/gateway@sha256:0123#pkg:golang/golang.org/x/text@v0.3.5", false, false, true},
	}
	for _, tt := range tests {
		if tt.wantComponent && !slices.ContainsFunc(*bom.Components, func(c cdx.Component) bool { return c.BOMRef == tt.ref }) {
			t.Errorf("no component %s", tt.ref)
		}
		if got := trivySuppresses(&bom, tt.vuln, tt.ref); got != tt.trivy {
			t.Errorf("Trivy suppresses %s in %s = %v, want %v", tt.vuln, tt.ref, got, tt.trivy)
		}
		if got := grypeSuppresses(&bom, tt.vuln); got != tt.grype {
			t.Errorf("Grype suppresses %s = %v, want %v", tt.vuln, got, tt.grype)
		}
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
}

// trivySuppresses is what Trivy (pkg/vex/cyclonedx.go, v0.74) does with a
// CycloneDX VEX: the last vulnerability entry of an id is the statement,
// and a not_affected one suppresses the components its affects link to.
func trivySuppresses(bom *cdx.BOM, vuln, ref string) bool {
	var last *cdx.Vulnerability
	for i, v := range *bom.Vulnerabilities {
		if v.ID == vuln {
			last = &(*bom.Vulnerabilities)[i]
		}
	}
	if last == nil || last.Analysis.State != cdx.IASNotAffected {
		return false
	}
	for _, a := range *last.Affects {
		if link, err := cdx.ParseBOMLink(a.Ref); err == nil && link.SerialNumber() == bom.SerialNumber && link.Reference() == ref {
			return true
		}
	}
	return false
}

// grypeSuppresses is what Grype (grype/vex/cyclonedx) does: the first
// entry of an id decides, whatever it affects.
func grypeSuppresses(bom *cdx.BOM, vuln string) bool {
	for _, v := range *bom.Vulnerabilities {
		if v.ID == vuln {
			return v.Analysis.State == cdx.IASNotAffected
		}
	}
	return false
}

// validateCycloneDX validates a document against the CycloneDX 1.6 JSON
// schema of the cyclonedx-go module in use, with its SPDX and JSF
// companions from the same directory, so the test needs no network.
func validateCycloneDX(t *testing.T, out []byte) {
	t.Helper()
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil || len(bytes.TrimSpace(dir)) == 0 {
		t.Fatalf("cyclonedx-go's schema directory is not in the module cache: %v", err)
	}
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
	tree, _, err := manifest.Scan(filepath.Join("testdata", "src"), []string{osv.EcosystemGo})
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

func TestImagePURLs(t *testing.T) {
	tests := []struct {
		name string
		img  telemetry.Image
		want []string
	}{
		{"digest", telemetry.Image{Name: "registry.example.com/shop/gateway", Digest: "sha256:0123", Tags: []string{"v1"}},
			[]string{"pkg:oci/gateway@sha256:0123"}},
		{"port, tag and case in the name", telemetry.Image{Name: "registry.example.com:5000/shop/Gateway:v1", Digest: "sha256:0123"},
			[]string{"pkg:oci/gateway@sha256:0123"}},
		{"manifest and index digests", telemetry.Image{Name: "gateway", Digest: "sha256:0123", RepoDigests: []string{"registry.example.com/shop/gateway@sha256:4567", "mirror.example.com/gateway@sha256:0123"}},
			[]string{"pkg:oci/gateway@sha256:0123", "pkg:oci/gateway@sha256:4567"}},
		{"repo digests only", telemetry.Image{RepoDigests: []string{"registry.example.com/shop/gateway@sha256:4567"}},
			[]string{"pkg:oci/gateway@sha256:4567"}},
		{"tags only", telemetry.Image{Name: "registry.example.com/shop/gateway", Tags: []string{"v1", "latest"}},
			[]string{"pkg:oci/gateway?tag=v1", "pkg:oci/gateway?tag=latest"}},
		{"nothing to name", telemetry.Image{Name: "registry.example.com/"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, imagePURLs(tt.img)); diff != "" {
				t.Errorf("imagePURLs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCycloneDXTimeSamples: a service's properties say how many of its
// profile samples are of time, so that a heap profile's allocated objects
// are not read as samples of the service's CPU.
func TestCycloneDXTimeSamples(t *testing.T) {
	tests := []struct {
		name     string
		profiles []string
		want     map[string]string
	}{
		{"cpu", []string{"go-cpu.pb.gz"}, map[string]string{"evident:profile_samples": "59", "evident:profile_time_samples": "59"}},
		{"allocs", []string{"go-allocs.pb.gz"}, map[string]string{"evident:profile_samples": "19781", "evident:profile_time_samples": "0"}},
		{"cpu and allocs", []string{"go-cpu.pb.gz", "go-allocs.pb.gz"}, map[string]string{"evident:profile_samples": "19840", "evident:profile_time_samples": "59"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Lookup("cyclonedx", Options{})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := f.Write(&buf, profiledResult(t, tt.profiles...)); err != nil {
				t.Fatal(err)
			}
			validateCycloneDX(t, buf.Bytes())
			var bom cdx.BOM
			if err := cdx.NewBOMDecoder(&buf, cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
				t.Fatal(err)
			}
			if bom.Services == nil || len(*bom.Services) != 1 || (*bom.Services)[0].Properties == nil {
				t.Fatalf("services %+v, want api with properties", bom.Services)
			}
			got := map[string]string{}
			for _, p := range *(*bom.Services)[0].Properties {
				if strings.HasPrefix(p.Name, "evident:profile_") {
					got[p.Name] = p.Value
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("profile properties of api (-want +got):\n%s", diff)
			}
		})
	}
}
