package findings

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCycloneDX(t *testing.T) {
	runGolden(t, withMatcher(ParseCycloneDX, testDB(t)), []goldenCase{
		{name: "cyclonedx-gomod 1.4", input: "cyclonedx/gomod-app-1.4.json", golden: "cyclonedx/gomod-app-1.4.golden"},
		{name: "cyclonedx-gomod 1.5", input: "cyclonedx/gomod-app-1.5.json", golden: "cyclonedx/gomod-app-1.5.golden"},
		{name: "cyclonedx-gomod 1.6", input: "cyclonedx/gomod-app-1.6.json", golden: "cyclonedx/gomod-app-1.6.golden"},
		{name: "cyclonedx-gomod xml", input: "cyclonedx/gomod-app-1.6.xml", golden: "cyclonedx/gomod-app-1.6.xml.golden"},
		{name: "cyclonedx-gomod packages", input: "cyclonedx/gomod-app-packages.json", golden: "cyclonedx/gomod-app-packages.golden"},
		{name: "cyclonedx-gomod bin, development build", input: "cyclonedx/gomod-bin-devel.json", golden: "cyclonedx/gomod-bin-devel.golden"},
		{name: "trivy vulnerabilities", input: "cyclonedx/trivy-fs.json", golden: "cyclonedx/trivy-fs.golden"},
		{name: "embedded vex", input: "cyclonedx/vex-embedded.json", golden: "cyclonedx/vex-embedded.golden"},
		// evident's own CycloneDX report (internal/report's golden): the
		// services are applications without a version, not packages.
		{name: "evident's report", input: "cyclonedx/evident-report.json", golden: "cyclonedx/evident-report.golden"},
		{name: "linux build", input: "cyclonedx/platform.json", golden: "cyclonedx/platform.golden"},
		{name: "windows build", input: "cyclonedx/platform-windows.json", golden: "cyclonedx/platform-windows.golden"},
	})
}

// TestParseCycloneDXVersions checks that the same SBOM written as spec
// 1.4, 1.5, 1.6 and as XML yields the same findings.
func TestParseCycloneDXVersions(t *testing.T) {
	db := testDB(t)
	var first []Finding
	for i, in := range []string{"gomod-app-1.4.json", "gomod-app-1.5.json", "gomod-app-1.6.json", "gomod-app-1.6.xml"} {
		f, err := os.Open(filepath.Join("testdata", "cyclonedx", in))
		if err != nil {
			t.Fatal(err)
		}
		fs, errs := ParseCycloneDX(f, "sbom", db)
		f.Close()
		if len(errs) > 0 {
			t.Errorf("%s: %v", in, errs)
		}
		if i == 0 {
			first = fs
			continue
		}
		if diff := cmp.Diff(first, fs); diff != "" {
			t.Errorf("%s differs from gomod-app-1.4.json (-1.4 +%s):\n%s", in, in, diff)
		}
	}
}

