package findings

import (
	"strings"
	"testing"
)

func TestParseTrivy(t *testing.T) {
	runGolden(t, ParseTrivy, []goldenCase{
		{name: "go module filesystem", input: "trivy/fs.json", golden: "trivy/fs.golden"},
		{name: "container image", input: "trivy/image.json", golden: "trivy/image.golden"},
	})
}

// TestTrivyNameCase: Trivy lowercases the name in a golang and an npm
// package URL (trivy pkg/purl: parseGolang, parseNpm; its test turns
// github.com/go-sql-driver/Mysql into .../mysql), while Go module paths,
// and the names of old npm packages, are case-sensitive: the Go
// vulnerability database, govulncheck and profiles' frames write
// github.com/Masterminds/goutils. PkgName keeps the case.
func TestTrivyNameCase(t *testing.T) {
	tests := []struct {
		name, typ, pkgName, purl, version string
		want                              Package
	}{
		{name: "go module", typ: "gobinary", pkgName: "github.com/Masterminds/goutils", purl: "pkg:golang/github.com/masterminds/goutils@v1.1.0", version: "v1.1.0",
			want: Package{PURL: "pkg:golang/github.com/Masterminds/goutils@v1.1.0", Ecosystem: "Go", Name: "github.com/Masterminds/goutils", Version: "v1.1.0"}},
		{name: "npm package", typ: "node-pkg", pkgName: "JSONStream", purl: "pkg:npm/jsonstream@1.3.1", version: "1.3.1",
			want: Package{PURL: "pkg:npm/JSONStream@1.3.1", Ecosystem: "npm", Name: "JSONStream", Version: "1.3.1"}},
		{name: "pypi name stays normalized", typ: "python-pkg", pkgName: "PyYAML", purl: "pkg:pypi/pyyaml@5.3.1", version: "5.3.1",
			want: Package{PURL: "pkg:pypi/pyyaml@5.3.1", Ecosystem: "PyPI", Name: "pyyaml", Version: "5.3.1"}},
		{name: "another name is not taken", typ: "gobinary", pkgName: "github.com/Masterminds/sprig", purl: "pkg:golang/github.com/masterminds/goutils@v1.1.0", version: "v1.1.0",
			want: Package{PURL: "pkg:golang/github.com/masterminds/goutils@v1.1.0", Ecosystem: "Go", Name: "github.com/masterminds/goutils", Version: "v1.1.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"SchemaVersion": 2, "ArtifactName": "app", "Results": [{"Target": "app", "Class": "lang-pkgs", "Type": "` + tt.typ + `", "Vulnerabilities": [
				{"VulnerabilityID": "CVE-2021-4238", "PkgName": "` + tt.pkgName + `", "PkgIdentifier": {"PURL": "` + tt.purl + `"}, "InstalledVersion": "` + tt.version + `", "Severity": "CRITICAL"}]}]}`
			fs, errs := ParseTrivy(strings.NewReader(doc), "in.json")
			if len(errs) != 0 || len(fs) != 1 {
				t.Fatalf("got %d findings, errors %v; want 1 finding", len(fs), errs)
			}
			if got := fs[0].Package; got != tt.want {
				t.Errorf("package = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTrivyBad(t *testing.T) {
	const good = `{"VulnerabilityID": "CVE-2021-38561", "PkgName": "golang.org/x/text", "PkgIdentifier": {"PURL": "pkg:golang/golang.org/x/text@v0.3.5"}, "InstalledVersion": "v0.3.5", "FixedVersion": "0.3.7", "Severity": "HIGH"}`
	runBad(t, ParseTrivy, []badCase{
		{
			name: "bad records are skipped",
			input: `{"SchemaVersion": 2, "Results": [
				{"Target": "go.mod", "Type": "gomod", "Vulnerabilities": [
					{"PkgName": "golang.org/x/text", "InstalledVersion": "v0.3.5"},
					{"VulnerabilityID": "CVE-2022-32149", "InstalledVersion": "v0.3.5"},
					{"VulnerabilityID": "CVE-2022-32149", "PkgName": "golang.org/x/text", "InstalledVersion": 5},
					{"VulnerabilityID": "CVE-2022-32149", "PkgName": "golang.org/x/text"},
					{"VulnerabilityID": "CVE-2022-32149", "PkgIdentifier": {"PURL": "pkg:"}, "PkgName": "x"},
					"CVE-2022-32149",
					` + good + `]},
				{"Type": 7}]}`,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: Results[0].Vulnerabilities[0]: no VulnerabilityID",
				"in.json: Results[0].Vulnerabilities[1] (CVE-2022-32149): no PkgName and no PkgIdentifier.PURL",
				"in.json: Results[0].Vulnerabilities[2]: json: cannot unmarshal number into Go struct field trivyVulnerability.InstalledVersion of type string",
				"in.json: Results[0].Vulnerabilities[3] (CVE-2022-32149): package golang.org/x/text: no version",
				`in.json: Results[0].Vulnerabilities[4] (CVE-2022-32149): parse package URL "pkg:": purl is missing type or name`,
				"in.json: Results[0].Vulnerabilities[5]: json: cannot unmarshal string into Go value of type findings.trivyVulnerability",
				"in.json: Results[1]: json: cannot unmarshal number into Go struct field trivyResult.Type of type string",
			},
		},
		{
			name:     "truncated",
			input:    `{"SchemaVersion": 2, "Results": [{"Target": "go.mod", "Vulnerabilities": [` + good,
			wantErrs: []string{"in.json: it ends inside its JSON: it is cut short: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name:     "schema version 1",
			input:    `[{"Target": "go.mod"}]`,
			wantErrs: []string{`in.json: not a JSON object (starts with '['): not the expected format`},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "future schema",
			input:    `{"SchemaVersion": 3, "Results": []}`,
			wantErrs: []string{"in.json: report SchemaVersion 3, want 2: not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "grype document",
			input:    `{"matches": []}`,
			wantErrs: []string{"in.json: not a Trivy JSON report (no SchemaVersion): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "results of the wrong type",
			input:    `{"SchemaVersion": 2, "Results": {}}`,
			wantErrs: []string{"in.json: Results: json: cannot unmarshal object into Go value of type []json.RawMessage: not the expected format"},
			wantIs:   ErrWrongFormat,
		},
	})
}

func FuzzParseTrivy(f *testing.F) {
	fuzzParser(f, ParseTrivy,
		`{"SchemaVersion": 2, "Results": [{"Type": "gomod", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "VendorIDs": ["DSA-1"], "PkgName": "a/b", "InstalledVersion": "v1.0.0", "FixedVersion": "1.0.1, 2.0.1", "Severity": "HIGH", "SeveritySource": "nvd", "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "V3Score": 7.5}}}]}]}`,
		`{"SchemaVersion": 2, "Results": [{"Type": "debian", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "openssl", "PkgIdentifier": {"PURL": "pkg:deb/debian/openssl@1.1?arch=amd64"}, "InstalledVersion": "1.1", "FixedVersion": "1.2"}]}]}`,
	)
}
