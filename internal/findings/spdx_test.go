package findings

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSPDX(t *testing.T) {
	runGolden(t, withMatcher(ParseSPDX, testDB(t)), []goldenCase{
		{name: "syft go binary", input: "spdx/syft-app.spdx.json", golden: "spdx/syft-app.golden"},
	})
}

func TestSPDXComponents(t *testing.T) {
	jena := []Component{{
		Ref:     "SPDXRef-fromDoap-0",
		Package: Package{PURL: "pkg:maven/org.apache.jena/apache-jena@3.12.0", Ecosystem: "Maven", Name: "org.apache.jena:apache-jena", Version: "3.12.0"},
	}}
	tests := []struct {
		name  string
		input string
		want  []Component
	}{
		{
			name:  "syft go binary",
			input: "syft-app.spdx.json",
			want: []Component{
				{Ref: "SPDXRef-Package-go-module-golang.org-x-text-1f8e2a7d0c5b9e34", Package: Package{PURL: "pkg:golang/golang.org/x/text@v0.3.5", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}},
				{Ref: "SPDXRef-Package-go-module-gopkg.in-yaml.v2-9d3a61c4b2e07f58", Package: Package{PURL: "pkg:golang/gopkg.in/yaml.v2@v2.2.2", Ecosystem: "Go", Name: "gopkg.in/yaml.v2", Version: "v2.2.2"}},
				{Ref: "SPDXRef-Package-go-module-stdlib-4c2d8e1a9b7f3065", Package: Package{PURL: "pkg:golang/stdlib@v1.26.8", Ecosystem: "Go", Name: "stdlib", Version: "v1.26.8"}},
			},
		},
		{name: "spec example 2.3 json", input: "SPDXJSONExample-v2.3.spdx.json", want: jena},
		{name: "spec example 2.2 json (PACKAGE_MANAGER)", input: "SPDXJSONExample-v2.2.spdx.json", want: jena},
		{name: "spec example 2.3 tag-value", input: "SPDXTagExample-v2.3.spdx", want: jena},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "spdx", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, errs := spdxComponents(f, tc.input)
			if len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("components mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSPDXBad(t *testing.T) {
	const head = `{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "packages": [`
	const text = `{"name": "golang.org/x/text", "SPDXID": "SPDXRef-text", "versionInfo": "v0.3.5", "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:golang/golang.org/x/text@v0.3.5"}]}`
	purl := func(id, locator string) string {
		return `{"name": "x", "SPDXID": "` + id + `", "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "` + locator + `"}]}`
	}
	runBad(t, withMatcher(ParseSPDX, testDB(t)), []badCase{
		{
			name:     "not spdx",
			input:    "bomFormat: CycloneDX\n",
			wantErrs: []string{"in.json: not an SPDX document (neither JSON nor tag-value): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "rdf",
			input:    `<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:spdx="http://spdx.org/rdf/terms#"></rdf:RDF>`,
			wantErrs: []string{"in.json: SPDX RDF/XML is not supported, convert it to SPDX JSON or tag-value (e.g. with the spdx-tools converter): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "spdx 3",
			input:    `{"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": []}`,
			wantErrs: []string{`in.json: spdxVersion "", want one of SPDX-2.1, SPDX-2.2, SPDX-2.3: not the expected format`},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "truncated json",
			input:    head + text + `, {"name": "gopkg.in/ya`,
			wantErrs: []string{"in.json: SPDX JSON: it ends inside its JSON: it is cut short: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name:     "broken tag-value",
			input:    "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\nPackageName: x\nSPDXID: nope\n",
			wantErrs: []string{"in.json: SPDX tag-value: missing SPDXRef- prefix for element identifier: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name: "bad packages, the good one still matches",
			input: head +
				`{"name": 1, "SPDXID": "SPDXRef-one"},` +
				`{"name": "lib", "SPDXID": "SPDXRef-lib", "versionInfo": "1.0", "primaryPackagePurpose": "LIBRARY"},` +
				`{"name": "src", "SPDXID": "SPDXRef-DocumentRoot-Directory-src"},` +
				purl("SPDXRef-badpurl", "golang.org/x/text@v0.3.5") + `,` +
				purl("SPDXRef-noversion", "pkg:golang/golang.org/x/text") + `,` +
				purl("SPDXRef-main", "pkg:golang/example.com/app@(devel)") + `,` +
				text + `]}`,
			wantFindings: 3,
			wantErrs: []string{
				"in.json: packages[0] (SPDXRef-one): json: cannot unmarshal number into Go struct field pkg.name of type string",
				"in.json: packages[1] (SPDXRef-lib): no PACKAGE-MANAGER purl external reference",
				`in.json: packages[3] (SPDXRef-badpurl): parse package URL "golang.org/x/text@v0.3.5": purl scheme is not "pkg": "golang.org/x/text@v0.3.5"`,
				"in.json: packages[4] (SPDXRef-noversion): package golang.org/x/text: no version",
			},
		},
	})
}

func FuzzSPDX(f *testing.F) {
	fuzzParser(f, withMatcher(ParseSPDX, fuzzDB(f)), fixtures(f,
		"spdx/syft-app.spdx.json", "spdx/SPDXTagExample-v2.3.spdx", "distro/syft.spdx.json", "distro/trivy.spdx.json", "distro/syft-almalinux8.spdx.json", "distro/trivy-rhel9.spdx.json",
		"distro/syft-almalinux10.spdx.json")...)
}

// spdxComponents returns the packages of an SPDX document that carry a
// package URL, in document order. Errors are as ParseSPDX reports them.
func spdxComponents(r io.Reader, name string) ([]Component, []error) {
	_, comps, errs := readSPDX(r, name)
	return comps, errs
}