func TestCycloneDXComponents(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Component
	}{
		{
			name:  "cyclonedx-gomod app",
			input: "gomod-app-1.6.json",
			want: []Component{
				{Ref: "pkg:golang/example.com/vulnapp@v1.0.0?type=module", Package: Package{PURL: "pkg:golang/example.com/vulnapp@v1.0.0", Ecosystem: "Go", Name: "example.com/vulnapp", Version: "v1.0.0"}, GOOS: "linux", GOARCH: "amd64"},
				{Ref: "pkg:golang/golang.org/x/text@v0.3.5?type=module", Package: Package{PURL: "pkg:golang/golang.org/x/text@v0.3.5", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}, GOOS: "linux", GOARCH: "amd64"},
				{Ref: "pkg:golang/gopkg.in/yaml.v2@v2.2.2?type=module", Package: Package{PURL: "pkg:golang/gopkg.in/yaml.v2@v2.2.2", Ecosystem: "Go", Name: "gopkg.in/yaml.v2", Version: "v2.2.2"}, GOOS: "linux", GOARCH: "amd64"},
				{Ref: "pkg:golang/std@go1.26.8?type=module", Package: Package{PURL: "pkg:golang/stdlib@v1.26.8", Ecosystem: "Go", Name: "stdlib", Version: "v1.26.8"}, GOOS: "linux", GOARCH: "amd64"},
			},
		},
		{
			name:  "packages are not components",
			input: "gomod-app-packages.json",
			want: []Component{
				{Ref: "pkg:golang/example.com/vulnapp@v1.0.0?type=module", Package: Package{PURL: "pkg:golang/example.com/vulnapp@v1.0.0", Ecosystem: "Go", Name: "example.com/vulnapp", Version: "v1.0.0"}, GOOS: "linux", GOARCH: "amd64"},
				{Ref: "pkg:golang/golang.org/x/text@v0.3.5?type=module", Package: Package{PURL: "pkg:golang/golang.org/x/text@v0.3.5", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}, GOOS: "linux", GOARCH: "amd64"},
				{Ref: "pkg:golang/gopkg.in/yaml.v2@v2.2.2?type=module", Package: Package{PURL: "pkg:golang/gopkg.in/yaml.v2@v2.2.2", Ecosystem: "Go", Name: "gopkg.in/yaml.v2", Version: "v2.2.2"}, GOOS: "linux", GOARCH: "amd64"},
				{Ref: "pkg:golang/std@go1.26.8?type=module", Package: Package{PURL: "pkg:golang/stdlib@v1.26.8", Ecosystem: "Go", Name: "stdlib", Version: "v1.26.8"}, GOOS: "linux", GOARCH: "amd64"},
			},
		},
		{
			name:  "trivy skips its file components",
			input: "trivy-fs.json",
			want: []Component{
				{Ref: "pkg:golang/golang.org/x/text@v0.3.5", Package: Package{PURL: "pkg:golang/golang.org/x/text@v0.3.5", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}},
				{Ref: "pkg:golang/gopkg.in/yaml.v2@v2.2.2", Package: Package{PURL: "pkg:golang/gopkg.in/yaml.v2@v2.2.2", Ecosystem: "Go", Name: "gopkg.in/yaml.v2", Version: "v2.2.2"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "cyclonedx", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, errs := cycloneDXComponents(f, tc.input)
			if len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("components mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCycloneDXBad(t *testing.T) {
	const head = `{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, `
	const text = `{"bom-ref": "text", "type": "library", "name": "golang.org/x/text", "version": "v0.3.5", "purl": "pkg:golang/golang.org/x/text@v0.3.5"}`
	runBad(t, withMatcher(ParseCycloneDX, testDB(t)), []badCase{
		{
			name:     "not json",
			input:    "bomFormat: CycloneDX\n",
			wantErrs: []string{"in.json: not a CycloneDX BOM (neither a JSON object nor XML): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "other json",
			input:    `{"SchemaVersion": 2, "Results": []}`,
			wantErrs: []string{`in.json: bomFormat "", want "CycloneDX": not the expected format`},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "no spec version",
			input:    `{"bomFormat": "CycloneDX", "components": []}`,
			wantErrs: []string{"in.json: no specVersion: not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "unknown spec version",
			input:    `{"bomFormat": "CycloneDX", "specVersion": "2.0"}`,
			wantErrs: []string{`in.json: specVersion "2.0": invalid specification version: not the expected format`},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "truncated",
			input:    head + `"components": [` + text + `, {"bom-ref": "ya`,
			wantErrs: []string{"in.json: CycloneDX JSON: it ends inside its JSON: it is cut short: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name:     "broken xml",
			input:    `<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.6"><components><component`,
			wantErrs: []string{"in.json: CycloneDX XML: XML syntax error on line 1: unexpected EOF: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name: "bad components, the good one still matches",
			input: head + `"components": [` +
				`{"bom-ref": "a", "type": "library", "name": 42},` +
				`{"bom-ref": "b", "type": "library", "name": "left-pad", "version": "1.3.0"},` +
				`{"bom-ref": "c", "type": "library", "name": "x", "purl": "golang.org/x/text@v0.3.5"},` +
				`{"bom-ref": "d", "type": "library", "name": "x", "purl": "pkg:golang/golang.org/x/text"},` +
				`{"type": "file", "name": "go.sum"},` +
				text + `,` +
				`{"bom-ref": "text", "type": "library", "name": "golang.org/x/text", "version": "v0.3.6", "purl": "pkg:golang/golang.org/x/text@v0.3.6"}` +
				`]}`,
			wantFindings: 3,
			wantErrs: []string{
				"in.json: components[0]: json: cannot unmarshal number into Go struct field Component.name of type string",
				"in.json: components[1] (bom-ref b): no package URL",
				`in.json: components[2] (bom-ref c): parse package URL "golang.org/x/text@v0.3.5": purl scheme is not "pkg": "golang.org/x/text@v0.3.5"`,
				"in.json: components[3] (bom-ref d): package golang.org/x/text: no version",
				`in.json: components[6] (bom-ref text): bom-ref "text" is not unique`,
			},
		},
		{
			name: "bad vulnerabilities, the good one still loads",
			input: head + `"components": [` + text + `, {"bom-ref": "b", "type": "library", "name": "left-pad", "version": "1.3.0"}], "vulnerabilities": [` +
				`{"id": 7},` +
				`{"affects": [{"ref": "text"}]},` +
				`{"id": "CVE-2000-0001"},` +
				`{"id": "CVE-2000-0002", "affects": [{"ref": "nowhere"}, {"ref": ""}, {"ref": "b"}]},` +
				`{"id": "CVE-2021-38561", "ratings": [{"method": "CVSSv31", "vector": "CVSS:3.1/AV:X"}, {"severity": "info"}], "affects": [{"ref": "text"}]}` +
				`]}`,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: components[1] (bom-ref b): no package URL",
				"in.json: vulnerabilities[0]: json: cannot unmarshal number into Go struct field Vulnerability.id of type string",
				"in.json: vulnerabilities[1]: no id",
				"in.json: vulnerabilities[2] (CVE-2000-0001): affects no component",
				`in.json: vulnerabilities[3] (CVE-2000-0002): affects[0]: ref "nowhere" names no component of the BOM`,
				"in.json: vulnerabilities[3] (CVE-2000-0002): affects[1]: no ref",
				`in.json: vulnerabilities[3] (CVE-2000-0002): affects[2]: ref "b" names a component that was skipped`,
			},
		},
		{
			name:         "empty vulnerabilities: an SBOM, matched",
			input:        head + `"components": [` + text + `], "vulnerabilities": []}`,
			wantFindings: 3,
		},
	})
}

// appFindings are the module-level findings of testdata/govulncheck/app in
// the test database.
var appFindings = []moduleFinding{
	{"pkg:golang/golang.org/x/text@v0.3.5", "GO-2021-0113"},
	{"pkg:golang/golang.org/x/text@v0.3.5", "GO-2022-1059"},
	{"pkg:golang/golang.org/x/text@v0.3.5", "GO-2026-5970"},
	{"pkg:golang/gopkg.in/yaml.v2@v2.2.2", "GO-2020-0036"},
	{"pkg:golang/gopkg.in/yaml.v2@v2.2.2", "GO-2021-0061"},
	{"pkg:golang/gopkg.in/yaml.v2@v2.2.2", "GO-2022-0956"},
}

// TestParseCycloneDXScanOrSBOM checks, on the real output of the tools,
// which BOMs are read as a scanner's verdict and which are matched as
// SBOMs.
func TestParseCycloneDXScanOrSBOM(t *testing.T) {
	tests := []struct {
		input string
		want  []moduleFinding
	}{
		// Grype with every match ignored: a BOM of components only.
		{input: "grype-ignored.json", want: appFindings},
	}
	db := testDB(t)
	for _, tc := range tests {
		t.Run(tc.input, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "cyclonedx", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := ParseCycloneDX(f, tc.input, db)
			if len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
			if diff := cmp.Diff(tc.want, moduleFindings(fs)); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzCycloneDX(f *testing.F) {
	fuzzParser(f, withMatcher(ParseCycloneDX, fuzzDB(f)), fixtures(f,
		"cyclonedx/gomod-app-1.6.json", "cyclonedx/gomod-app-1.6.xml", "cyclonedx/trivy-fs.json", "cyclonedx/vex-embedded.json", "cyclonedx/evident-report.json",
		"distro/syft.cdx.json", "distro/trivy.cdx.json", "distro/trivy-almalinux8.cdx.json", "distro/syft-rhel9.cdx.json",
		"distro/trivy-almalinux10.cdx.json", "ecosystems/swift/syft.cdx.json")...)
}

// TestCycloneDXErrorsNameTheFile checks the file-level errors too.
func TestCycloneDXErrorsNameTheFile(t *testing.T) {
	_, errs := cycloneDXComponents(strings.NewReader(""), "empty.json")
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "empty.json: ") {
		t.Errorf("got %v, want one error naming empty.json", errs)
	}
}

// TestParseCycloneDXWithoutDatabase checks what a BOM gives with no
// vulnerability database: its own vulnerabilities, as the report names
// them, and nothing for a bare SBOM.
func TestParseCycloneDXWithoutDatabase(t *testing.T) {
	tests := []struct {
		input string
		want  []moduleFinding
	}{
		{input: "gomod-app-1.6.json"},
		{input: "trivy-fs.json", want: []moduleFinding{
			{"pkg:golang/golang.org/x/text@v0.3.5", "CVE-2021-38561"},
			{"pkg:golang/golang.org/x/text@v0.3.5", "CVE-2022-32149"},
			{"pkg:golang/gopkg.in/yaml.v2@v2.2.2", "CVE-2021-4235"},
			{"pkg:golang/gopkg.in/yaml.v2@v2.2.2", "CVE-2022-3064"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.input, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "cyclonedx", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := ParseCycloneDX(f, tc.input, nil)
			if len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
			for _, x := range fs {
				if x.FixedVersion != "" {
					t.Errorf("%s %s: fixed version %q without a database", x.Package.PURL, x.Vulnerability.ID, x.FixedVersion)
				}
			}
			if diff := cmp.Diff(tc.want, moduleFindings(fs)); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// cycloneDXComponents returns the package components of a CycloneDX BOM
// (JSON or XML), the main component first, nested components after their
// parents. Errors are as ParseCycloneDX reports them.
func cycloneDXComponents(r io.Reader, name string) ([]Component, []error) {
	bom, err := decodeCycloneDX(r, name)
	if err != nil {
		return nil, []error{err}
	}
	comps, _, cerrs := bom.collect(name)
	return comps, append(bom.compErrs, cerrs...)
}

// TestCycloneDXRecords checks which database records complete the
// vulnerabilities of a BOM: one that is the same vulnerability gives its
// ids as aliases; one that is two CVEs (GO-2022-0536) joins neither of the
// BOM's two vulnerabilities, which are two HTTP/2 flaws.
func TestCycloneDXRecords(t *testing.T) {
	bom := func(purl string, ids ...string) string {
		var vulns []string
		for _, id := range ids {
			vulns = append(vulns, fmt.Sprintf(`{"id": %q, "affects": [{"ref": %q}]}`, id, purl))
		}
		return fmt.Sprintf(`{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
			"components": [{"bom-ref": %q, "type": "library", "name": "x", "version": "1", "purl": %q}],
			"vulnerabilities": [%s]}`, purl, purl, strings.Join(vulns, ", "))
	}
	const xnet = "pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a"
	tests := []struct {
		name, input string
		want        []string
	}{
		{
			name:  "the record of the vulnerability",
			input: bom("pkg:npm/lodash@4.17.15", "CVE-2021-23337"),
			want:  []string{"pkg:npm/lodash@4.17.15 GHSA-35jh-r3h4-6jhm [CVE-2021-23337] [cyclonedx]"},
		},
		{
			name:  "a record of two CVEs",
			input: bom(xnet, "CVE-2019-9512", "CVE-2019-9514"),
			want: []string{
				xnet + " CVE-2019-9512 [] [cyclonedx]",
				xnet + " CVE-2019-9514 [] [cyclonedx]",
			},
		},
	}
	db := mergeDB(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, errs := ParseCycloneDX(strings.NewReader(tt.input), "in.json", db)
			if len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
			if diff := cmp.Diff(tt.want, mergedIDs(fs)); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
